"""Plain records passed between stages (picklable, so they cross process and Dask boundaries)."""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from radiomx.columns import REFERENCE_REGIONS, SCANS
from radiomx.vocabulary import ADVISORY_STAGES, ScanStatus, Stage

#: Bare names ("pet", "dicom", "pet_dicom", "ct") are DICOM series folders.
DEFAULT_IMAGE_PATTERNS = ("pet.*", "image.*", "img.*", "ct.*", "pet", "dicom", "pet_dicom", "ct")
#: ``seg.dcm``/``mask.dcm`` (DICOM SEG) and ``rtstruct*.dcm``/``rs_*.dcm``/``rs.dcm`` (RTSTRUCT) are DICOM masks.
DEFAULT_MASK_PATTERNS = ("mask.*", "lesions.*", "lesion.*", "label.*", "labels.*", "seg.*", "rtstruct*.dcm",
                         "rs_*.dcm", "rs.dcm")


#: The key columns of every table: the cohort's own IDs, written as given.
KEY_COLUMNS = ("patient_id", "session", "tracer")


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
    #: Sex (``sex_code``: M, F, O, or "" unknown) from participants.tsv/sessions.tsv ``sex`` (radiomx.discover.bids),
    #: for lean body mass (SUL, radiomx.inputs.lbm). Read at discovery; not yet part of the work key (issue 25: it
    #: joins it when SUL columns are written).
    sex: str = ""
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


#: Spellings of a patient's sex -> DICOM's code (Patient's Sex (0010,0040): M, F, O). BIDS ``participants.tsv``
#: recommends ``male``/``female``/``other`` and also takes ``M``/``F``/``O`` in either case.
_SEX_CODES = {"m": "M", "male": "M", "f": "F", "female": "F", "o": "O", "other": "O"}


def sex_code(text: str | None) -> str:
    """``"male"``, ``"M"``, ``"m"`` -> ``"M"`` (likewise F, O); anything else, ``"n/a"`` or empty -> ``""``
    (unknown: a sex-specific formula such as lean body mass then gives null with a reason, never a guess).

    Why here: DICOM headers (``inputs``), BIDS sidecars and ``participants.tsv`` (``discover``) all spell it, and
    each must read it the same way without importing the other."""
    return _SEX_CODES.get(str(text or "").strip().lower(), "")



def new_state_row(key: ScanKey, **values: Any) -> dict[str, Any]:
    """A scan's state row (``OUT/scans.parquet``) with every column at its "not known yet" value, then ``values``;
    generated from the table's declaration (``radiomx.columns.SCANS``), without ``status`` and ``updated_at``, which
    the store stamps when it commits."""
    return SCANS.new_row(patient_id=key.patient_id, session=key.session, tracer=key.tracer, **values)


#: A DICOM UID (``1.2.840.10008...``): five or more dot-separated numbers, wherever it starts in a name (after a
#: prefix too: ``IMG_1.2.840...``, ``ZQX_20240110_1.3.12...``). Exports often name files by their SOP Instance UID,
#: and UIDs are identifiers (DICOM PS3.15 replaces them when de-identifying).
_UID = re.compile(r"(?<![\d.])\d+(?:\.\d+){4,}(?![\w.]*\d\.\d)")
_YEAR, _MONTH, _DAY = r"(?:19|20)\d\d", r"(?:0?[1-9]|1[0-2])", r"(?:0?[1-9]|[12]\d|3[01])"
_MM, _DD = r"(?:0[1-9]|1[0-2])", r"(?:0[1-9]|[12]\d|3[01])"
_MONTH_NAME = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
#: A calendar date as file names and messages spell it: compact (``20230815``, dcm2niix's ``%t`` =
#: ``20230815101500``, ``15082023``), with one separator repeated (``2023-08-15``, ``2023_08_15``, ``15.08.2023``,
#: ``08/15/2023``) or with a month name (``15 Aug 2023``, ``Aug 15, 2023``). Years 1900-2099 only.
_DATE = re.compile("|".join([
    rf"{_YEAR}{_MM}{_DD}(?:\d{{4}}(?:\d\d)?)?", rf"{_DD}{_MM}{_YEAR}", rf"{_MM}{_DD}{_YEAR}",
    rf"{_YEAR}(?P<s1>[-_./]){_MONTH}(?P=s1){_DAY}", rf"{_DAY}(?P<s2>[-_./]){_MONTH}(?P=s2){_YEAR}",
    rf"{_MONTH}(?P<s3>[-_./]){_DAY}(?P=s3){_YEAR}",
    rf"{_DAY}[ _-]?{_MONTH_NAME}[ _-]?{_YEAR}", rf"{_MONTH_NAME} {_DAY},? {_YEAR}",
]).join([r"(?<!\d)(?<!\d\.)(?:", r")(?!\d)"]), re.IGNORECASE)
#: A run of hex digits this long is a digest (sha256, a work key): a date-like run inside it is not a date.
_DIGEST_RUN = 16


def _date_or_digest(match: re.Match[str]) -> str:
    text, start, end = match.string, match.start(), match.end()
    while start > 0 and text[start - 1] in string.hexdigits:
        start -= 1
    while end < len(text) and text[end] in string.hexdigits:
        end += 1
    return match.group(0) if end - start >= _DIGEST_RUN else "<DATE>"


def redact(text: str) -> str:
    """``text`` with UID-like tokens replaced by ``<UID>`` and date-like tokens by ``<DATE>``: the file names a
    scanner, an export or a person chose (``1.2.840...dcm``, dcm2niix's ``pet_20230815101500.nii.gz``,
    ``pet_2023-08-15.nii.gz``), and free text from headers (lesion names), before they reach a table, a log or a
    message. Digests are left whole."""
    if not text:
        return text
    return _DATE.sub(_date_or_digest, _UID.sub("<UID>", text))


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
        """``text`` with every path under the root made relative (the root itself becomes ``.``), UIDs and dates
        redacted (``redact``)."""
        if not text:
            return text
        if self._pattern:
            text = self._pattern.sub(lambda m: "" if m.group(0).endswith(os.sep) else ".", text)
        return redact(text)

    def relative(self, path: Path | str | None) -> str:
        """One path relative to the cohort, UID- and date-like names redacted; "" for None. A path outside the
        cohort (a reference mask linked from elsewhere) is named by its file name only."""
        if path is None:
            return ""
        text = self.text(str(path)) or "."
        return redact(Path(text).name) if os.path.isabs(text) else text

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
        """Every text value but the keys (the cohort's own IDs, as given)."""
        return {k: self.text(v) if isinstance(v, str) and k not in KEY_COLUMNS else v for k, v in row.items()}


@dataclass(frozen=True)
class Failure:
    """One failures-table row: which scan (and lesion, if only one lesion failed), where, and what to do."""

    key: ScanKey
    stage: Stage
    file: str
    message: str
    lesion_id: int | None = None
    #: Traceback of an unexpected error: for ``--verbose`` and ``--log-file`` only, never in a table.
    traceback: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", Stage(self.stage))
        for name in ("file", "message", "traceback"):
            object.__setattr__(self, name, redact(getattr(self, name)))

    def as_row(self) -> dict[str, Any]:
        return {"patient_id": self.key.patient_id, "session": self.key.session, "tracer": self.key.tracer,
                "lesion_id": self.lesion_id, "stage": self.stage, "file": self.file, "message": self.message}


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
    #: The scan failed before producing any row, and the rows of its last good extraction stay in the tables
    #: (``radiomx.run.last_good``): the commit replaces its failures and state, not its lesion rows.
    kept_rows: bool = False

    @property
    def status(self) -> ScanStatus:
        """ok | partial | failed | negative. "negative": the mask was read and holds no lesion (a segmentation
        that found nothing), which is data (a burden row with count 0), not a failure. Failures of an advisory
        stage (a QC picture that could not be drawn) leave the scan's rows done."""
        if self._only_advisory_failures:
            return ScanStatus.NEGATIVE if self.is_negative else ScanStatus.OK
        return ScanStatus.PARTIAL if self.rows else ScanStatus.FAILED

    @property
    def _only_advisory_failures(self) -> bool:
        return all(f.stage in ADVISORY_STAGES for f in self.failures)

    @property
    def is_negative(self) -> bool:
        return (self._only_advisory_failures and not self.rows and bool(self.state.get("work_key"))
                and not self.state.get("n_lesions"))
