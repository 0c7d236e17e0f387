"""Which organ segmentation belongs to a scan, found by name without reading it (``radiomx scan`` stays light).

Where radiomx looks (docs/organs.md), for a scan folder of the default layout:

* ``radiomx.toml`` ``[organs] path = "..."``: a folder or file relative to each scan folder (``"organs"``,
  ``"../CT/totalseg"``, ``"seg/organs.nii.gz"``); it must stay inside the cohort (outputs name files relative to
  it). A declared path that is missing for one scan is still that scan's source: the worker says it is missing;
* otherwise, beside the image (names in any case): a folder ``organs/`` (one file per class, TotalSegmentator's
  default output), a
  multilabel file ``organs.nii.gz`` (also ``.nii``, ``.nrrd``, ``.mha``; TotalSegmentator ``--ml``), or a DICOM SEG
  ``organs.dcm``. Two of them are ambiguous: a discovery problem naming both.

BIDS derivatives (``radiomx.discover.bids``) and DICOM exports (``radiomx.discover.dicom_export``) find theirs in
their own way and build the same ``OrganSource``. A name taken for organs is never an image, mask or reference.
"""

from __future__ import annotations

import os
from pathlib import Path

from radiomx.errors import ConfigError
from radiomx.inputs.paths import IMAGE_SUFFIXES
from radiomx.records import OrganSource

ORGANS = "organs"
#: What names an organ file or folder beside the image (never an image or mask candidate).
ORGAN_NAMES = (ORGANS, *(ORGANS + suffix for suffix in (*IMAGE_SUFFIXES, ".dcm")))


def is_organ_name(name: str) -> bool:
    return name.lower() in ORGAN_NAMES


def organ_path_setting(config: dict, config_path: Path) -> str | None:
    """``[organs] path`` of a parsed ``radiomx.toml`` (None when absent); a ConfigError says what is wrong."""
    section = config.get("organs")
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"{config_path}: [organs] must be a table, e.g. [organs] path = \"organs\"")
    unknown = set(section) - {"path"}
    if unknown:
        raise ConfigError(f"{config_path}: unknown [organs] key(s): {', '.join(sorted(unknown))} (known: path)")
    path = section.get("path")
    if not isinstance(path, str) or not path.strip() or Path(path).is_absolute():
        raise ConfigError(f"{config_path}: [organs] path must be a path relative to each scan folder, e.g. "
                          "\"organs\" or \"../CT/totalseg\"")
    return path.strip()


def form_of(path: Path) -> str:
    """``folder``, ``seg`` (a ``.dcm`` file) or ``labels`` (an image file), by the path's name and kind."""
    if path.is_dir():
        return "folder"
    if path.name.lower().endswith(".dcm"):
        return "seg"
    if path.name.lower().endswith(IMAGE_SUFFIXES):
        return "labels"
    return "folder"


def _lexically_normal(path: Path) -> Path:
    """``A/FDG/../CT/organs.nii.gz`` as ``A/CT/organs.nii.gz`` (how outputs name it), unless a symbolic link on
    the way makes the two name different files; then the path stays as declared."""
    normal = Path(os.path.normpath(path))
    return normal if normal.resolve() == path.resolve() else path


def find_organs(folder: Path, cohort: Path, declared: str | None) -> tuple[OrganSource | None, str]:
    """(the scan's organ source or None, a problem text or "")."""
    if declared is not None:
        path = _lexically_normal(folder / declared)
        try:
            path.resolve().relative_to(Path(cohort).resolve())
        except ValueError:
            return None, (f"[organs] path {declared!r} leads outside the cohort; keep organ segmentations inside it "
                          "(outputs name every input relative to the cohort)")
        return OrganSource(form_of(path), path, "radiomx.toml [organs]"), ""  # a missing path: the worker says so
    try:
        entries = sorted(e for e in folder.iterdir() if is_organ_name(e.name))
    except OSError:
        return None, ""
    found = [e for e in entries if (e.is_dir() if e.name.lower() == ORGANS else e.is_file())]
    if len(found) > 1:
        return None, f"several organ segmentations ({', '.join(p.name for p in found)}); keep one"
    if not found:
        return None, ""
    return OrganSource(form_of(found[0]), found[0], f"{found[0].name} beside the image"), ""
