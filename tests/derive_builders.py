"""Builders for derive tests: real OUT tables written through the store's own commit, with the lesion and state
columns the worker writes (PET indices, centroids, height/weight), from synthetic rows with known answers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from radiomx.records import ScanKey, ScanOutcome
from radiomx.store.tables import Store

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def lesion_row(key: ScanKey, lesion_id: int, centroid: tuple[float, float, float], mtv_ml: float, suv_max: float,
               suv_peak: float, suv_mean: float, voxels: int = 10) -> dict:
    return {"patient_id": key.patient_id, "session": key.session, "tracer": key.tracer, "lesion_id": lesion_id,
            "source_label": lesion_id, "voxel_count": voxels, "params_version": "v1", "params_sha256": "p",
            "radiomx_version": "0", "pyradiomics_version": "0", "image_sha256": "i", "mask_sha256": "m",
            "image_file": "img", "mask_file": "mask", "unit": "SUVbw", "extracted_at": NOW,
            "suv_max": suv_max, "suv_peak": suv_peak, "suv_mean": suv_mean, "mtv_ml": mtv_ml,
            "tlg": suv_mean * mtv_ml, "centroid_x_mm": centroid[0], "centroid_y_mm": centroid[1],
            "centroid_z_mm": centroid[2], "original_firstorder_Mean": suv_mean}


def outcome(key: ScanKey, lesions: list[dict], **state) -> ScanOutcome:
    base = {"patient_id": key.patient_id, "session": key.session, "tracer": key.tracer, "image_file": "",
            "mask_file": "", "image_stat": "", "mask_stat": "", "image_sha256": "i", "mask_sha256": "m",
            "params_version": "v1", "params_sha256": "p", "work_key": f"wk-{key}", "n_lesions": len(lesions),
            "n_failed": 0}
    return ScanOutcome(key, rows=lesions, state={**base, **{k: v for k, v in state.items() if k in base}})


def commit(out: Path, outcomes: list[ScanOutcome], extra_state: dict[ScanKey, dict] | None = None) -> None:
    """Store.commit the outcomes and publish them (as extract does at a run's end), then give scans.parquet the
    worker's per-scan columns (tmtv_ml, dmax_voxel_mm, height_m, weight_kg, ref_<R>_suv_mean) for the scans in
    ``extra_state`` (nulls elsewhere), as the worker's store writes them once the PET-index state columns are
    merged."""
    Store(out).commit(outcomes, "run-1", NOW)
    Store(out).publish_stale()  # as extract does at the end of a run: derive reads the published files
    if not extra_state:
        return
    path = Path(out) / "scans.parquet"
    frame = pq.read_table(path).to_pandas()
    names = sorted({c for extra in extra_state.values() for c in extra})
    for name in names:
        frame[name] = [extra_state.get(ScanKey(p, s, t), {}).get(name)
                       for p, s, t in zip(frame["patient_id"], frame["session"], frame["tracer"], strict=True)]
        frame[name] = frame[name].astype("float64")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
