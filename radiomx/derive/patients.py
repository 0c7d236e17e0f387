"""The model-ready patient table ``OUT/patients.parquet``: one row per (patient_id, session) (one per patient when
the cohort has no sessions), one column block per tracer, then one block per compared tracer pair.

Column naming: ``<tracer>__<field>`` with the canonical tracer name and a double underscore, e.g.
``18F-FDG__tmtv_ml``, ``68Ga-pentixafor__hottest__original_firstorder_Entropy``, and for a pair
``68Ga-pentixafor_vs_18F-FDG__positive_on``. Why: a field never contains ``__`` (radiomx and PyRadiomics names use
single underscores), so ``name.split("__", 1)`` always recovers (block, field); ``.`` would clash with R's
make.names and pandas attribute access. Names start with a digit and contain ``-``: pandas and R arrow
(``arrow::read_parquet``) keep them as they are (``df["18F-FDG__tmtv_ml"]``, ``` df$`18F-FDG__tmtv_ml` ```), DuckDB
needs double quotes; R's ``read.csv`` needs ``check.names = FALSE``.

Blocks per tracer: the burden figures and status (with the scores and SUL figures); ``hottest__<column>`` and
``largest__<column>``: the PET indices (SUL too) and PyRadiomics features of the hottest lesion (highest SUVmax) and
of the largest (highest MTV); ``response__<column>``: the scan's response row (cohorts with sessions).
A patient without a scan of a tracer has nulls in that block (``<tracer>__status`` null). Integer fields (lesion
ids, counts, ``voxel_count``) stay int64 with nulls where a patient has no such lesion: the stored type never
depends on whether some patient is negative.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from radiomx.columns import BURDEN_FIGURES, CONTRASTED, PATIENT_KEY, RESPONSE
from radiomx.derive.burden import burden_path
from radiomx.derive.files import write_if_changed
from radiomx.derive.response_table import response_path, response_tracers
from radiomx.store.outdir import compare_path, existing_pairs
from radiomx.store.publish import features_path
from radiomx.store.schema import is_feature_column

SEPARATOR = "__"
#: radiomx lesion columns (PET indices, CT equivalents) carried into the hottest/largest blocks.
LESION_INDEX = re.compile(r"^(suv_(max|mean|sd|peak|peak_local|peak_global)|suv_max_to_\w+|suv_peak_to_liver|"
                          r"sul_(max|mean|peak)|suvbsa_(max|mean|peak)|"
                          r"mtv_ml|tlg|hu_(max|mean|sd)|volume_ml|voxel_count)$")
#: The response table's columns carried into ``<tracer>__response__<field>`` (all but its key).
RESPONSE_FIELDS = [c for c in RESPONSE.names if c not in PATIENT_KEY]
PAIR_FIELDS = ["missing_reason", "positive_on", "days_between", "lesion_pairing", "lesions_paired",
               "lesions_only_a", "lesions_only_b", "dice_mean", "dice_union",
               *[f"{f}_{k}" for f in CONTRASTED for k in ("diff", "ratio")]]

Key = tuple[str, str]


def patients_path(out: Path) -> Path:
    return Path(out) / "patients.parquet"


def _keys(table: pa.Table, columns: tuple[str, ...] = PATIENT_KEY) -> list[tuple]:
    return list(zip(*(table[c].to_pylist() for c in columns), strict=True))


class _Wide:
    """The patient table being built: one row per patient key, blocks of columns added left to right, a patient
    without a row in a block getting nulls there (what a left join gives, without a join's row reordering)."""

    def __init__(self, keys: list[Key]) -> None:
        self.row = {key: i for i, key in enumerate(keys)}
        self.names = list(PATIENT_KEY)
        self.columns = [pa.array([k[0] for k in keys], pa.string()), pa.array([k[1] for k in keys], pa.string())]

    def add(self, block: pa.Table, keys: list[Key], prefix: str) -> None:
        """``block``'s columns as ``<prefix><column>``, its row ``i`` going to patient ``keys[i]`` (a key the table
        does not have is left out)."""
        take: list[int | None] = [None] * len(self.row)
        for source, key in enumerate(keys):
            if key in self.row:
                take[self.row[key]] = source
        placed = block.take(pa.array(take, pa.int64()))
        self.names += [f"{prefix}{c}" for c in block.column_names]
        self.columns += placed.columns

    def table(self) -> pa.Table:
        return pa.Table.from_arrays(self.columns, names=self.names)


def _lesion_columns(out: Path, tracer: str) -> tuple[pa.Table, list[str]]:
    """The lesion rows of one tracer with the columns the hottest/largest blocks carry (read once per tracer: with
    filters a feature table has over a thousand columns)."""
    path = features_path(out, tracer)
    if not path.is_file():
        return pa.table({}), []
    columns = [c for c in pq.read_schema(path).names if is_feature_column(c) or LESION_INDEX.match(c)]
    return pq.read_table(path, columns=[*PATIENT_KEY, "lesion_id", *columns]), columns


def _lesion_block(wide: _Wide, prefix: str, lesions: pa.Table, columns: list[str], scans: pa.Table,
                  id_column: str) -> None:
    """The chosen lesion's columns (hottest or largest) of each scan that has one."""
    if not columns:
        return
    where = {key: i for i, key in enumerate(_keys(lesions, (*PATIENT_KEY, "lesion_id")))}
    chosen = [(key[:2], where.get(key)) for key in _keys(scans, (*PATIENT_KEY, id_column)) if key[2] is not None]
    chosen = [(key, row) for key, row in chosen if row is not None]
    wide.add(lesions.select(columns).take(pa.array([r for _, r in chosen], pa.int64())),
             [key for key, _ in chosen], prefix)


def build_patients(out: Path) -> pa.Table:
    if not burden_path(out).is_file():
        return pa.table({c: pa.array([], pa.string()) for c in PATIENT_KEY})
    burden = pq.read_table(burden_path(out))
    wide = _Wide(sorted(set(_keys(burden))))
    for tracer in sorted(set(burden["tracer"].to_pylist())):
        scans = burden.filter(pc.equal(burden["tracer"], tracer))
        wide.add(scans.select(["status", *BURDEN_FIGURES]), _keys(scans), f"{tracer}{SEPARATOR}")
        lesions, columns = _lesion_columns(out, tracer)
        for id_column, name in (("hottest_lesion_id", "hottest"), ("largest_lesion_id", "largest")):
            _lesion_block(wide, f"{tracer}{SEPARATOR}{name}{SEPARATOR}", lesions, columns, scans, id_column)
    for a, b in existing_pairs(out):
        pair = pq.read_table(compare_path(out, a, b), columns=[*PATIENT_KEY, *PAIR_FIELDS])
        wide.add(pair.select(PAIR_FIELDS), _keys(pair), f"{a}_vs_{b}{SEPARATOR}")
    for tracer in response_tracers(out):
        response = pq.read_table(response_path(out, tracer), columns=[*PATIENT_KEY, *RESPONSE_FIELDS])
        wide.add(response.select(RESPONSE_FIELDS), _keys(response), f"{tracer}{SEPARATOR}response{SEPARATOR}")
    return wide.table()


def write_patients(out: Path) -> bool:
    return write_if_changed(patients_path(out), build_patients(out))
