"""What the report says when something is missing (issue 21, points 12-14 and the log-axis labels): a failed scan's
null lesion count stays out of the box plot, the lesion-pair file of ``[compare] same_frame`` is not read as a
tracer table, a scan without a picture says what would give it one, and log axes read in plain numbers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.backends.backend_agg import FigureCanvasAgg

from radiomx import api
from radiomx.cli import cli
from radiomx.options import ExtractOptions
from radiomx.qc.plots import distributions_figure, tmtv_pairs_figure
from radiomx.qc.report import _lesion_counts
from radiomx.store.tables import Store
from tests.conftest import make_cohort, write_volume


def _report(out: Path) -> str:
    result = CliRunner().invoke(cli, ["report", str(out)])
    assert result.exit_code == 0, result.stderr
    return (out / "report.html").read_text()


@pytest.fixture
def out_with_failure(tmp_path: Path) -> Path:
    """P001 two FDG lesions and a pentixafor scan, drawn with --qc; P002's FDG fails (mask on another grid); P003's
    FDG is extracted later without --qc."""
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 2, "pentixafor": 1}, "P002": {"FDG": 1}})
    write_volume(np.ones((10, 10, 10), np.uint8), cohort / "P002" / "FDG" / "mask.nii.gz")
    out = tmp_path / "out"
    assert api.extract(cohort, out, ExtractOptions(qc=True, jobs=1)).exit_code == 1
    make_cohort(tmp_path / "more", {"P003": {"FDG": 1}})
    (tmp_path / "more" / "P003").rename(cohort / "P003")
    api.extract(cohort, out, ExtractOptions(jobs=1))
    return out


def test_a_failed_scan_leaves_the_lesion_count_box_whole(out_with_failure):
    out = out_with_failure
    burden = pd.read_parquet(out / "burden.parquet")
    assert burden["lesion_count"].isna().sum() == 1  # P002's FDG: failed, count unknown
    state = pd.DataFrame(list(Store(out).load_state().values()))
    counts, unknown = _lesion_counts(out, state)
    assert unknown == 1 and all(np.isfinite(v).all() for v in counts.values())
    assert sorted(counts["18F-FDG"]) == [1.0, 2.0]  # P001 and P003; P002 left out, not drawn as a gap
    assert "lesion count: burden.parquet (1 failed scan without a count left out)" in _report(out)


def test_a_scan_without_a_picture_says_what_would_give_it_one(out_with_failure):
    page = _report(out_with_failure)
    reasons = {key: cell for cell, key in re.findall(r"<figure>(.*?)<figcaption>(P00\d/[^ ]+)", page)}
    assert "the scan failed (geometry: P002/FDG/mask.nii.gz); fix that input" in reasons["P002/18F-FDG"]
    assert "radiomx qc OUT" not in reasons["P002/18F-FDG"]  # it would only add another failure row
    assert "extracted without --qc; run <code>radiomx qc OUT</code>" in reasons["P003/18F-FDG"]
    assert "data:image/jpeg" in reasons["P001/18F-FDG"]


def test_lesion_pairs_are_not_read_as_the_tracer_table(tmp_path):
    """``[compare] same_frame`` writes ``<a>_vs_<b>.lesions.parquet`` beside the tracer table: the report plots the
    table and counts the pairs, instead of "columns positive_on, tmtv_ml_a, tmtv_ml_b missing"."""
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 2, "pentixafor": 1}, "P002": {"FDG": 1}})
    (cohort / "radiomx.toml").write_text('[layout]\npet_units = "SUVbw"\n[compare]\nsame_frame = ["P001"]\n')
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1"]).exit_code == 0
    assert runner.invoke(cli, ["compare", str(out), "--tracers", "pentixafor,fdg", "--cohort", str(cohort)]
                         ).exit_code == 0
    pairs = pd.read_parquet(out / "compare" / "68Ga-pentixafor_vs_18F-FDG.lesions.parquet")
    page = _report(out)
    assert "missing; plot skipped" not in page
    assert page.count("<img class=tmtv") == 1
    matched = int((pairs["lesion_id_a"].notna() & pairs["lesion_id_b"].notna()).sum())
    assert f"Lesions paired by overlap (same frame of reference): {matched} pairs, 0 only on A, 1 only on B" in page


def _labels(figure) -> list[str]:
    FigureCanvasAgg(figure).draw()
    return [t.get_text() for ax in figure.axes for axis in (ax.xaxis, ax.yaxis)
            for t in axis.get_ticklabels() + axis.get_ticklabels(minor=True) if t.get_text()]


def test_log_axes_read_in_plain_numbers():
    """Within one decade matplotlib's default labels the minor ticks "6×10⁰"; a reader wants "6"."""
    mtv = {"18F-FDG": np.array([2.5, 4.0, 7.0, 9.7])}
    labels = _labels(distributions_figure({"18F-FDG": np.array([5.0, 9.0])}, mtv, {"18F-FDG": np.array([1.0, 3.0])}))
    pairs = pd.DataFrame({"tmtv_ml_a": [12.0, 0.0, 3.0], "tmtv_ml_b": [4.0, 6.0, 0.0],
                          "positive_on": ["both", "only_b", "only_a"]})
    labels += _labels(tmtv_pairs_figure(pairs, "a", "b"))
    assert not [t for t in labels if "times" in t or "10^" in t or "×" in t], labels
    assert {"2", "4", "6", "10"} <= set(labels)
