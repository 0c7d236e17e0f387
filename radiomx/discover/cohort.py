"""Discover scans in a cohort folder: ``COHORT/<patient>/[<session>/]<tracer>/`` -> ``Scan`` records.

A folder is a *scan folder* when it directly holds a candidate image or mask (by the name patterns below).
Under a patient folder, a scan folder is a tracer folder (no session); any other folder is a session whose
sub-folders are tracer folders (also when one of them is named like a DICOM image folder: ``baseline/CT/``).
Discovery never raises for a bad scan: the problem (unknown tracer, no mask, two candidate images) travels with
the Scan and becomes a failures-table row. Walking is bounded to that fixed depth, so symlink loops cannot trap it.

Reference regions: files named ``ref-<region>.<image suffix>`` (or ``.dcm``) in a scan folder, e.g.
``ref-liver.nii.gz``, ``ref-bloodpool.nii.gz``, ``ref-adrenal-contralateral.nii.gz``, ``ref-marrow.nii.gz``; they
are never image or mask candidates, whatever the patterns. Two files for one region are a discovery problem.

Patterns can be overridden per cohort in ``COHORT/radiomx.toml``::

    [layout]
    image = ["pet.*", "image.*"]
    mask = ["mask.*", "lesions.*"]

and which named masks are lesions (``--roi``/``--exclude-roi``; docs/lesions.md)::

    [lesions]
    roi = ["GTV*", "node_*"]
    exclude_roi = ["*edema*"]

Organ segmentations (``radiomx.discover.organs``): ``organs/``, ``organs.nii.gz`` or ``organs.dcm`` beside the
image, or ``[organs] path = "../CT/totalseg"`` (relative to each scan folder).
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from pathlib import Path

from radiomx.discover import bids
from radiomx.discover.organs import find_organs, is_organ_name, organ_path_setting
from radiomx.discover.references import find_references
from radiomx.errors import ConfigError, ScanError
from radiomx.inputs.paths import has_image_suffix
from radiomx.options import ExtractOptions, LesionOptions, RoiSelection
from radiomx.records import DEFAULT_IMAGE_PATTERNS, DEFAULT_MASK_PATTERNS, Layout, Scan, ScanKey
from radiomx.records import REFERENCE_PREFIX as PREFIX
from radiomx.tracers import find_tracer, resolve_tracer
from radiomx.vocabulary import Stage

CONFIG_NAME = "radiomx.toml"


def read_cohort_config(cohort: Path) -> dict:
    path = cohort / CONFIG_NAME
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc


def layout_for(cohort: Path, image_patterns: tuple[str, ...] = (), mask_patterns: tuple[str, ...] = (),
               pet_units: str | None = None) -> Layout:
    """Defaults, overridden by ``radiomx.toml``, overridden by explicit options."""
    config = read_cohort_config(cohort)
    section = config.get("layout", {})
    unknown = set(section) - {"image", "mask", "pet_units"}
    if unknown:
        raise ConfigError(f"{cohort / CONFIG_NAME}: unknown [layout] key(s): {', '.join(sorted(unknown))}")
    units = pet_units or section.get("pet_units")
    if units not in (None, "SUVbw"):
        raise ConfigError(f"{cohort / CONFIG_NAME}: pet_units must be \"SUVbw\" (got {units!r})")
    return Layout(
        image_patterns=tuple(image_patterns) or tuple(section.get("image", DEFAULT_IMAGE_PATTERNS)),
        mask_patterns=tuple(mask_patterns) or tuple(section.get("mask", DEFAULT_MASK_PATTERNS)),
        pet_units=units,
    )


def selection_for(cohort: Path, roi: tuple[str, ...] = (), exclude_roi: tuple[str, ...] = ()) -> RoiSelection:
    """The lesion selection by name: ``--roi``/``--exclude-roi`` where given, else ``[lesions] roi``/``exclude_roi``
    of ``radiomx.toml`` (each key on its own: ``--exclude-roi`` keeps the file's ``roi``)."""
    path = cohort / CONFIG_NAME
    section = read_cohort_config(cohort).get("lesions", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [lesions] must be a table")
    unknown = set(section) - {"roi", "exclude_roi"}
    if unknown:
        raise ConfigError(f"{path}: unknown [lesions] key(s): {', '.join(sorted(unknown))} (known: roi, exclude_roi)")

    def globs(key: str) -> tuple[str, ...]:
        value = section.get(key, [])
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(f"{path}: [lesions] {key} must be a list of name patterns, e.g. [\"GTV*\"]")
        return tuple(value)

    return RoiSelection(tuple(roi) or globs("roi"), tuple(exclude_roi) or globs("exclude_roi"))


def lesion_options_for(cohort: Path, options: ExtractOptions) -> LesionOptions:
    """How a run with ``options`` makes lesions of ``cohort``'s masks: mode, labels, and the selection by name with
    the cohort's ``[lesions]`` filling what the options do not give (part of every work key)."""
    return LesionOptions(options.lesions, options.labels, selection_for(cohort, options.roi, options.exclude_roi))


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns)


def _candidates(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    return [e for e in entries if _matches(e.name, patterns) and not e.name.lower().startswith(PREFIX)
            and not is_organ_name(e.name) and (has_image_suffix(e) or e.is_dir() or e.name.lower().endswith(".dcm"))]


def _reference_files(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    return [e for e in entries if e.is_file() and e.name.lower().startswith(PREFIX)
            and (has_image_suffix(e) or e.name.lower().endswith(".dcm"))]


def _is_scan_folder(folder: Path, layout: Layout) -> bool:
    return bool(_candidates(folder, layout.image_patterns) or _candidates(folder, layout.mask_patterns))


def _is_session_folder(folder: Path, layout: Layout) -> bool:
    """A folder that is no tracer but holds a tracer folder with its own image or mask is a session, even when
    that sub-folder's name is also an image pattern: ``baseline/CT/`` is session ``baseline`` with tracer CT, not a
    scan folder ``baseline`` whose DICOM image folder is ``CT`` (``ct`` and ``pet`` are DICOM folder patterns)."""
    return find_tracer(folder.name) is None and any(
        find_tracer(sub.name) is not None and _is_scan_folder(sub, layout) for sub in _visible_dirs(folder))


def _visible_dirs(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    return [e for e in entries if not e.name.startswith((".", "_")) and e.is_dir()]


def _is_loop(entry: Path) -> bool:
    """A folder symlink pointing at its own folder or an ancestor would make the cohort infinitely deep."""
    if not entry.is_symlink():
        return False
    target = entry.resolve()
    here = entry.parent.resolve()
    return target == here or target in here.parents


def _loop_scan(entry: Path, patient: str, session: str) -> Scan:
    return Scan(ScanKey(_clean_id(patient)[0], _clean_id(session)[0], _clean_id(entry.name)[0]), entry, problem=(
        Stage.DISCOVER, str(entry), f"symlink loop: points to its own ancestor {entry.resolve()}; remove the link"))


def _clean_id(name: str) -> tuple[str, bool]:
    """Folder names become IDs; a non-UTF-8 name is shown with replacement characters and flagged."""
    try:
        name.encode("utf-8")
        return name, True
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "replace"), False


def _scan_from_folder(folder: Path, patient: str, session: str, layout: Layout, cohort: Path,
                      organs_path: str | None) -> Scan:
    tracer_name, tracer_ok = _clean_id(folder.name)
    patient_id, patient_ok = _clean_id(patient)
    session_id, session_ok = _clean_id(session)
    try:
        tracer = resolve_tracer(tracer_name, str(folder))
        key = ScanKey(patient_id, session_id, tracer.name)
    except ScanError as exc:
        return Scan(ScanKey(patient_id, session_id, tracer_name), folder, problem=(exc.stage, exc.path, exc.detail))
    if not (tracer_ok and patient_ok and session_ok):
        return Scan(key, folder, problem=(Stage.DISCOVER, _clean_id(str(folder))[0],
                                          "folder name is not valid UTF-8; rename it (IDs must be text)"))
    images = _candidates(folder, layout.image_patterns)
    masks = [m for m in _candidates(folder, layout.mask_patterns) if m not in images]
    image = images[0] if len(images) == 1 else None
    mask = masks[0] if len(masks) == 1 else None
    problem = None
    if not images:
        problem = (Stage.DISCOVER, str(folder), f"no image found (looked for {', '.join(layout.image_patterns)})")
    elif len(images) > 1:
        problem = (Stage.DISCOVER, str(folder), "several candidate images (" + ", ".join(p.name for p in images)
                   + "); keep one or set [layout] image patterns in radiomx.toml")
    elif not masks:
        problem = (Stage.DISCOVER, str(folder), f"no mask found (looked for {', '.join(layout.mask_patterns)})")
    elif len(masks) > 1:
        problem = (Stage.DISCOVER, str(folder), "several candidate masks (" + ", ".join(p.name for p in masks)
                   + "); keep one or set [layout] mask patterns in radiomx.toml")
    references, twice = find_references(_reference_files(folder))
    if twice and problem is None:
        problem = (Stage.DISCOVER, str(folder), twice)
    organs, ambiguous = find_organs(folder, cohort, organs_path)
    if ambiguous and problem is None:
        problem = (Stage.DISCOVER, str(folder), ambiguous)
    return Scan(key, folder, image, mask, problem, references=references, organs=organs)


def discover(cohort: Path, layout: Layout | None = None) -> list[Scan]:
    """All scans under ``cohort`` in key order. Raises ConfigError only if the cohort itself is unusable."""
    cohort = Path(cohort)
    if not cohort.is_dir():
        raise ConfigError(f"{cohort}: cohort folder does not exist or is not a folder")
    layout = layout or layout_for(cohort)
    organs_path = organ_path_setting(read_cohort_config(cohort), cohort / CONFIG_NAME)
    if bids.looks_like_bids(cohort):
        return _flag_duplicates(sorted(bids.discover_bids(cohort, layout), key=lambda s: s.key))
    scans: list[Scan] = []
    for patient_dir in _visible_dirs(cohort):
        if _is_loop(patient_dir):
            scans.append(_loop_scan(patient_dir, patient_dir.name, ""))
            continue
        for child in _visible_dirs(patient_dir):
            if _is_loop(child):
                scans.append(_loop_scan(child, patient_dir.name, child.name))
                continue
            if _is_scan_folder(child, layout) and not _is_session_folder(child, layout):
                scans.append(_scan_from_folder(child, patient_dir.name, "", layout, cohort, organs_path))
                continue
            for tracer_dir in _visible_dirs(child):
                if _is_loop(tracer_dir):
                    scans.append(_loop_scan(tracer_dir, patient_dir.name, child.name))
                elif _is_scan_folder(tracer_dir, layout):
                    scans.append(_scan_from_folder(tracer_dir, patient_dir.name, child.name, layout, cohort,
                                                   organs_path))
    return _flag_duplicates(sorted(bids.attach_body_weights(cohort, scans), key=lambda s: s.key))


def _flag_duplicates(scans: list[Scan]) -> list[Scan]:
    """Two folders resolving to one key (``FDG/`` and ``18F-FDG/``) would collide in the table: the later one fails,
    keyed by its raw folder name so that its failure row never shares a key with the scan that is extracted."""
    seen: dict[ScanKey, Path] = {}
    out = []
    for scan in scans:
        if scan.key in seen:
            key = ScanKey(scan.key.patient_id, scan.key.session, _clean_id(scan.folder.name)[0])
            scan = Scan(key, scan.folder, problem=(
                Stage.DISCOVER, str(scan.folder),
                f"resolves to the same scan as {seen[scan.key]}; keep one folder per tracer and session"))
        seen.setdefault(scan.key, scan.folder)
        out.append(scan)
    return sorted(out, key=lambda s: s.key)
