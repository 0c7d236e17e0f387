"""Every table radiomx writes, declared once: its columns (name, type, a new row's value), key, sort order, and the
columns added after files were written without them (and what such an older file reads them as).

Why one declaration: the state row a worker fills (``records.new_state_row``), the store's Arrow schemas
(``store.schema.arrow_schema``), the derived tables' schemas, the key columns ``radiomx table`` sorts by, and the
reading of files an older radiomx wrote (``store.schema.conform``) are all generated from here, so a column cannot
be added to one and forgotten in another.

Adding a column is one line in its table, at the place it should appear::

    Column("suv_peak_method", STR, since="issue 24"),            # older files read it as null
    Column("options", STR, since="qc pictures", older=""),       # older files read it as ""

No table library here: ``records`` imports this module, and ``radiomx scan`` and ``--help`` start without
pyarrow. Types are named (``STR``, ``INT``, ``FLOAT``, ``TIME``, ``BOOL``); ``store.schema`` maps them to Arrow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

STR, INT, FLOAT, TIME, BOOL = "string", "int64", "float64", "timestamp[us, UTC]", "bool"
#: What a new row holds in a column until it is known: text empty, figures NaN (stored as null), the rest null.
_NOT_KNOWN = {STR: "", FLOAT: math.nan}
_BY_TYPE: Any = object()  # "new" not given: the type's "not known yet" value

#: Reference regions, in the order of every table's columns (``ref-<region>`` files; docs/lesions-and-indices.md).
REFERENCE_REGIONS = ("liver", "bloodpool", "adrenal_contralateral", "marrow", "spleen")
#: Regions added after files were written without their columns: region -> ``since`` (older files read null).
_REGION_SINCE = {"spleen": "organ references"}
#: Lesion-site groups, in column order (``site_<group>_count``; radiomx.features.lesion_sites, docs/organs.md).
SITE_GROUPS = ("bone", "spleen", "liver", "lung", "other_extranodal", "outside_organs")
_ORGANS = "organ references"
SCAN_KEY = ("patient_id", "session", "tracer")
LESION_KEY = (*SCAN_KEY, "lesion_id")
PATIENT_KEY = ("patient_id", "session")


@dataclass(frozen=True)
class Column:
    """One column: its name, its type, and what older files and new rows hold in it."""

    name: str
    type: str
    #: When the column was added after files had been written without it ("" = from the start). Such a column may be
    #: missing from a file; it then reads as ``older``.
    since: str = ""
    older: Any = None
    #: A new row's value (``Table.new_row``); by default "" for text, NaN for figures, null otherwise.
    new: Any = _BY_TYPE
    #: Set by the store when it commits the row (``status``, ``updated_at``), not by whoever computes it.
    stamped: bool = False

    def __post_init__(self) -> None:
        if self.new is _BY_TYPE:
            object.__setattr__(self, "new", _NOT_KNOWN.get(self.type))


@dataclass(frozen=True)
class Table:
    """One table: its declared columns in file order, its key, and the order its rows are stored in."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    #: Stored row order; None: the key. An empty tuple keeps the order rows were appended in (the run log).
    sort: tuple[str, ...] | None = None
    #: Whether rows carry columns beyond the declared ones (PyRadiomics features, the patient table's blocks).
    open: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def order(self) -> tuple[str, ...]:
        return self.key if self.sort is None else self.sort

    @property
    def added(self) -> dict[str, Any]:
        """Columns an older file may lack, with what it reads them as."""
        return {c.name: c.older for c in self.columns if c.since}

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def new_row(self, **values: Any) -> dict[str, Any]:
        """A row with every column but the stamped ones at its "not known yet" value, then ``values`` (a name the
        table does not declare is a KeyError: a typo would otherwise be silently dropped)."""
        row = {c.name: c.new for c in self.columns if not c.stamped}
        unknown = set(values) - set(row)
        if unknown:
            raise KeyError(f"not a {self.name} column: {sorted(unknown)}")
        row.update(values)
        return row


def _regions(*fields: tuple[str, str], since: str = "") -> tuple[Column, ...]:
    """One column per reference region and field (``ref_liver_suv_mean``, ...), region by region; a region added
    later has its own ``since``."""
    return tuple(Column(f"ref_{r}_{name}", kind, _REGION_SINCE.get(r, since)) for r in REFERENCE_REGIONS
                 for name, kind in fields)


#: What each reference region records beyond its statistics (docs/organs.md): where it came from (drawn file, or
#: organ file(s) and definition), why a derived region is null, its volume and centre (LPS mm).
_REGION_PLACE = (("source", STR), ("reason", STR), ("volume_ml", FLOAT), ("centre_x_mm", FLOAT),
                 ("centre_y_mm", FLOAT), ("centre_z_mm", FLOAT))
#: Per site group: lesions, volume and TLG (radiomx.features.lesion_sites.site_burden).
_SITES = tuple(Column(f"site_{g}_{name}", kind, _ORGANS) for g in SITE_GROUPS
               for name, kind in (("count", INT), ("volume_ml", FLOAT), ("tlg", FLOAT)))


_KEY = (Column("patient_id", STR), Column("session", STR), Column("tracer", STR))
_NAMED = "named lesions"
_READOUTS = "trial read-outs"

#: One row per lesion (``OUT/features/<tracer>.parquet``): these columns, then the PET indices and SUV inputs, then
#: the PyRadiomics features (float64, PyRadiomics' names).
FEATURES = Table("features", (
    *_KEY, Column("lesion_id", INT),
    Column("lesion_name", STR, since=_NAMED), Column("source_label", INT),
    Column("segment_number", INT, since=_NAMED), Column("roi_number", INT, since=_NAMED),
    Column("label_value", INT, since=_NAMED), Column("component_number", INT, since=_NAMED),
    Column("voxel_count", INT),
    Column("params_version", STR), Column("params_sha256", STR),
    Column("radiomx_version", STR), Column("pyradiomics_version", STR),
    Column("image_sha256", STR), Column("mask_sha256", STR), Column("image_file", STR), Column("mask_file", STR),
    Column("unit", STR), Column("extracted_at", TIME),
    # Lesion sites (docs/organs.md): on every row, so that tables of cohorts with and without organs stack with one
    # schema; "" (fraction null) when the scan had no organ masks, as older files read them.
    Column("lesion_site", STR, _ORGANS, older=""), Column("lesion_site_fraction", FLOAT, _ORGANS),
    Column("lesion_site_group", STR, _ORGANS, older=""), Column("adrenal_side", STR, _ORGANS, older=""),
), key=LESION_KEY, open=True)

#: One row per failed scan or lesion, and per warning (``OUT/failures.parquet``).
FAILURES = Table("failures", (
    *_KEY, Column("lesion_id", INT),
    Column("stage", STR), Column("file", STR), Column("message", STR),
    Column("run_id", STR), Column("failed_at", TIME),
    # "failure" (rows missing or a step failed: exit 1) or "warning" (rows complete: exit 0); older rows: null.
    Column("severity", STR, since="warnings"),
), key=LESION_KEY, sort=(*LESION_KEY, "stage", "message"))

#: Per-scan state (``OUT/scans.parquet``): fingerprints, work key, status; what makes a scan "done".
SCANS = Table("scans", (
    *_KEY, Column("image_file", STR), Column("mask_file", STR),
    Column("image_stat", STR), Column("mask_stat", STR), Column("image_sha256", STR), Column("mask_sha256", STR),
    Column("params_version", STR), Column("params_sha256", STR), Column("work_key", STR),
    Column("status", STR, stamped=True), Column("n_lesions", INT, new=0), Column("n_failed", INT, new=0),
    Column("updated_at", TIME, stamped=True),
    # Per-scan indices (docs/lesions-and-indices.md): reference regions, TMTV/TTLG over the union of lesion voxels,
    # Dmax over lesion voxels, height and weight; the image's storage orientation (LPS, RAS, ...).
    *_regions(("suv_mean", FLOAT), ("suv_sd", FLOAT), ("voxels", INT), ("file", STR), since="PET indices"),
    Column("tmtv_ml", FLOAT, since="PET indices"), Column("ttlg", FLOAT, since=_NAMED),
    Column("dmax_voxel_mm", FLOAT, since="PET indices"),
    Column("height_m", FLOAT, since="PET indices"), Column("weight_kg", FLOAT, since="PET indices"),
    Column("image_orientation", STR, since="storage orientation"),
    # A failed rerun that kept the scan's last good rows: their inputs' image_sha256 ("" when the rows are this
    # state's own). The state's figures are then those rows' too (radiomx.run.last_good).
    Column("rows_kept_from", STR, since="last good rows", older=""),
    # Read-outs (issue 25, docs/readouts.md): each region's SUVmax (Deauville compares the liver's), and the scan's
    # SUL factor (SUL = SUVbw x sul_factor), the lean body mass and formula it used, or null with sul_note. Never sex.
    *_regions(("suv_max", FLOAT), since=_READOUTS),
    Column("sul_factor", FLOAT, since=_READOUTS), Column("lbm_kg", FLOAT, since=_READOUTS),
    Column("lbm_formula", STR, since=_READOUTS, older=""), Column("sul_source", STR, since=_READOUTS, older=""),
    Column("sul_note", STR, since=_READOUTS, older=""),
    # Organ segmentations (docs/organs.md): the source (relative to the cohort), its form, the organ masks read
    # onto the PET grid (so that a lesion site "other" is not mistaken for "none"), its fingerprints; the derived
    # regions' places; the lesions by site group.
    Column("organs_file", STR, _ORGANS, older=""), Column("organs_form", STR, _ORGANS, older=""),
    Column("organs_classes", STR, _ORGANS, older=""), Column("organs_stat", STR, _ORGANS, older=""),
    Column("organs_sha256", STR, _ORGANS, older=""),
    *(Column(c.name, c.type, _ORGANS) for c in _regions(*_REGION_PLACE)),
    *_SITES,
), key=SCAN_KEY)

#: One row per run (``OUT/runs.parquet``), in the order the runs ended.
RUNS = Table("runs", (
    Column("run_id", STR), Column("started_at", TIME), Column("ended_at", TIME), Column("command", STR),
    Column("radiomx_version", STR), Column("pyradiomics_version", STR),
    Column("planned", INT), Column("computed", INT), Column("skipped", INT), Column("failed", INT),
    Column("exit_code", INT),
    # The cohort relative to OUT and the options it was read with (JSON), for ``radiomx qc``/``compare``.
    Column("cohort", STR, since="qc pictures", older=""), Column("options", STR, since="qc pictures", older=""),
), key=("run_id",), sort=())

#: One row per scan (``OUT/burden.parquet``; definitions in radiomx.derive.burden).
BURDEN = Table("burden", (
    *_KEY, Column("status", STR), Column("lesion_count", INT), Column("lesions_measured", INT),
    Column("tmtv_ml", FLOAT), Column("ttlg", FLOAT), Column("tmtv_definition", STR), Column("ttlg_definition", STR),
    Column("suv_max_hottest", FLOAT), Column("hottest_lesion_id", INT), Column("suv_peak_hottest", FLOAT),
    Column("mtv_largest_ml", FLOAT), Column("largest_lesion_id", INT),
    *_regions(("suv_mean", FLOAT)),
    *_regions(("suv_sd", FLOAT), ("voxels", INT), *_REGION_PLACE),
    *_SITES,
    Column("dmax_centroid_mm", FLOAT), Column("dmax_voxel_mm", FLOAT), Column("dmax_bulk_mm", FLOAT),
    Column("dmax_note", STR),
    Column("height_m", FLOAT), Column("weight_kg", FLOAT), Column("bsa_m2", FLOAT), Column("bsa_formula", STR),
    Column("sdmax_per_m2", FLOAT), Column("sdmax_note", STR), Column("burden_note", STR),
    # Read-outs (radiomx.derive.scores, docs/readouts.md), settings from the scan's own parameter file version.
    Column("params_version", STR), Column("sul_factor", FLOAT), Column("lbm_kg", FLOAT), Column("lbm_formula", STR),
    Column("sul_note", STR), Column("sul_peak_hottest", FLOAT), Column("sul_max_hottest", FLOAT),
    *_regions(("suv_max", FLOAT), ("sul_mean", FLOAT)), Column("ref_liver_sul_sd", FLOAT),
    Column("deauville", INT), Column("deauville_low", INT), Column("deauville_high", INT),
    Column("deauville_note", STR), Column("deauville_definition", STR),
    Column("qpet", FLOAT), Column("qpet_note", STR), Column("qpet_definition", STR),
    Column("krenning", INT), Column("krenning_low", INT), Column("krenning_high", INT),
    Column("krenning_note", STR), Column("krenning_definition", STR),
), key=SCAN_KEY)
#: Burden fields that are figures (compared across tracers, copied into the patient table).
BURDEN_FIGURES = tuple(c.name for c in BURDEN.columns if c.type in (INT, FLOAT))
#: Burden figures that also get a difference (A - B) and a ratio (A / B) in a compare table.
CONTRASTED = ("lesion_count", "tmtv_ml", "ttlg", "suv_max_hottest", "suv_peak_hottest", "mtv_largest_ml",
              "dmax_centroid_mm", "dmax_voxel_mm", "dmax_bulk_mm", "sdmax_per_m2")

#: One row per (patient, session) with a scan of tracer A or B (``OUT/compare/<a>_vs_<b>.parquet``).
COMPARE = Table("compare", (
    Column("patient_id", STR), Column("session", STR), Column("tracer_a", STR), Column("tracer_b", STR),
    Column("missing_reason", STR), Column("status_a", STR), Column("status_b", STR), Column("positive_on", STR),
    Column("days_between", INT), Column("days_between_note", STR),
    Column("image_sha256_a", STR), Column("image_sha256_b", STR),
    Column("lesion_pairing", STR), Column("lesions_paired", INT), Column("lesions_only_a", INT),
    Column("lesions_only_b", INT), Column("dice_mean", FLOAT), Column("dice_union", FLOAT),
    *(Column(f"{f}_{side}", BURDEN.column(f).type) for f in BURDEN_FIGURES for side in ("a", "b")),
    # A difference keeps its figure's type (lesion_count_diff is a count: INT); a ratio is FLOAT.
    *(Column(f"{f}_{kind}", BURDEN.column(f).type if kind == "diff" else FLOAT)
      for f in CONTRASTED for kind in ("diff", "ratio")),
), key=PATIENT_KEY)

#: Lesion pairs of a compare table (``OUT/compare/<a>_vs_<b>.lesions.parquet``), in pairing order.
LESION_PAIRS = Table("lesion_pairs", (
    Column("patient_id", STR), Column("session", STR), Column("lesion_id_a", INT), Column("lesion_id_b", INT),
    Column("dice", FLOAT), Column("centroid_distance_mm", FLOAT),
    Column("mask_sha256_a", STR), Column("mask_sha256_b", STR), Column("dice_union", FLOAT),
), key=PATIENT_KEY, sort=())

#: The model-ready table (``OUT/patients.parquet``): the key, then one column block per tracer and tracer pair
#: (radiomx.derive.patients).
PATIENTS = Table("patients", (Column("patient_id", STR), Column("session", STR)), key=PATIENT_KEY, open=True)

#: Response between sessions of one tracer (``OUT/response/<tracer>.parquet``; radiomx.derive.response): one row per
#: (patient, session) a patient has or the session declaration names; never a date (only the order).
RESPONSE = Table("response", (
    Column("patient_id", STR), Column("session", STR), Column("session_rank", INT), Column("order_source", STR),
    Column("baseline_session", STR), Column("status", STR),
    Column("delta_suv_max_pct", FLOAT), Column("delta_sul_peak", FLOAT), Column("delta_sul_peak_pct", FLOAT),
    Column("delta_tmtv_pct", FLOAT), Column("delta_lesion_count", INT), Column("new_lesions", BOOL),
    Column("sul_peak", FLOAT), Column("sul_peak_baseline", FLOAT), Column("percist_reference", STR),
    Column("reference_sul_mean", FLOAT), Column("reference_sul_mean_baseline", FLOAT),
    Column("percist_measurable_sul", FLOAT), Column("deauville_baseline", INT), Column("deauville", INT),
    Column("percist", STR), Column("percist_note", STR), Column("lugano", STR), Column("lugano_note", STR),
    Column("delta_suv_max_class", STR), Column("response_note", STR),
), key=PATIENT_KEY, sort=("patient_id", "session_rank", "session"))

#: Known failures the team accepted (``OUT/acknowledged.tsv``, written by hand; radiomx.store.acknowledged).
ACKNOWLEDGED = Table("acknowledged", (*_KEY, Column("stage", STR), Column("reason", STR)), key=(*SCAN_KEY, "stage"))

#: The tables ``radiomx table --which`` and ``read_table`` know, by name.
TABLES = {t.name: t for t in (FEATURES, FAILURES, SCANS, RUNS, BURDEN, COMPARE, PATIENTS, RESPONSE)}
