"""BIDS-PET cohorts: discovery, and body weights from ``participants.tsv`` / ``sessions.tsv``.

Why a separate discovery: a BIDS dataset encodes patient, session and tracer in file names, not in the folder
tree radiomx's default layout uses. What is accepted:

* images: ``sub-<p>/[ses-<s>/]pet/sub-<p>_[ses-<s>_]trc-<tracer>[_<key>-<value>...]_pet.nii[.gz]``, with the
  BIDS-PET sidecar beside it (same name, ``.json``);
* masks: ``derivatives/<pipeline>/sub-<p>/[ses-<s>/]pet/<entities>_mask.nii[.gz]`` or ``..._dseg.nii[.gz]``, where
  the mask's entities, minus the derivative-only ones (``desc``, ``label``, ``space``, ``res``, ``den``, ``seg``,
  ``atlas``), equal the image's entities exactly (``sub``, ``ses``, ``trc``, ``rec``, ``run``, ...);
* reference regions: derivative masks with ``desc-ref<region>`` (``..._desc-refliver_mask.nii.gz``,
  ``desc-refbloodpool``, ``desc-refadrenalcontralateral``, ``desc-refmarrow``; BIDS labels are alphanumeric) are
  the scan's reference regions, never its lesion mask;
* organ segmentations: a derivative ``..._desc-organs_dseg.nii[.gz]`` with its ``_dseg.tsv`` (BIDS "Common
  image-derived labels"), in a ``pet``, ``anat`` or ``ct`` folder of the subject (and session), is the scan's organ
  source (``radiomx.discover.organs``), never its lesion mask. Its entities, minus the derivative-only ones, must
  be the image's or a part of them: a file without ``trc-`` (drawn on the session's CT) serves every PET of that
  subject and session; the file matching more of the image's entities wins, and two equal candidates are a
  problem;
* keys: patient_id = ``<p>`` (without ``sub-``), session = ``<s>`` (without ``ses-``), tracer = ``trc-`` label
  resolved through ``radiomx.tracers``.

Body weight (kg) comes from the ``body_weight`` column of ``sub-<p>/sub-<p>_sessions.tsv`` (row ``ses-<s>``),
else of ``participants.tsv`` (row ``sub-<p>``); height (m) likewise from their ``height`` column (unit from the
TSV's JSON sidecar, else metres or centimetres by magnitude: ``height_m``) and sex from their ``sex`` column
(``body_sex``); a patient's ``acq_time`` per session is read only to order sessions (``session_acq_times``).
The default layout uses the same files with its own folder names (``participants.tsv`` row ``<p>`` or
``sub-<p>``; ``<p>/sessions.tsv`` row ``<s>`` or ``ses-<s>``).
Problems never raise here: they travel with the Scan and become failures-table rows.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import replace
from pathlib import Path

from radiomx.discover.references import find_references
from radiomx.errors import ScanError
from radiomx.records import Layout, OrganSource, Scan, ScanKey, sex_code
from radiomx.tracers import resolve_tracer
from radiomx.vocabulary import Stage

PET_SUFFIXES = (".nii.gz", ".nii")
MASK_SUFFIXES = ("mask", "dseg")
DERIVATIVE_ENTITIES = frozenset({"desc", "label", "space", "res", "den", "seg", "atlas"})
_ENTITY = re.compile(r"^([a-zA-Z0-9]+)-([a-zA-Z0-9]+)$")


def looks_like_bids(cohort: Path) -> bool:
    """A ``dataset_description.json`` or any ``sub-*`` folder at the top."""
    return (cohort / "dataset_description.json").is_file() or any(
        p.is_dir() for p in cohort.glob("sub-*"))


def parse_name(name: str) -> tuple[dict[str, str], str] | None:
    """``sub-01_trc-FDG_pet.nii.gz`` -> ({"sub": "01", "trc": "FDG"}, "pet"); None if not a BIDS NIfTI name."""
    lowered = name.lower()
    ext = next((s for s in PET_SUFFIXES if lowered.endswith(s)), None)
    if ext is None:
        return None
    *parts, suffix = name[: -len(ext)].split("_")
    entities = {}
    for part in parts:
        match = _ENTITY.match(part)
        if match is None:
            return None
        entities[match.group(1)] = match.group(2)
    return entities, suffix


def _is_reference(path: Path) -> bool:
    parsed = parse_name(path.name)
    return parsed is not None and parsed[0].get("desc", "").lower().startswith("ref")


def _is_organs(path: Path) -> bool:
    parsed = parse_name(path.name)
    return parsed is not None and parsed[1] == "dseg" and parsed[0].get("desc", "").lower() == "organs"


#: Subject folders where an organ segmentation may be (it is usually drawn on the CT).
ORGAN_FOLDERS = ("pet", "anat", "ct")


def _organs_for(cohort: Path, entities: dict[str, str]) -> tuple[OrganSource | None, str]:
    """The ``desc-organs`` dseg of a PET image (module docstring) and a problem text ("" when none)."""
    base = Path(f"sub-{entities['sub']}") / (f"ses-{entities['ses']}" if "ses" in entities else "")
    derivatives = cohort / "derivatives"
    ranked: list[tuple[int, Path]] = []
    for pipeline in sorted(p for p in derivatives.glob("*") if p.is_dir()) if derivatives.is_dir() else []:
        for kind in ORGAN_FOLDERS:
            for candidate in sorted((pipeline / base / kind).glob("*_dseg.nii*")):
                parsed = parse_name(candidate.name)
                if parsed is None or not _is_organs(candidate):
                    continue
                core = {k: v for k, v in parsed[0].items() if k not in DERIVATIVE_ENTITIES}
                if core.get("sub") == entities["sub"] and core.get("ses") == entities.get("ses") and all(
                        entities.get(k) == v for k, v in core.items()):
                    ranked.append((len(core), candidate))
    if not ranked:
        return None, ""
    best = max(n for n, _ in ranked)
    top = [path for n, path in ranked if n == best]
    if len(top) > 1:
        return None, f"several organ segmentations match ({', '.join(p.name for p in top)}); keep one"
    return OrganSource("labels", top[0], "BIDS desc-organs dseg"), ""


def _masks_for(cohort: Path, entities: dict[str, str]) -> list[Path]:
    relative = Path(f"sub-{entities['sub']}") / (f"ses-{entities['ses']}" if "ses" in entities else "") / "pet"
    found = []
    derivatives = cohort / "derivatives"
    for pipeline in sorted(p for p in derivatives.glob("*") if p.is_dir()) if derivatives.is_dir() else []:
        for candidate in sorted((pipeline / relative).glob("*")):
            parsed = parse_name(candidate.name)
            if parsed is None or parsed[1] not in MASK_SUFFIXES:
                continue
            core = {k: v for k, v in parsed[0].items() if k not in DERIVATIVE_ENTITIES}
            if core == entities and not _is_organs(candidate):
                found.append(candidate)
    return found


def _scan(cohort: Path, image: Path, entities: dict[str, str], folder_sub: str, folder_ses: str) -> Scan:
    patient, session = folder_sub.removeprefix("sub-"), folder_ses.removeprefix("ses-")
    folder = image.parent
    if entities.get("sub") != patient or entities.get("ses", "") != session:
        return Scan(ScanKey(patient, session, entities.get("trc", "?")), folder, problem=(
            Stage.DISCOVER, str(image), "sub-/ses- in the file name differ from its folders; rename the file"))
    if "trc" not in entities:
        return Scan(ScanKey(patient, session, "?"), folder, problem=(
            Stage.DISCOVER, str(image), "no trc-<tracer> entity in the file name; add it (e.g. trc-FDG)"))
    try:
        tracer = resolve_tracer(entities["trc"], str(image))
    except ScanError as exc:
        return Scan(ScanKey(patient, session, entities["trc"]), folder,
                            problem=(exc.stage, exc.path, exc.detail))
    key = ScanKey(patient, session, tracer.name)
    organs, ambiguous = _organs_for(cohort, entities)
    if ambiguous:
        return Scan(key, folder, image, problem=("discover", str(image), ambiguous))
    found = _masks_for(cohort, entities)
    masks = [m for m in found if not _is_reference(m)]
    references, twice = find_references([m for m in found if _is_reference(m)])
    if twice:
        return Scan(key, folder, image, masks[0] if masks else None, problem=(Stage.DISCOVER, str(image), twice),
                    references=references, organs=organs)
    if len(masks) != 1:
        stem = "_".join(f"{k}-{v}" for k, v in entities.items())
        what = "no mask" if not masks else "several masks (" + ", ".join(m.name for m in masks) + ")"
        where = f"derivatives/<pipeline>/{image.parent.relative_to(cohort)}/{stem}"
        return Scan(key, folder, image, masks[0] if masks else None, problem=(
            Stage.DISCOVER, str(image),
            f"{what} found; expected one {where}[_desc-<label>]_mask.nii.gz (or _dseg.nii.gz)"),
            references=references, organs=organs)
    return Scan(key, folder, image, masks[0], references=references, organs=organs)


def discover_bids(cohort: Path, layout: Layout) -> list[Scan]:
    """Every ``*_pet.nii[.gz]`` of the dataset as a Scan (``layout`` patterns do not apply to BIDS names)."""
    scans = []
    for sub in sorted(p for p in cohort.glob("sub-*") if p.is_dir()):
        sessions = sorted(p for p in sub.glob("ses-*") if p.is_dir()) or [sub]
        for ses_dir in sessions:
            session = ses_dir.name if ses_dir is not sub else ""
            for image in sorted((ses_dir / "pet").glob("*")):
                parsed = parse_name(image.name)
                if parsed is not None and parsed[1] == "pet":
                    scans.append(_scan(cohort, image, parsed[0], sub.name, session))
    return attach_body_weights(cohort, scans)


# --- body weight ------------------------------------------------------------------------------------------------------

def _read_tsv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _weight_in(rows: list[dict[str, str]], id_column: str, ids: tuple[str, ...]) -> float | None:
    """The row's body_weight as float; None when the row, the column or the value ("n/a") is missing."""
    for row in rows:
        if row.get(id_column, "").strip() in ids:
            try:
                value = float(row.get("body_weight", "").strip())
            except ValueError:
                return None
            return value if math.isfinite(value) else None
    return None


def _sessions_files(cohort: Path, patient: str) -> list[Path]:
    return [cohort / f"sub-{patient}" / f"sub-{patient}_sessions.tsv", cohort / patient / "sessions.tsv",
            cohort / patient / f"{patient}_sessions.tsv"]


def body_weight(cohort: Path, patient: str, session: str, participants: list[dict[str, str]]) -> tuple[
        float | None, str]:
    """(kg, the file it came from) for one scan; (None, file that should hold it) when absent."""
    if session:
        for path in _sessions_files(cohort, patient):
            if path.is_file():
                weight = _weight_in(_read_tsv(path), "session_id", (f"ses-{session}", session))
                if weight is not None:
                    return weight, str(path)
    weight = _weight_in(participants, "participant_id", (f"sub-{patient}", patient))
    return weight, str(cohort / "participants.tsv")


#: Plausible body height in m; a ``height`` value in this range is metres, one in 100x this range centimetres.
HEIGHT_RANGE_M = (0.3, 2.6)


def _height_unit(tsv: Path) -> str:
    """``Units`` of the ``height`` column from the TSV's JSON sidecar (``participants.json``), lower case, or ""."""
    try:
        meta = json.loads(tsv.with_suffix(".json").read_text(encoding="utf-8"))
        return str(meta.get("height", {}).get("Units", "")).strip().lower()
    except (OSError, ValueError, AttributeError):
        return ""


def height_m(value: str, unit: str) -> float | None:
    """A ``height`` cell in metres. BIDS fixes no unit: the TSV's JSON sidecar may say ``"Units": "cm"`` or
    ``"m"``; without it the value decides (0.3-2.6 is metres, 30-260 centimetres: no human height is both).
    Anything else, "n/a" or out of range is None (height only feeds BSA, and a guess would be silent)."""
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    scale = {"m": 1.0, "cm": 0.01, "mm": 0.001}.get(unit)
    if scale is None:
        scale = 1.0 if HEIGHT_RANGE_M[0] <= number <= HEIGHT_RANGE_M[1] else 0.01
    metres = number * scale
    return metres if HEIGHT_RANGE_M[0] <= metres <= HEIGHT_RANGE_M[1] else None


def _height_in(path: Path, id_column: str, ids: tuple[str, ...]) -> float | None:
    for row in _read_tsv(path):
        if row.get(id_column, "").strip() in ids:
            return height_m(row.get("height", ""), _height_unit(path))
    return None


def body_height(cohort: Path, patient: str, session: str) -> float | None:
    """Height (m) of one scan's patient: ``height`` of sessions.tsv (row of the session), else participants.tsv."""
    if session:
        for path in _sessions_files(cohort, patient):
            if path.is_file():
                found = _height_in(path, "session_id", (f"ses-{session}", session))
                if found is not None:
                    return found
    return _height_in(cohort / "participants.tsv", "participant_id", (f"sub-{patient}", patient))


def _sex_in(rows: list[dict[str, str]], id_column: str, ids: tuple[str, ...]) -> str:
    for row in rows:
        if row.get(id_column, "").strip() in ids:
            return sex_code(row.get("sex"))
    return ""


def body_sex(cohort: Path, patient: str, session: str, participants: list[dict[str, str]]) -> str:
    """Sex (M, F, O; "" unknown) of one scan's patient: ``sex`` of sessions.tsv (row of the session), else of
    participants.tsv (BIDS: ``male``/``female``/``other`` or M/F/O, ``radiomx.records.sex_code``). It feeds lean
    body mass only (SUL, ``radiomx.inputs.lbm``); unknown stays unknown."""
    if session:
        for path in _sessions_files(cohort, patient):
            if path.is_file():
                found = _sex_in(_read_tsv(path), "session_id", (f"ses-{session}", session))
                if found:
                    return found
    return _sex_in(participants, "participant_id", (f"sub-{patient}", patient))


def session_acq_times(cohort: Path, patient: str) -> dict[str, str]:
    """``acq_time`` of each of a patient's sessions, as written in its sessions.tsv (``ses-`` removed from the
    key; empty and ``n/a`` cells left out). Read only to ORDER sessions for the response table
    (``radiomx.derive.sessions``): the value is a date and is never written anywhere."""
    for path in _sessions_files(cohort, patient):
        if path.is_file():
            rows = _read_tsv(path)
            return {row.get("session_id", "").strip().removeprefix("ses-"): row.get("acq_time", "").strip()
                    for row in rows if row.get("acq_time", "").strip() not in ("", "n/a")
                    and row.get("session_id", "").strip()}
    return {}


def attach_body_weights(cohort: Path, scans: list[Scan]) -> list[Scan]:
    """Each scan with ``body_weight_kg`` / ``body_weight_source``, ``height_m`` and ``sex`` filled from the cohort's
    TSV files."""
    participants = _read_tsv(cohort / "participants.tsv")
    out = []
    for scan in scans:
        patient, session = scan.key.patient_id, scan.key.session
        weight, source = body_weight(cohort, patient, session, participants)
        out.append(replace(scan, body_weight_kg=weight, body_weight_source=source,
                           height_m=body_height(cohort, patient, session),
                           sex=body_sex(cohort, patient, session, participants)))
    return out
