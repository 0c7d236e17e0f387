"""``OUT/report.html``: one self-contained page per output folder, for the trial team's first look after a run.

Self-contained: plots and thumbnails are base64 data URIs, the style is inline, there is no script and no network
reference; the only links are relative ones to the full pictures in ``OUT/qc/`` (open the page inside OUT). Small:
the thumbnails are the ~280 px JPEGs drawn beside each picture (``<tracer>.thumb.jpg``), not the pictures.

Sources: ``scans.parquet`` (counts per tracer), ``failures.parquet`` (failures, acknowledged failures (with
``OUT/acknowledged.tsv``) and warnings, listed apart with their severity), the
feature tables (SUVmax and MTV per lesion: the ``suv_max`` and ``mtv_ml`` columns on the grid as read when present
(issue 14), else PyRadiomics' ``original_firstorder_Maximum`` and ``original_shape_VoxelVolume`` on its resampled
grid, said so under the plot), ``burden.parquet`` (lesion count per scan, when present) and ``compare/*.parquet``
(TMTV of A vs B per patient, when present; absent tables give a note instead of a plot).

Incremental: the page records a hash of everything it shows (the tables' and thumbnails' bytes); when that has not
changed, nothing is written, so a no-change rerun leaves the file and its mtime alone.
"""

from __future__ import annotations

import base64
import html
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from radiomx import __version__
from radiomx.errors import ConfigError
from radiomx.fingerprint import canonical_sha256, file_sha256
from radiomx.qc.files import picture_path, qc_folder, thumbnail_path
from radiomx.records import ScanKey
from radiomx.store.acknowledged import acknowledged_path, read_acknowledgements
from radiomx.store.atomic import atomic_path
from radiomx.store.lock import output_lock
from radiomx.store.tables import Store
from radiomx.vocabulary import Stage

#: Bump when the page's content changes for the same inputs: rewrites every report once.
#: "3": failures, acknowledged failures and warnings in separate lists with their severity; TMTV pairs counted
#: by patient (and session).
REPORT_VERSION = "3"
REPORT_NAME = "report.html"
KEY_META = "radiomx-report-key"
#: ``suv_max``/``mtv_ml`` (issue 14, grid as read) when the tables have them; PyRadiomics' own otherwise.
SUV_MAX_COLUMNS = ("suv_max", "original_firstorder_Maximum")
MTV_COLUMNS = (("mtv_ml", 1.0), ("original_shape_VoxelVolume", 1e-3))

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222}h1{font-size:1.4em}h2{font-size:1.15em;
margin-top:1.6em;border-bottom:1px solid #ccc}table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid
#ccc;padding:2px 6px;text-align:left}th{background:#f2f2f2}td.n{text-align:right}tr.failure td{background:#fff4f4}
tr.warning td{background:#fffbe6}tr.acknowledged td{background:#f4f4f4}
.note{color:#666;font-size:.85em}.grid{display:flex;flex-wrap:wrap;gap:8px}.grid figure{margin:0;width:282px;
font-size:.75em}.grid img{width:280px;border:1px solid #ccc}.neg{color:#b00020;font-weight:bold}
.missing{width:280px;height:80px;border:1px dashed #bbb;display:flex;align-items:center;justify-content:center;
padding:4px;box-sizing:border-box;text-align:center}
"""


@dataclass
class ReportSummary:
    path: Path
    written: bool
    size_bytes: int


def _e(value: object) -> str:
    return html.escape("" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value))


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _inputs(out: Path) -> list[Path]:
    """Every file the page is drawn from, in a fixed order (the page's key hashes their bytes)."""
    files = [out / "scans.parquet", out / "failures.parquet", out / "burden.parquet", acknowledged_path(out)]
    files += sorted((out / "features").glob("*.parquet")) + sorted((out / "compare").glob("*.parquet"))
    files += sorted(qc_folder(out).rglob("*.thumb.jpg"))
    return [f for f in files if f.is_file()]


def report_key(out: Path) -> str:
    files = _inputs(out)
    return canonical_sha256({"report": REPORT_VERSION, "radiomx": __version__,
                             "files": {str(f.relative_to(out)): file_sha256(f) for f in files}})


def _stored_key(path: Path) -> str:
    if not path.is_file():
        return ""
    with open(path, "rb") as fh:
        head = fh.read(2048).decode("utf-8", "replace")
    marker = f'<meta name="{KEY_META}" content="'
    start = head.find(marker)
    return head[start + len(marker): head.find('"', start + len(marker))] if start >= 0 else ""


def _negative(state: pd.DataFrame, failures: pd.DataFrame) -> pd.Series:
    """Negative scans: status "negative" (issue 14), or, from tables written before it, a scan whose only
    problem is the empty-mask message (a negative scan is data, not a failure)."""
    negative = state["status"] == "negative"
    if len(failures):
        empty = failures[failures["message"].str.startswith("mask is empty")]
        other = failures[~failures["message"].str.startswith("mask is empty") & (failures["stage"] != Stage.QC)]
        keys_empty = set(map(tuple, empty[["patient_id", "session", "tracer"]].to_numpy()))
        keys_other = set(map(tuple, other[["patient_id", "session", "tracer"]].to_numpy()))
        old_style = [tuple(k) in keys_empty - keys_other for k in state[["patient_id", "session", "tracer"]].to_numpy()]
        negative |= pd.Series(old_style, index=state.index) & (state["n_lesions"] == 0)
    return negative


def _counts_table(state: pd.DataFrame, failures: pd.DataFrame) -> str:
    negative = _negative(state, failures)
    failed = state["status"].isin(["failed", "partial"]) & ~negative
    done = (state["status"] == "ok") & ~negative
    rows = []
    for tracer, group in state.groupby("tracer", sort=True):
        i = group.index
        rows.append(f"<tr><td>{_e(tracer)}</td><td class=n>{len(group)}</td><td class=n>{int(done[i].sum())}</td>"
                    f"<td class=n>{int(failed[i].sum())}</td><td class=n>{int(negative[i].sum())}</td></tr>")
    rows.append(f"<tr><th>all</th><th class=n id=total-scans>{len(state)}</th><th class=n>{int(done.sum())}</th>"
                f"<th class=n id=total-failed>{int(failed.sum())}</th><th class=n>{int(negative.sum())}</th></tr>")
    return ("<table><tr><th>tracer</th><th>scans</th><th>done</th><th>failed</th><th>negative</th></tr>"
            + "".join(rows) + "</table>")


def _failure_kinds(failures: pd.DataFrame, reasons: list[str | None]) -> pd.Series:
    """Each failures-table row as ``failure`` (it made the run exit 1), ``acknowledged`` (a failure listed in
    ``OUT/acknowledged.tsv``, ``reasons``: shown, but the run exits 0) or ``warning`` (the scan's rows are complete;
    never fails a run). Rows written before ``severity`` existed read as failures."""
    kinds = ["warning" if severity == "warning" else "acknowledged" if reason is not None else "failure"
             for severity, reason in zip(failures["severity"], reasons, strict=True)]
    return pd.Series(kinds, index=failures.index, dtype=object)


#: The report's three lists of failures-table rows: (kind, heading, what it means).
_FAILURE_SECTIONS = (
    ("failure", "Failures", "A scan, a lesion or a step (a QC picture) failed: the run exits 1 until it is fixed or "
                            "acknowledged"),
    ("acknowledged", "Acknowledged failures", "Failures listed in OUT/acknowledged.tsv: shown, but the run exits 0"),
    ("warning", "Warnings", "The scan's rows are complete; worth a look, never a failed run"),
)


def _failures_sections(out: Path, failures: pd.DataFrame) -> str:
    """Failures, acknowledged failures and warnings apart, each row with its severity: an exit-0 run has no
    'Failures' (a warning or an acknowledged failure is not one)."""
    reasons = pd.Series(read_acknowledgements(out).column(failures), index=failures.index, dtype=object)
    kinds = _failure_kinds(failures, list(reasons))
    parts = []
    for kind, heading, meaning in _FAILURE_SECTIONS:
        rows = failures[kinds == kind]
        if kind != "failure" and not len(rows):
            continue
        parts.append(f"<h2 id={kind}s-heading>{heading} ({len(rows)})</h2>")
        if not len(rows):
            parts.append("<p id=no-failures>No failures.</p>")
            continue
        cells = []
        for r in rows.sort_values(["patient_id", "session", "tracer", "stage"]).itertuples():
            lesion = "" if pd.isna(r.lesion_id) else int(r.lesion_id)
            severity = "failure" if kind != "warning" else "warning"
            if kind == "acknowledged":
                severity += f" (acknowledged: {reasons[r.Index]})"
            cells.append(f"<tr class={kind}><td>{_e(r.patient_id)}</td><td>{_e(r.session)}</td><td>{_e(r.tracer)}</td>"
                         f"<td>{lesion}</td><td>{_e(r.stage)}</td><td>{_e(severity)}</td><td>{_e(r.file)}</td>"
                         f"<td>{_e(r.message)}</td></tr>")
        parts.append(f"<p class=note>{_e(meaning)}.</p><table id={kind}s><tr><th>patient</th><th>session</th>"
                     "<th>tracer</th><th>lesion</th><th>stage</th><th>severity</th><th>file</th><th>message</th></tr>"
                     + "".join(cells) + "</table>")
    return "".join(parts)


def _lesion_values(out: Path, store: Store) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], str]:
    """SUVmax and MTV per lesion per PET tracer, reading only the needed columns of each feature table."""
    suv, mtv, used = {}, {}, set()
    for tracer in store.tracers():
        path = out / "features" / f"{tracer}.parquet"
        names = set(pq.read_schema(path).names)
        suv_col = next((c for c in SUV_MAX_COLUMNS if c in names), None)
        mtv_col = next(((c, f) for c, f in MTV_COLUMNS if c in names), None)
        if suv_col is None or mtv_col is None or "unit" not in names:
            continue
        frame = pq.read_table(path, columns=["unit", suv_col, mtv_col[0]]).to_pandas()
        frame = frame[frame["unit"] == "SUVbw"]
        if not len(frame):
            continue
        suv[tracer] = frame[suv_col].astype(float).dropna().to_numpy()
        mtv[tracer] = (frame[mtv_col[0]].astype(float) * mtv_col[1]).dropna().to_numpy()
        used |= {suv_col, mtv_col[0]}
    if used & {"suv_max", "mtv_ml"} == used:
        note = "SUVmax, MTV: suv_max, mtv_ml columns (image grid as read)"
    else:
        note = ("SUVmax, MTV: PyRadiomics original_firstorder_Maximum and original_shape_VoxelVolume on its "
                "resampled grid (the suv_max/mtv_ml columns are absent from these tables)")
    return suv, mtv, note


def _lesion_counts(out: Path, state: pd.DataFrame) -> tuple[dict[str, np.ndarray], int]:
    """Lesion count per scan per tracer, and how many scans have none (failed: their count is unknown, not 0; a
    null in a box plot's data would lose the whole box)."""
    burden = out / "burden.parquet"
    if burden.is_file():
        frame = pd.read_parquet(burden, columns=["tracer", "lesion_count"])
        column = "lesion_count"
    else:
        frame = state[state["status"].isin(["ok", "partial", "negative"]) | (state["n_lesions"] == 0)]
        column = "n_lesions"
    known = frame[frame[column].notna()]
    counts = {t: g[column].to_numpy(dtype=np.float64) for t, g in known.groupby("tracer", sort=True)}
    return counts, len(frame) - len(known)


def _distributions(out: Path, store: Store, state: pd.DataFrame) -> str:
    from radiomx.qc.plots import distributions

    suv, mtv, note = _lesion_values(out, store)
    counts, unknown = _lesion_counts(out, state)
    if not suv and not any(len(v) for v in counts.values()):
        return "<p class=note>No lesion rows yet.</p>"
    source = "lesion count: burden.parquet" if (out / "burden.parquet").is_file() else (
        "lesion count: scans.parquet n_lesions (burden.parquet absent)")
    if unknown:
        source += f" ({unknown} failed scan{'s' if unknown != 1 else ''} without a count left out)"
    png = distributions(suv, mtv, counts)
    return (f'<img id=distributions alt="SUVmax, MTV and lesion count per tracer" src="{_data_uri(png, "image/png")}">'
            f"<p class=note>{_e(note)}; {_e(source)}.</p>")


def _compare_section(out: Path) -> str:
    from radiomx.qc.plots import tmtv_pairs

    # The tracer tables only: ``<a>_vs_<b>.lesions.parquet`` beside them holds lesion pairs, not patients.
    files = [p for p in sorted((out / "compare").glob("*_vs_*.parquet")) if p.name.count(".") == 1]
    if not files:
        return ("<p class=note id=no-compare>No compare tables (OUT/compare/&lt;a&gt;_vs_&lt;b&gt;.parquet): TMTV "
                "plots skipped. They appear once the tracer comparison (issue 14) has been derived.</p>")
    parts = []
    for path in files:
        tracer_a, tracer_b = path.stem.split("_vs_", 1)
        frame = pd.read_parquet(path)
        needed = {"tmtv_ml_a", "tmtv_ml_b", "positive_on"}
        if not needed <= set(frame.columns):
            parts.append(f"<p class=note>{_e(path.name)}: columns {', '.join(sorted(needed - set(frame.columns)))} "
                         "missing; plot skipped.</p>")
            continue
        paired = frame[frame["positive_on"].notna()]
        png = tmtv_pairs(paired, tracer_a, tracer_b)
        only = {k: int((paired["positive_on"] == k).sum()) for k in ("only_a", "only_b")}
        parts.append(f"<h3>{_e(tracer_a)} (A) vs {_e(tracer_b)} (B)</h3><img class=tmtv alt=\"TMTV {_e(tracer_a)} vs "
                     f"{_e(tracer_b)}\" src=\"{_data_uri(png, 'image/png')}\"><p class=note>{_paired_count(paired)}; "
                     f"only on A: {only['only_a']}, only on B: {only['only_b']}."
                     f"{_pairs_note(path.with_name(f'{path.stem}.lesions.parquet'))}</p>")
    return "".join(parts)


def _paired_count(paired: pd.DataFrame) -> str:
    """How many patients have both scans: a compare table has a row per patient and session, so a patient scanned
    with both tracers at baseline and follow-up is one patient in two sessions (one point each in the plot)."""
    patients, sessions = paired["patient_id"].nunique(), len(paired)
    text = f"{patients} patient{'s' if patients != 1 else ''} with both scans"
    return text if sessions == patients else f"{text}, in {sessions} sessions (a point per patient and session)"


def _pairs_note(path: Path) -> str:
    """One sentence on the lesion pairs (``[compare] same_frame``), when the pairing wrote them."""
    if not path.is_file():
        return ""
    pairs = pd.read_parquet(path, columns=["lesion_id_a", "lesion_id_b"])
    matched = int((pairs["lesion_id_a"].notna() & pairs["lesion_id_b"].notna()).sum())
    return (f" Lesions paired by overlap (same frame of reference): {matched} pairs, "
            f"{int(pairs['lesion_id_b'].isna().sum())} only on A, {int(pairs['lesion_id_a'].isna().sum())} only on B "
            f"({_e(path.name)}).")


def _missing_picture(key: ScanKey, status: str, failures: pd.DataFrame) -> str:
    """Why a scan has no picture, and what would give it one: rerunning ``radiomx qc`` helps only a scan that was
    extracted without ``--qc``; a failed scan needs its input fixed, a picture that could not be drawn its cause."""
    mine = failures[(failures["patient_id"] == key.patient_id) & (failures["session"] == key.session)
                    & (failures["tracer"] == key.tracer)] if len(failures) else failures
    if status == "failed":
        first = mine[mine["stage"] != Stage.QC].head(1)
        where = f" ({_e(first.iloc[0]['stage'])}: {_e(first.iloc[0]['file'])})" if len(first) else ""
        return (f"no QC picture: the scan failed{where}; fix that input (see Failures), then rerun "
                "<code>radiomx extract COHORT -o OUT --qc</code>")
    if len(mine) and (mine["stage"] == Stage.QC).any():
        return "QC picture not drawn: see its qc row under Failures"
    return "no QC picture: extracted without --qc; run <code>radiomx qc OUT</code>"


def _thumbnails(out: Path, state: pd.DataFrame, negative: pd.Series, failures: pd.DataFrame) -> str:
    cells = []
    for index, r in state.sort_values(["patient_id", "session", "tracer"]).iterrows():
        key = ScanKey(r["patient_id"], r["session"], r["tracer"])
        label = f"{_e(key)} · {_e(r['status'])} · {int(r['n_lesions'])} lesions"
        if negative[index]:
            label += " · <span class=neg>NEGATIVE</span>"
        thumb = thumbnail_path(out, key)
        if thumb.is_file() and picture_path(out, key).is_file():
            href = urllib.parse.quote(str(picture_path(out, key).relative_to(out)))
            image = (f'<a href="{href}"><img loading=lazy alt="QC {_e(key)}" '
                     f'src="{_data_uri(thumb.read_bytes(), "image/jpeg")}"></a>')
        else:
            image = f"<div class=missing>{_missing_picture(key, str(r['status']), failures)}</div>"
        cells.append(f"<figure>{image}<figcaption>{label}</figcaption></figure>")
    return "<div class=grid>" + "".join(cells) + "</div>"


def build_report(out: Path, key: str) -> str:
    store = Store(out)
    if not store.scans_path.exists():
        raise ConfigError(f"{out}: no scans.parquet (run `radiomx extract` first)")
    state = pd.DataFrame(list(store.load_state().values()))
    state = state.sort_values(["patient_id", "session", "tracer"]).reset_index(drop=True)
    failures = store.read_failures()
    negative = _negative(state, failures)
    patients = state["patient_id"].nunique()
    return "".join([
        f'<!DOCTYPE html><html lang=en><head><meta charset=utf-8><meta name="{KEY_META}" content="{key}">',
        "<title>radiomx report</title><style>", STYLE, "</style></head><body>",
        f"<h1>radiomx report</h1><p>{len(state)} scans of {patients} patients; radiomx {_e(__version__)}. "
        "Keys are the cohort's own IDs; no names or dates.</p>",
        "<h2>Scans per tracer</h2>", _counts_table(state, failures),
        _failures_sections(out, failures),
        "<h2>Distributions</h2>", _distributions(out, store, state),
        "<h2>Tracer pairs: TMTV per patient (and session)</h2>", _compare_section(out),
        "<h2>QC pictures</h2><p class=note>Click a thumbnail for the full picture (OUT/qc/).</p>",
        _thumbnails(out, state, negative, failures), "</body></html>\n",
    ])


def write_report(out: Path | str, wait: float = 0.0) -> ReportSummary:
    """Write ``OUT/report.html`` unless what it shows is unchanged (see the module docstring)."""
    out = Path(out)
    path = out / REPORT_NAME
    if not (out / "scans.parquet").is_file():
        raise ConfigError(f"{out}: no scans.parquet (run `radiomx extract` first)")
    with output_lock(out, wait):
        key = report_key(out)
        if _stored_key(path) == key:
            return ReportSummary(path, False, path.stat().st_size)
        page = build_report(out, key)
        with atomic_path(path) as tmp:
            tmp.write_text(page, encoding="utf-8")
    return ReportSummary(path, True, path.stat().st_size)
