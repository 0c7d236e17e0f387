"""A PACS or CD export as a cohort: files read by content (any name, any depth, no suffix), linked into scans.

Steps (docs/layouts.md, "DICOM export", says the same for users):

1. index: every file's header summary, re-read only when new or changed (``dicom_index``); non-DICOM files are
   skipped and counted; a file exported twice (one SOP Instance UID) is read once;
2. series: image files grouped patient -> study -> series; per study and tracer, the series a scan is measured
   on are chosen as in a scan folder (``radiomx.inputs.series_choice``, strictly: a non-attenuation-corrected
   PET, a MIP, a projection or a secondary capture is never the image);
3. masks: each SEG/RTSTRUCT joins the series it references (``dicom_links``); a SEG whose segments all name
   organ classes (TotalSegmentator's or MOOSE's output, ``dicom_headers``) is no lesion mask but the organ
   segmentation of every scan whose series shares the frame of reference (PET/CT: one frame) of the series it
   references, usually the CT;
4. keys: ``patient_id`` = the DICOM PatientID, or its row in ``--patient-ids``; ``tracer`` = the
   Radiopharmaceutical Information Sequence through the tracer registry (``--default-tracer`` for series that name
   none), CT for CT; ``session`` = the study's place in time among the patient's studies with a series of that
   tracer: the ``[sessions] order`` names of radiomx.toml, else ``ses-1``, ``ses-2``, ... The date orders; it is
   never written;
5. a measurable PET series no mask references yet is *waiting* (listed, not failed: masks often arrive after the
   images); everything that cannot become a scan is a problem naming its file, relative to the export.

PatientID and study dates are read from one file per study on each run and stay in memory (the index keeps no
identifier in clear, ``dicom_headers``).
"""

from __future__ import annotations

import csv
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.pixels import get_decoder
from pydicom.uid import UID

from radiomx.discover.dicom_headers import IMAGE, RTSTRUCT, SEG, UNREADABLE, Digest
from radiomx.discover.dicom_index import HeaderIndex, IndexedFile, IndexSummary
from radiomx.discover.dicom_links import Series, link_mask
from radiomx.errors import ConfigError
from radiomx.inputs.series_choice import is_non_attenuation_corrected, is_projection, measurable
from radiomx.quiet import pydicom_quiet
from radiomx.records import OrganSource, Scan, ScanKey, redact
from radiomx.tracers import TRACERS, tracer_of_radiopharmaceutical
from radiomx.vocabulary import Stage

#: The tracer label of a PET series that names no tracer radiomx knows, and of a mask without an image.
UNKNOWN = "unknown"
#: Date and time attributes that order a patient's studies, first found wins (read, never written).
WHEN = (("StudyDate", "StudyTime"), ("SeriesDate", "SeriesTime"), ("AcquisitionDate", "AcquisitionTime"),
        ("ContentDate", "ContentTime"))
#: The key of the files that belong to no scan: unreadable, or a mask whose header lost its study.
UNREADABLE_KEY = ScanKey("", "", "unreadable")
#: Problems listed in full in one scan's message; more are counted.
MAX_LISTED = 3


@dataclass(frozen=True)
class ExportSettings:
    """How an export's keys are made: ``patient_ids`` (DICOM PatientID -> patient_id), ``default_tracer`` (canonical
    name, for PET series naming no radiopharmaceutical), ``session_names`` (``[sessions] order``)."""

    patient_ids: dict[str, str] | None = None
    patient_ids_file: str = ""
    default_tracer: str | None = None
    session_names: tuple[str, ...] = ()


@dataclass
class ExportDiscovery:
    scans: list[Scan] = field(default_factory=list)
    #: Measurable PET series that no mask references yet (keys as they will be): not failures.
    waiting: list[Scan] = field(default_factory=list)
    index: IndexSummary = field(default_factory=IndexSummary)
    #: What was seen but is no scan: CT series without a mask, PET series of tracers radiomx does not know, ...
    notes: Counter = field(default_factory=Counter)
    #: The index, when it was built in memory (``dicom_index.save_index`` keeps it once OUT exists).
    index_image: bytes = b""

    def line(self) -> str:
        extra = [f"{n} {what}" for what, n in sorted(self.notes.items()) if n]
        return "; ".join([self.index.line(), f"{len(self.scans)} scans, {len(self.waiting)} PET series waiting for "
                          "a mask", *extra])


def read_patient_ids(path: Path) -> dict[str, str]:
    """``--patient-ids FILE.csv``: a header row with ``PatientID`` and ``patient_id``, then one row per patient."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
            header = set(rows[0]) if rows else set()
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: --patient-ids cannot be read ({exc})") from exc
    if not {"PatientID", "patient_id"} <= header:
        raise ConfigError(f"{path}: --patient-ids needs a header row with the columns PatientID and patient_id")
    mapping: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        source, target = (row.get("PatientID") or "").strip(), (row.get("patient_id") or "").strip()
        if not source or not target:
            raise ConfigError(f"{path}: line {number}: PatientID and patient_id must both be given")
        if mapping.get(source, target) != target:
            raise ConfigError(f"{path}: line {number}: a PatientID is mapped twice, to {mapping[source]!r} and "
                              f"{target!r}; keep one row")
        mapping[source] = target
    return mapping


def discover_export(root: Path, settings: ExportSettings, index_folder: Path | None = None,
                    exclude: Path | None = None) -> ExportDiscovery:
    """The scans of the export at ``root``; the header index lives in ``index_folder`` (None: in memory)."""
    with HeaderIndex(index_folder) as index:
        files, summary = index.refresh(root, exclude)
        image = index.image() if index_folder is None else b""
        digest = index.digest
    found = _Linker(root, settings, summary, digest).link(files)
    found.index_image = image
    return found


class _Linker:
    """One linking of the indexed files (module docstring, steps 2-5): series, studies, masks, keys, then one Scan
    per key (problems of a key are merged into one line naming the first file)."""

    def __init__(self, root: Path, settings: ExportSettings, summary: IndexSummary, digest: Digest) -> None:
        self.root, self.settings, self.digest = root, settings, digest
        self.found = ExportDiscovery(index=summary)
        #: key -> [(file, message)] problems, and key -> scan for the scans that may be extracted.
        self.problems: dict[ScanKey, list[tuple[IndexedFile, str]]] = defaultdict(list)
        self.ready: dict[ScanKey, Scan] = {}
        #: (study, frame of reference digest) -> the organ SEGs of that frame.
        self.organs: dict[tuple[str, str], list[IndexedFile]] = defaultdict(list)

    def link(self, files: list[IndexedFile]) -> ExportDiscovery:
        files = sorted(files, key=lambda f: f.relative)
        series, by_sop, loose = self._series(files)
        studies = self._studies(series, [f for f in files if f.kind in (SEG, RTSTRUCT)])
        groups = self._groups(series)
        usable = {s.uid for members in groups.values() for s in members[1]}
        sessions = self._sessions(groups, studies)
        for mask in (f for f in files if f.kind in (SEG, RTSTRUCT)):
            found = link_mask(mask, series, by_sop, usable)
            if mask.kind == SEG and mask.header.get("organ_seg"):
                self._organ_seg(mask, found.owner if not found.problem else None)
                continue
            if found.owner is not None and found.owner.uid in usable and not found.problem:
                found.owner.masks.append(mask)
                continue
            # A mask that lost its study (a garbled header) belongs to no patient: listed with the unreadable files.
            key = ScanKey(studies[mask.study].patient_id, "", UNKNOWN) if mask.study else UNREADABLE_KEY
            # On a MIP or a NAC PET, or fitting several series of one scan: refused with that scan, which then fails
            # naming the mask (rather than waiting for a mask "no mask references").
            owners = {(s.study, self._label(s)) for s in ((found.owner,) if found.owner else found.candidates)}
            if len(owners) == 1:
                ((study, label),) = owners
                key = ScanKey(studies[study].patient_id, sessions.get((study, label), ("", ""))[0], label)
            why = mask.problem or found.problem or _unusable(found.owner)  # type: ignore[arg-type]
            self.problems[key].append((mask, why))
        for (study, label), (_all, members) in sorted(groups.items()):
            if not members:
                self.found.notes["series never measured (only MIP, projection or non-corrected PET in a study)"] += 1
                continue
            self._scan(studies[study], label, members, sessions[(study, label)])
        for file, message in loose:
            self.problems[UNREADABLE_KEY].append((file, message))
        self.found.scans = sorted(self._scans(), key=lambda s: s.key)
        failed = {s.key for s in self.found.scans}
        self.found.waiting = sorted((w for w in self.found.waiting if w.key not in failed), key=lambda s: s.key)
        return self.found

    # --- series ------------------------------------------------------------------------------------------------

    def _series(self, files: list[IndexedFile]):
        """Image series by Series Instance UID (one file per SOP Instance), and unreadable files no series claims."""
        series: dict[str, Series] = {}
        by_sop: dict[str, Series] = {}
        lost: list[IndexedFile] = []  # image files without a Series Instance UID
        for file in (f for f in files if f.kind == IMAGE):
            sop, uid = file.sop, file.series
            if sop and sop in by_sop:
                self.found.notes["files holding an instance already read (exported twice)"] += 1
                continue
            if not uid:
                lost.append(file)
                continue
            if uid not in series:
                series[uid] = Series(uid, [], file.header)
            found = series[uid]
            found.files.append(file)
            if sop:
                by_sop[sop] = found
        for s in series.values():
            s.problems += [(f, f.problem) for f in s.files if f.problem]
            owners = Counter((f.patient, f.study) for f in s.files)
            if len(owners) > 1:  # name a file of the fewest: the damaged one, not the series' first
                odd = owners.most_common()[-1][0]
                s.problems.append((next(f for f in s.files if (f.patient, f.study) == odd),
                                   "this file names another patient or study (PatientID (0010,0020), Study Instance "
                                   "UID (0020,000D)) than the rest of its series; re-export the series"))
        loose = []
        by_folder: dict[str, list[Series]] = defaultdict(list)
        for s in series.values():
            for folder in {os.path.dirname(f.relative) for f in s.files}:
                by_folder[folder].append(s)
        damaged = [(f, f"{f.problem} (an unreadable DICOM file beside this series' slices)", f.problem)
                   for f in files if f.kind == UNREADABLE]
        damaged += [(f, "Series Instance UID (0020,000E) is missing: a damaged slice beside this series' slices; "
                        "re-export the series", "Series Instance UID (0020,000E) is missing; re-export the series")
                    for f in lost]
        for file, beside, alone in damaged:
            # A damaged file belongs to the series it still names, else it could be a slice of any series beside it:
            # each of them is refused naming it, since a lost slice leaves a gap that would name another file, and a
            # lost first or last slice none at all (the folder reader refuses the same way).
            own = series.get(file.series)
            neighbours = [own] if own is not None else by_folder.get(os.path.dirname(file.relative), [])
            for s in neighbours:
                s.problems.append((file, beside))
            if not neighbours:
                loose.append((file, alone))
        return series, by_sop, loose

    def _studies(self, series: dict[str, Series], masks: list[IndexedFile]) -> dict[str, _Study]:
        studies: dict[str, _Study] = {}
        for s in series.values():
            studies.setdefault(s.study, _Study(s.study, s.files[0])).series.append(s)
        for mask in masks:
            studies.setdefault(mask.study, _Study(mask.study, mask))
        for study in studies.values():
            study.read(self.settings, self.digest)
        return studies

    def _groups(self, series: dict[str, Series]):
        """(study, tracer label) -> (all image series of that tracer, the measurable ones)."""
        groups: dict[tuple[str, str], tuple[list[Series], list[Series]]] = {}
        for s in series.values():
            label = self._label(s)
            groups.setdefault((s.study, label), ([], []))[0].append(s)
        for (_study, label), (members, usable) in groups.items():
            modality = "CT" if label == "CT" else "PT"
            chosen = measurable({s.uid: s.header for s in members}, modality, strict_attenuation=True)
            usable.extend(s for s in members if s.uid in chosen)
        return groups

    def _label(self, s: Series) -> str:
        """CT, a canonical PET tracer, the radiopharmaceutical as written (unknown to radiomx), or ``unknown``."""
        if s.modality == "CT":
            return "CT"
        for file in s.files:
            codes = [tuple(c) for c in file.header.get("rp_codes", [])]
            text = file.header.get("rp_text", "")
            if codes or text:
                tracer = tracer_of_radiopharmaceutical(codes, text)  # type: ignore[arg-type]
                if tracer is not None:
                    return tracer.name
                written = " ".join((text or (codes[0][2] if codes else "")).split())[:40]
                return redact(written) or UNKNOWN
        return self.settings.default_tracer or UNKNOWN

    def _organ_seg(self, mask: IndexedFile, owner: Series | None) -> None:
        frame = owner.header.get("frame", "") if owner is not None else ""
        if owner is None or not frame:
            self.found.notes["organ SEGs whose image series (or its frame of reference) is not in the export"] += 1
            return
        self.organs[(owner.study, frame)].append(mask)

    def _organ_source(self, owner: Series, problems: list[tuple[IndexedFile, str]]) -> OrganSource | None:
        """The organ SEG of ``owner``'s frame of reference; several are a problem of the scan."""
        found = self.organs.get((owner.study, owner.header.get("frame", "")), []) if owner.header.get("frame") else []
        if len(found) > 1:
            listed = ", ".join(_relative(m) for m in found[:MAX_LISTED])
            problems.append((found[0], f"{len(found)} organ SEGs share the frame of reference of {owner.describe()} "
                                       f"({listed}); keep one"))
        return OrganSource("seg", found[0].path, "DICOM SEG of the same frame of reference") if found else None

    # --- keys ---------------------------------------------------------------------------------------------------

    def _sessions(self, groups, studies: dict[str, _Study]) -> dict[tuple[str, str], tuple[str, str]]:
        """(study, label) -> (session name, problem): the study's place in time among the patient's studies with a
        measurable series of that tracer label."""
        per_patient: dict[tuple[str, str], list[_Study]] = defaultdict(list)
        for (study, label), (_all, usable) in groups.items():
            if usable:
                per_patient[(studies[study].patient_id, label)].append(studies[study])
        names = self.settings.session_names
        out: dict[tuple[str, str], tuple[str, str]] = {}
        for (_patient, label), members in per_patient.items():
            undated = [s for s in members if s.when is None]
            ordered = sorted(members, key=lambda s: (s.when or ("", ""), s.uid))
            for k, study in enumerate(ordered):
                problem = ""
                if len(members) > 1 and undated:
                    problem = (f"this patient has {len(members)} {label} studies and {len(undated)} of them carry no "
                               "Study Date (0008,0020), so their order in time is unknown; export them with dates")
                elif k > 0 and study.when == ordered[k - 1].when:
                    problem = (f"two {label} studies of this patient have the same date and time; their order is "
                               "unknown")
                elif names and k >= len(names):
                    problem = (f"this patient has {len(members)} {label} studies but [sessions] order in radiomx.toml "
                               f"names {len(names)}; add a name")
                name = names[k] if k < len(names) else f"ses-{k + 1}"
                out[(study.uid, label)] = (name, problem)
        return out

    # --- scans --------------------------------------------------------------------------------------------------

    def _scan(self, study: _Study, label: str, members: list[Series], session: tuple[str, str]) -> None:
        key = ScanKey(study.patient_id, session[0], label)
        masked = [s for s in members if s.masks]
        pet = label != "CT"
        if not masked:
            if pet and label in _PET_TRACERS:
                self.found.waiting.append(_as_scan(key, members[0], None, None))
            elif pet:
                self.found.notes[f"PET series of a tracer radiomx does not know ({label}), no mask"] += 1
            else:
                self.found.notes["CT series without a mask (not scans)"] += 1
            return
        problems = self.problems[key]
        if len(masked) > 1:
            listed = ", ".join(sorted(s.describe() for s in masked))
            problems.append((masked[0].masks[0], f"masks reference {len(masked)} {label} series of one study "
                                                 f"({listed}); keep the masks of one series"))
        owner = masked[0]
        if len(owner.masks) > 1:
            listed = ", ".join(_relative(m) for m in owner.masks[:MAX_LISTED])
            problems.append((owner.masks[0], f"{len(owner.masks)} masks reference {owner.describe()} ({listed}); keep "
                                              "one"))
        problems += owner.problems + [(m, m.problem) for m in owner.masks if m.problem]
        if study.problem:
            problems.append((study.file, study.problem))
        if session[1]:
            problems.append((owner.files[0], session[1]))
        if pet and label not in _PET_TRACERS:
            what = "names no radiopharmaceutical" if label == UNKNOWN else f"names radiopharmaceutical {label!r}"
            problems.append((owner.files[0], f"PET series {owner.describe()} {what}, not a tracer radiomx knows; use "
                                             "--default-tracer for series that name none, or add the tracer"))
        syntax = _undecodable(owner)
        if syntax:
            problems.append((owner.files[0], syntax))
        self.ready[key] = _as_scan(key, owner, owner.masks[0], None, self._organ_source(owner, problems))

    def _scans(self) -> list[Scan]:
        scans = []
        for key in set(self.ready) | {k for k, v in self.problems.items() if v}:
            problems = self.problems.get(key, [])
            scan = self.ready.get(key)
            if not problems:
                scans.append(scan)  # type: ignore[arg-type]
                continue
            file, message = problems[0]
            if len(problems) > 1:
                more = "; ".join(f"{_relative(f)}: {m}" for f, m in problems[1:MAX_LISTED])
                hidden = len(problems) - MAX_LISTED
                message += f"; also {more}" + (f" (and {hidden} more)" if hidden > 0 else "")
            is_mask = file.kind in (SEG, RTSTRUCT)
            base = scan or Scan(key, file.path.parent, image=None if is_mask else file.path,
                                mask=file.path if is_mask else None)
            scans.append(Scan(key, base.folder, base.image, base.mask, (Stage.DISCOVER, str(file.path), message),
                              image_files=base.image_files))
        return scans


_PET_TRACERS = {t.name for t in TRACERS if t.modality == "PET"}


class _Study:
    """One study: its PatientID (mapped) and when it was, read from one of its files (kept in memory only)."""

    def __init__(self, uid: str, file: IndexedFile) -> None:
        self.uid, self.file = uid, file
        self.series: list[Series] = []
        self.patient_id, self.problem = "", ""
        self.when: tuple[str, str] | None = None

    def read(self, settings: ExportSettings, digest: Digest) -> None:
        try:
            with pydicom_quiet():
                ds = pydicom.dcmread(self.file.path, stop_before_pixels=True,
                                     specific_tags=["PatientID", *(k for pair in WHEN for k in pair)])
        except Exception:  # noqa: BLE001 - the index read it a moment ago; a file replaced meanwhile
            ds = pydicom.Dataset()
        raw = str(ds.get("PatientID", "") or "").strip()
        for date, time in WHEN:
            if str(ds.get(date, "") or "").strip():
                self.when = (str(ds.get(date)).strip(), str(ds.get(time, "") or "").strip())
                break
        if not raw:
            self.patient_id = f"unnamed-{self.uid[:8]}"
            self.problem = "PatientID (0010,0020) is empty; radiomx keys scans by it (re-export with PatientIDs)"
        elif settings.patient_ids is not None and raw not in settings.patient_ids:
            self.patient_id = f"unmapped-{digest(raw)[:8]}"
            self.problem = (f"this study's PatientID is not in --patient-ids {settings.patient_ids_file} (shown as "
                            f"{self.patient_id}); add a row for it")
        else:
            self.patient_id = settings.patient_ids[raw] if settings.patient_ids is not None else raw


def _relative(file: IndexedFile) -> str:
    return redact(file.relative)


def _unusable(owner: Series) -> str:
    why = ("a MIP or projection" if is_projection(owner.header) else
           "a PET without attenuation correction" if is_non_attenuation_corrected(owner.header) else
           "not the series radiomx measures in its study")
    return (f"references {owner.describe()}, {why}; draw the mask on the attenuation-corrected PET (or the CT) "
            "of that study")


def _undecodable(owner: Series) -> str:
    """A message when pydicom cannot decode the series' pixel data (its transfer syntax), else ""."""
    for syntax in sorted({f.syntax for f in owner.files} - {""}):
        try:
            available = syntax != "private" and get_decoder(UID(syntax)).is_available
        except (NotImplementedError, ValueError):
            available = False
        if not available:
            name = UID(syntax).name if syntax != "private" else "a private transfer syntax"
            return (f"pixel data is encoded as {name}, which the installed pydicom cannot decode; export uncompressed "
                    "(or install the pydicom plugin for it)")
    return ""


def _as_scan(key: ScanKey, series: Series, mask: IndexedFile | None, problem,
             organs: OrganSource | None = None) -> Scan:
    paths = tuple(f.path for f in series.files)
    return Scan(key, paths[0].parent, image=paths[0], mask=mask.path if mask else None, problem=problem,
                image_files=paths, organs=organs)
