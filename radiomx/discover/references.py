"""Which reference-region files belong to a scan, by name (shared by the default layout and BIDS discovery)."""

from __future__ import annotations

import re
from pathlib import Path

from radiomx.inputs.paths import IMAGE_SUFFIXES
from radiomx.records import region_of

_DESC = re.compile(r"(?:^|_)desc-([A-Za-z0-9]+)(?:_|$)")


def _label(path: Path) -> str:
    """The region label of a file: the BIDS ``desc-`` value (``desc-refliver``) or the file stem (``ref-liver``)."""
    name = path.name
    match = _DESC.search(name)
    if match:
        return match.group(1)
    for suffix in (*IMAGE_SUFFIXES, ".dcm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def find_references(paths: list[Path]) -> tuple[tuple[tuple[str, Path], ...], str]:
    """(region, file) pairs sorted by region (``ref-liver.nii.gz`` / ``..._desc-refliver_mask.nii.gz`` -> liver),
    and a problem text ("" when none) if a region has two files."""
    found: dict[str, list[Path]] = {}
    for path in paths:
        found.setdefault(region_of(_label(path)), []).append(path)
    twice = [f"{region} ({', '.join(p.name for p in files)})" for region, files in sorted(found.items())
             if len(files) > 1]
    problem = f"several files for reference region {'; '.join(twice)}; keep one per region" if twice else ""
    return tuple((region, files[0]) for region, files in sorted(found.items())), problem
