"""Plain records passed between stages (picklable, so they cross process and Dask boundaries)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

#: Bare names ("pet", "dicom", "pet_dicom", "ct") are DICOM series folders.
DEFAULT_IMAGE_PATTERNS = ("pet.*", "image.*", "img.*", "ct.*", "pet", "dicom", "pet_dicom", "ct")
#: ``seg.dcm``/``mask.dcm`` (DICOM SEG) and ``rtstruct*.dcm``/``rs_*.dcm``/``rs.dcm`` (RTSTRUCT) are DICOM masks.
DEFAULT_MASK_PATTERNS = ("mask.*", "lesions.*", "lesion.*", "label.*", "labels.*", "seg.*", "rtstruct*.dcm",
                         "rs_*.dcm", "rs.dcm")


@dataclass(frozen=True, order=True)
class ScanKey:
    """Identity of a scan in every table: the cohort's own folder IDs, never anything from DICOM headers."""

    patient_id: str
    session: str
    tracer: str

    def __str__(self) -> str:
        return "/".join(p for p in (self.patient_id, self.session, self.tracer) if p)


#: The forms an organ segmentation comes in (docs/organs.md): a folder of one file per class, one multilabel file
#: (names from a table beside it or its NIfTI header extension), a DICOM SEG whose segments are organs.
ORGAN_FORMS = ("folder", "labels", "seg")


@dataclass(frozen=True)
class OrganSource:
    """Where a scan's organ segmentations are (``radiomx.discover.organs``): ``form`` one of ``ORGAN_FORMS``,
    ``path`` the folder or file, ``found_by`` how discovery found it (``organs/ beside the image``,
    ``radiomx.toml [organs]``, ``BIDS desc-organs``, ``DICOM SEG of the CT``), for messages."""

    form: str
    path: Path
    found_by: str = ""

    def __post_init__(self) -> None:
        if self.form not in ORGAN_FORMS:
            raise ValueError(f"organ source form {self.form!r} is not one of {', '.join(ORGAN_FORMS)}")


@dataclass(frozen=True)
class Scan:
    key: ScanKey
    folder: Path
    image: Path | None = None
    mask: Path | None = None
    #: A discovery problem as (stage, file, message); the scan is recorded as failed without being loaded.
    problem: tuple[str, str, str] | None = None
    #: Body weight (kg) from participants.tsv/sessions.tsv, for SUV of NIfTI PET with a sidecar (radiomx.discover.bids).
    body_weight_kg: float | None = None
    #: The TSV file the weight came from (or should come from), named in SUV error messages.
    body_weight_source: str = ""
    #: Reference-region masks as (region name, file), e.g. ("liver", .../ref-liver.nii.gz) (radiomx.discover).
    references: tuple[tuple[str, Path], ...] = ()
    #: Body height (m) from participants.tsv/sessions.tsv ``height`` (radiomx.discover.bids), for BSA/SDmax.
    height_m: float | None = None
    #: The slices of a DICOM series found scattered in an export (``radiomx.discover.dicom_export``), sorted by path;
    #: ``image`` is then the first of them. Empty for every other layout (``image`` says all).
    image_files: tuple[Path, ...] = ()
    #: Organ segmentations of the scan's patient frame (TotalSegmentator/MOOSE output), None when none was found.
    organs: OrganSource | None = None

    @property
    def image_source(self) -> Path | tuple[Path, ...] | None:
        """What the image is read, fingerprinted and hashed from: the series' explicit files, else ``image``."""
        return self.image_files or self.image


@dataclass(frozen=True)
class Layout:
    image_patterns: tuple[str, ...] = DEFAULT_IMAGE_PATTERNS
    mask_patterns: tuple[str, ...] = DEFAULT_MASK_PATTERNS
    #: Intensity unit of NIfTI/NRRD/MHA PET images that carry no sidecar: None (refuse) or "SUVbw".
    pet_units: str | None = None


#: Reference regions, in the order of every table's columns (``ref-<region>`` files; docs/lesions-and-indices.md).
REFERENCE_REGIONS = ("liver", "bloodpool", "adrenal_contralateral", "marrow")
#: What names a reference-region file, SEG segment or RTSTRUCT ROI (``ref-liver.nii.gz``, ``ref-bloodpool``).
REFERENCE_PREFIX = "ref-"
_REGION_BY_TOKEN = {re.sub(r"[^a-z0-9]", "", r): r for r in REFERENCE_REGIONS}


def region_of(label: str) -> str:
    """``ref-adrenal-contralateral`` / ``ref_Adrenal_Contralateral`` / ``refadrenalcontralateral`` ->
    ``adrenal_contralateral``; an unknown name comes back as its lower-case token (the worker warns about it).

    Why here and not with the statistics (``features.references``): discovery names regions too, and must stay
    free of numpy (``radiomx scan`` and ``--help`` start light)."""
    token = re.sub(r"[^a-z0-9]", "", label.lower())
    token = token[3:] if token.startswith("ref") else token
    return _REGION_BY_TOKEN.get(token, token)



def new_state_row(key: ScanKey, **values: Any) -> dict[str, Any]:
    """A scan's state row (``OUT/scans.parquet``) with every column at its "not known yet" value, then ``values``.

    Why here, once: the worker, the planner's invalid scans and the store must agree on the columns;
    ``store.tables.SCANS_SCHEMA`` is the typed form of these keys plus ``status`` and ``updated_at``, which the store
    adds when it commits (``tests/test_state_row.py`` checks that they agree)."""
    row: dict[str, Any] = {
        "patient_id": key.patient_id, "session": key.session, "tracer": key.tracer,
        "image_file": "", "mask_file": "", "image_stat": "", "mask_stat": "", "image_sha256": "", "mask_sha256": "",
        "params_version": "", "params_sha256": "", "work_key": "", "n_lesions": 0, "n_failed": 0,
    }
    for region in REFERENCE_REGIONS:
        row.update({f"ref_{region}_suv_mean": float("nan"), f"ref_{region}_suv_sd": float("nan"),
                    f"ref_{region}_voxels": None, f"ref_{region}_file": ""})
    row.update({"tmtv_ml": float("nan"), "ttlg": float("nan"), "dmax_voxel_mm": float("nan"), "height_m": float("nan"),
                "weight_kg": float("nan"), "image_orientation": ""})
    unknown = set(values) - set(row)
    if unknown:
        raise KeyError(f"not a state column: {sorted(unknown)}")
    row.update(values)
    return row


#: A DICOM UID (``1.2.840.10008...``): five or more dot-separated numbers. Exports often name files by their SOP
#: Instance UID, and UIDs are identifiers (DICOM PS3.15 replaces them when de-identifying).
_UID = re.compile(r"(?<![\w.])\d+(?:\.\d+){4,}(?![\w.]*\d\.\d)")


def redact_uids(text: str) -> str:
    """Replace UID-like tokens (file names exported as UIDs) by ``<UID>`` before they reach a table or a log."""
    return _UID.sub("<UID>", text)


class CohortPaths:
    """Rewrites paths under the cohort root as paths relative to it, wherever they occur in a text.

    Why text and not only ``Path.relative_to``: a path reaches messages through many hands (our ScanErrors, GDCM,
    pydicom and OS errors, tracebacks), written as the cohort was given, made absolute or with symlinks resolved. A
    cohort under ``/data/Smith_John_1957/`` must not put that name into a table, a log line or cron mail, so every
    spelling of the root is removed. ``relative`` does it for one path; ``text`` for any string.
    """

    def __init__(self, root: Path | str) -> None:
        root = Path(root)
        spellings = {str(root), os.path.abspath(root), os.path.realpath(root)} - {".", "", os.sep}
        ordered = sorted((s.rstrip(os.sep) for s in spellings), key=len, reverse=True)
        sep = re.escape(os.sep)
        # A spelling counts only as whole path components (not "mycohort/" for a root "cohort"); the bare root is
        # replaced only when absolute, since a relative root ("cohort") is also a word.
        under = "|".join(re.escape(s) + sep for s in ordered)
        bare = "|".join(re.escape(s) + r"(?![\w\-]|\.\w)" for s in ordered if os.path.isabs(s))
        pattern = "|".join(p for p in (under, bare) if p)
        self._pattern = re.compile(rf"(?<![\w.\-{sep}])(?:{pattern})") if pattern else None

    def text(self, text: str) -> str:
        """``text`` with every path under the root made relative (the root itself becomes ``.``)."""
        if not self._pattern or not text:
            return text
        return self._pattern.sub(lambda m: "" if m.group(0).endswith(os.sep) else ".", text)

    def relative(self, path: Path | str | None) -> str:
        """One path relative to the cohort, UID-like names redacted; "" for None."""
        if path is None:
            return ""
        return redact_uids(self.text(str(path)) or ".")

    def failure(self, failure: Failure) -> Failure:
        return replace(failure, file=self.text(failure.file), message=self.text(failure.message),
                       traceback=self.text(failure.traceback))

    def outcome(self, outcome: ScanOutcome) -> ScanOutcome:
        """The outcome with relative paths in its failures, warnings and every text value of its rows and state."""
        outcome.failures = [self.failure(f) for f in outcome.failures]
        outcome.warnings = [self.failure(f) for f in outcome.warnings]
        outcome.rows = [self._values(row) for row in outcome.rows]
        outcome.state = self._values(outcome.state)
        return outcome

    def _values(self, row: dict[str, Any]) -> dict[str, Any]:
        return {k: self.text(v) if isinstance(v, str) else v for k, v in row.items()}


@dataclass(frozen=True)
class Failure:
    """One failures-table row: which scan (and lesion, if only one lesion failed), where, and what to do."""

    key: ScanKey
    stage: str
    file: str
    message: str
    lesion_id: int | None = None
    #: Traceback of an unexpected error: for ``--verbose`` and ``--log-file`` only, never in a table.
    traceback: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("file", "message", "traceback"):
            object.__setattr__(self, name, redact_uids(getattr(self, name)))

    def as_row(self) -> dict[str, Any]:
        return {"patient_id": self.key.patient_id, "session": self.key.session, "tracer": self.key.tracer,
                "lesion_id": self.lesion_id, "stage": self.stage, "file": self.file, "message": self.message}


#: Stages whose failures leave a scan's rows complete: a QC picture that could not be drawn loses no feature, so the
#: scan stays "ok" (and is not recomputed next run); the failures row still says what went wrong.
ADVISORY_STAGES = frozenset({"qc"})


@dataclass(frozen=True)
class QcPicture:
    """A rendered QC picture on its way from a worker to the writer (which alone writes into OUT)."""

    #: What the picture was drawn from (``radiomx.qc.files.render_key``); stored in the PNG, decides re-rendering.
    key: str
    png: bytes
    thumbnail: bytes


@dataclass
class ScanOutcome:
    """What one scan produced: feature rows, failures, and the state row that marks it done."""

    key: ScanKey
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    #: Rows of the failures table that do not fail the scan (stage "reference": an implausible reference region;
    #: stage "voi": a lesion with no voxel above its threshold). They change neither ``status`` nor the exit code.
    warnings: list[Failure] = field(default_factory=list)
    #: The scan's QC picture when ``--qc`` asked for one and it could be drawn.
    picture: QcPicture | None = None

    @property
    def status(self) -> str:
        """ok | partial | failed | negative. "negative": the mask was read and holds no lesion (a segmentation
        that found nothing), which is data (a burden row with count 0), not a failure. Failures of an advisory
        stage (a QC picture that could not be drawn) leave the scan's rows done."""
        if self._only_advisory_failures:
            return "negative" if self.is_negative else "ok"
        return "partial" if self.rows else "failed"

    @property
    def _only_advisory_failures(self) -> bool:
        return all(f.stage in ADVISORY_STAGES for f in self.failures)

    @property
    def is_negative(self) -> bool:
        return (self._only_advisory_failures and not self.rows and bool(self.state.get("work_key"))
                and not self.state.get("n_lesions"))
