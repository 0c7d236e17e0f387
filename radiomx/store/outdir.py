"""The output folder's fixed places and its preparation, without the table libraries.

Why apart from ``store.py``: importing pandas and pyarrow takes ~0.45 s. A run into a fresh OUT needs neither to
plan (there is no state yet), so the writer process imports them in the background while the workers start
(``radiomx.run.extraction``) instead of before the first scan is handed out.
"""

from __future__ import annotations

from pathlib import Path

from radiomx.store.atomic import remove_stale_temporaries

STATE_FILE = "scans.parquet"


def state_path(out: Path) -> Path:
    """Per-scan state (fingerprints, work keys): drives incremental runs; written last in every commit."""
    return Path(out) / STATE_FILE


def prepare_out(out: Path) -> None:
    """Create OUT's folders and clear temporaries a killed run left behind (call it holding the lock)."""
    (Path(out) / "features").mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(Path(out))


def compare_path(out: Path, a: str, b: str) -> Path:
    """``OUT/compare/<a>_vs_<b>.parquet``: tracer A against tracer B (``radiomx.derive.compare``)."""
    return Path(out) / "compare" / f"{a}_vs_{b}.parquet"


def existing_pairs(out: Path) -> list[tuple[str, str]]:
    """The tracer pairs already compared in OUT (refreshed after every extract that changed something)."""
    folder = Path(out) / "compare"
    found = []
    for path in sorted(folder.glob("*_vs_*.parquet")) if folder.is_dir() else []:
        stem = path.name[: -len(".parquet")]
        if "." not in stem:
            a, _, b = stem.partition("_vs_")
            found.append((a, b))
    return found
