"""The model-ready patient table ``OUT/patients.parquet``: one row per (patient_id, session) (one per patient when
the cohort has no sessions), one column block per tracer, then one block per compared tracer pair.

Column naming: ``<tracer>__<field>`` with the canonical tracer name and a double underscore, e.g.
``18F-FDG__tmtv_ml``, ``68Ga-pentixafor__hottest__original_firstorder_Entropy``, and for a pair
``68Ga-pentixafor_vs_18F-FDG__positive_on``. Why: a field never contains ``__`` (radiomx and PyRadiomics names use
single underscores), so ``name.split("__", 1)`` always recovers (block, field); ``.`` would clash with R's
make.names and pandas attribute access. Names start with a digit and contain ``-``: pandas and R arrow
(``arrow::read_parquet``) keep them as they are (``df["18F-FDG__tmtv_ml"]``, ``` df$`18F-FDG__tmtv_ml` ```), DuckDB
needs double quotes; R's ``read.csv`` needs ``check.names = FALSE``.

Blocks per tracer: the burden figures and status; ``hottest__<column>`` and ``largest__<column>``: the PET indices
and PyRadiomics features of the hottest lesion (highest SUVmax) and of the largest (highest MTV).
A patient without a scan of a tracer has nulls in that block (``<tracer>__status`` null). Integer fields (lesion
ids, counts, ``voxel_count``) stay int64 with nulls where a patient has no such lesion: the stored type never
depends on whether some patient is negative.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from radiomx.derive.burden import NUMERIC_FIELDS, burden_path
from radiomx.derive.compare import CONTRASTED
from radiomx.derive.files import write_if_changed
from radiomx.store.outdir import compare_path, existing_pairs
from radiomx.store.schema import with_nullable_integers
from radiomx.store.tables import features_path, is_feature_column

PATIENT_KEY = ["patient_id", "session"]
SEPARATOR = "__"
#: radiomx lesion columns (PET indices, CT equivalents) carried into the hottest/largest blocks.
LESION_INDEX = re.compile(r"^(suv_(max|mean|sd|peak|peak_local|peak_global)|suv_max_to_\w+|suv_peak_to_liver|"
                          r"mtv_ml|tlg|hu_(max|mean|sd)|volume_ml|voxel_count)$")
PAIR_FIELDS = ["missing_reason", "positive_on", "days_between", "lesion_pairing", "lesions_paired",
               "lesions_only_a", "lesions_only_b", "dice_mean", "dice_union",
               *[f"{f}_{k}" for f in CONTRASTED for k in ("diff", "ratio")]]


def patients_path(out: Path) -> Path:
    return Path(out) / "patients.parquet"


def _lesion_columns(out: Path, tracer: str) -> tuple[pd.DataFrame, list[str]]:
    """The lesion rows of one tracer with the columns the hottest/largest blocks carry (read once per tracer: with
    filters a feature table has over a thousand columns)."""
    path = features_path(out, tracer)
    if not path.is_file():
        return pd.DataFrame(columns=[*PATIENT_KEY, "lesion_id"]), []
    columns = [c for c in pq.read_schema(path).names if is_feature_column(c) or LESION_INDEX.match(c)]
    return with_nullable_integers(pq.read_table(path, columns=[*PATIENT_KEY, "lesion_id", *columns])), columns


def _lesion_block(tracer: str, lesions: pd.DataFrame, columns: list[str], burden: pd.DataFrame, id_column: str,
                  name: str) -> pd.DataFrame:
    if not columns:
        return pd.DataFrame(columns=PATIENT_KEY)
    wanted = burden[[*PATIENT_KEY, id_column]].dropna().rename(columns={id_column: "lesion_id"})
    wanted["lesion_id"] = wanted["lesion_id"].astype("int64")
    chosen = wanted.merge(lesions, on=[*PATIENT_KEY, "lesion_id"], how="inner").drop(columns="lesion_id")
    return chosen.rename(columns={c: f"{tracer}{SEPARATOR}{name}{SEPARATOR}{c}" for c in columns})


def build_patients(out: Path) -> pd.DataFrame:
    if not burden_path(out).is_file():
        return pd.DataFrame(columns=PATIENT_KEY)
    burden = with_nullable_integers(pq.read_table(burden_path(out)))
    table = burden[PATIENT_KEY].drop_duplicates().sort_values(PATIENT_KEY).reset_index(drop=True)
    for tracer, scans in burden.groupby("tracer", sort=True):
        block = scans[[*PATIENT_KEY, "status", *NUMERIC_FIELDS]]
        block = block.rename(columns={c: f"{tracer}{SEPARATOR}{c}" for c in ["status", *NUMERIC_FIELDS]})
        table = table.merge(block, on=PATIENT_KEY, how="left")
        lesions, columns = _lesion_columns(out, str(tracer))
        for id_column, name in (("hottest_lesion_id", "hottest"), ("largest_lesion_id", "largest")):
            chosen = _lesion_block(str(tracer), lesions, columns, scans, id_column, name)
            table = table.merge(chosen, on=PATIENT_KEY, how="left")
    for a, b in existing_pairs(out):
        pair = with_nullable_integers(pq.read_table(compare_path(out, a, b), columns=[*PATIENT_KEY, *PAIR_FIELDS]))
        table = table.merge(pair.rename(columns={c: f"{a}_vs_{b}{SEPARATOR}{c}" for c in PAIR_FIELDS}),
                            on=PATIENT_KEY, how="left")
    return table


def write_patients(out: Path) -> bool:
    return write_if_changed(patients_path(out), build_patients(out))
