"""OUT/report.html: self-contained, counts and failures right, pairs plotted when compare tables exist, and opened
in a real headless Chromium (Debian's package, installed by `make browser`, which `make test` depends on)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from matplotlib.image import imread

from radiomx import api
from radiomx.cli import cli
from radiomx.options import ExtractOptions
from tests.conftest import make_cohort, write_volume

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def out_with_failure(tmp_path: Path) -> Path:
    """3 patients, 4 scans: one negative (empty mask), one failed (mask on another grid), all drawn with --qc."""
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 2, "pentixafor": 1}, "P002": {"FDG": 0},
                                               "P003": {"FDG": 1}})
    write_volume(np.ones((10, 10, 10), np.uint8), cohort / "P003" / "FDG" / "mask.nii.gz")
    out = tmp_path / "out"
    api.extract(cohort, out, ExtractOptions(qc=True, jobs=1))
    return out


def _report(out: Path) -> str:
    result = CliRunner().invoke(cli, ["report", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "report written" in result.stderr
    return (out / "report.html").read_text()


def test_report_counts_failures_and_thumbnails(out_with_failure):
    page = _report(out_with_failure)
    assert re.search(r"id=total-scans>4<", page)
    assert re.search(r"id=total-failed>1<", page)
    assert "<tr><td>18F-FDG</td><td class=n>3</td><td class=n>1</td><td class=n>1</td><td class=n>1</td></tr>" in page
    assert "mask size (10, 10, 10) differs from image size" in page
    assert page.count("<figure>") == 4 and page.count("data:image/jpeg;base64,") == 3  # P003 failed: no picture
    assert 'href="qc/P001/18F-FDG.png"' in page and 'href="qc/P001/68Ga-pentixafor.png"' in page
    assert "NEGATIVE" in page and "id=no-compare" in page
    assert "SUVmax, MTV: suv_max, mtv_ml columns (image grid as read)" in page  # which columns the plots use


def test_report_is_self_contained(out_with_failure):
    page = _report(out_with_failure)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert "url(" not in page and "<script" not in page and "<link" not in page
    for href in re.findall(r'href="([^"]+)"', page):
        assert (out_with_failure / href).is_file()  # relative links to the full pictures, inside OUT
    pictures = sum(p.stat().st_size for p in (out_with_failure / "qc").rglob("*.png"))
    assert len(page) < pictures  # thumbnails inline, not the pictures


def test_tracer_pairs_are_plotted_from_compare_tables(out_with_failure):
    compare = out_with_failure / "compare"
    compare.mkdir()
    pd.DataFrame({"patient_id": ["P001", "P002", "P003", "P004"], "session": [""] * 4,
                  "tmtv_ml_a": [12.0, 0.0, 3.0, None], "tmtv_ml_b": [4.0, 6.0, 0.0, None],
                  "positive_on": ["both", "only_b", "only_a", None],
                  "missing_reason": ["", "", "", "no 68Ga-pentixafor scan"]}
                 ).to_parquet(compare / "18F-FDG_vs_68Ga-pentixafor.parquet")
    page = _report(out_with_failure)
    assert "<h3>18F-FDG (A) vs 68Ga-pentixafor (B)</h3>" in page
    assert "3 patients with both scans; only on A: 1, only on B: 1." in page
    assert "id=no-compare" not in page


def test_report_rewrites_only_when_what_it_shows_changed(out_with_failure):
    _report(out_with_failure)
    page = out_with_failure / "report.html"
    stamp = page.stat().st_mtime_ns
    again = CliRunner().invoke(cli, ["report", str(out_with_failure)])
    assert "report unchanged" in again.stderr and page.stat().st_mtime_ns == stamp
    failures = out_with_failure / "failures.parquet"
    pq.write_table(pq.read_table(failures).slice(0, 0), failures)  # the failures were dealt with
    assert "report written" in CliRunner().invoke(cli, ["report", str(out_with_failure)]).stderr


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        message = "chromium not installed (`make browser` installs Debian's package as root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: must not skip)")
        pytest.skip(message)
    return found


def test_report_opens_in_headless_chromium(out_with_failure, tmp_path):
    chromium = _chromium()
    _report(out_with_failure)
    url = (out_with_failure / "report.html").resolve().as_uri()
    common = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900"]
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert re.search(r'id="total-scans">4<', dom.stdout)
    assert re.search(r'<tr class="failure">.*?P003.*?mask size \(10, 10, 10\)', dom.stdout, re.S)
    shot = tmp_path / "report.png"
    run = subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (900, 1200)
    assert pixels.std() > 0.05  # not a blank page: text, tables and plots
    assert (pixels.mean(axis=2) < 0.5).mean() > 0.005  # some dark ink (text)
