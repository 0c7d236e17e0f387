"""Which image series a DICOM SEG or RTSTRUCT belongs to, from the export's header index.

The rules (DICOM PS3.3 C.8.20 Segmentation, C.8.8.5 Structure Set), in order:

1. the series it names: a SEG's Referenced Series Sequence (0008,1115), an RTSTRUCT's RT Referenced Series Sequence
   (3006,0014) under its Referenced Frame of Reference Sequence;
2. else the series holding the instances it names (a SEG's Referenced Instance Sequence, an RTSTRUCT contour's
   Contour Image Sequence);
3. else, when it names only a Frame of Reference UID (as CT RTSTRUCTs often do), the measurable image series of
   that frame whose grid it fits: every SEG frame on one of the series' slices (same matrix, spacing and
   orientation), every RTSTRUCT contour in the plane of one of its slices and inside its field of view, each
   within ``FIT_TOL`` voxel, the tolerance the mask readers place frames and contours with (``radiomx.inputs.masks``).

A mask that names series or instances none of which is in the export has no image here; one that several series
could own is refused with the candidates by Series Number and Description (``series_choice.describe``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from radiomx.discover.dicom_index import IndexedFile
from radiomx.inputs.series_choice import describe

#: Voxels a SEG frame or a contour plane may sit off a slice, as ``radiomx.inputs.masks.PLANE_TOL`` (a test keeps
#: them equal; the mask module imports SimpleITK and highdicom, which discovery does not).
FIT_TOL = 0.1
#: Direction cosines of a SEG and its image must agree to this (``radiomx.inputs.masks.ORIENTATION_ATOL``).
ORIENTATION_ATOL = 1e-3


@dataclass
class Series:
    """One image series of the export (PET or CT), its files sorted by path."""

    uid: str
    files: list[IndexedFile]
    #: The first file's header values: what ``series_choice`` and ``describe`` read (``.get``).
    header: dict
    #: (file, message) of what makes the series unusable: truncated or unreadable files, ...
    problems: list[tuple[IndexedFile, str]] = field(default_factory=list)
    masks: list[IndexedFile] = field(default_factory=list)

    @property
    def patient(self) -> str:
        return self.files[0].patient

    @property
    def study(self) -> str:
        return self.files[0].study

    @property
    def modality(self) -> str:
        return self.header.get("Modality", "")

    def describe(self) -> str:
        return describe(self.header)


@dataclass(frozen=True)
class Link:
    """Where a mask belongs: ``owner`` (a series), and why it cannot be that series' mask (``problem``; then the
    owner, when known, is the scan the problem is reported with)."""

    owner: Series | None
    problem: str = ""
    #: The series that could all own it (an ambiguous frame-only mask): its problem is theirs to report.
    candidates: tuple[Series, ...] = ()


def link_mask(mask: IndexedFile, series: dict[str, Series], by_sop: dict[str, Series],
              measurable: set[str]) -> Link:
    """The series ``mask`` belongs to (rules in the module docstring); ``measurable``: the uids of series a scan
    may be measured on (attenuation-corrected PET, CT; no MIP, no secondary capture)."""
    header = mask.header
    what = "SEG" if mask.kind == "seg" else "RTSTRUCT"
    named = [series[s] for s in header.get("ref_series", []) if s in series]
    if not named:
        named = _unique(by_sop[s] for s in header.get("ref_sops", []) if s in by_sop)
    if not named and (header.get("ref_series") or header.get("ref_sops")):
        return Link(None, f"{what} references an image series that is not in the export; add the series it was drawn "
                          "on")
    if not named:
        frames = set(header.get("frames_of_reference", [])) - {""}
        if not frames:
            return Link(None, f"{what} references no image series and no Frame of Reference; re-export it from the "
                              "tool that drew it")
        of_frame = [s for s in series.values() if s.header.get("frame") in frames and s.uid in measurable]
        if not of_frame:
            return Link(None, f"{what} references only a Frame of Reference, and no PET or CT series of that frame is "
                              "in the export; add the series it was drawn on")
        named = [s for s in of_frame if _fits(mask, s)]
        if not named:
            listed = ", ".join(sorted(s.describe() for s in of_frame))
            return Link(None, f"{what} references only a Frame of Reference, and its grid fits none of that frame's "
                              f"series ({listed}); re-export it with its referenced series")
    if len(named) > 1:
        listed = ", ".join(sorted(s.describe() for s in named))
        return Link(None, f"{what} could belong to {len(named)} series ({listed}); keep one of them in the export, "
                          "or re-export the mask with a Referenced Series Sequence", tuple(named))
    owner = named[0]
    if mask.patient != owner.patient:
        return Link(owner, f"{what} belongs to another patient than its referenced series {owner.describe()} (their "
                          "PatientIDs differ); re-export the mask with its own images")
    return Link(owner)


def _unique(items: Iterable[Series]) -> list[Series]:
    found: dict[str, Series] = {}
    for s in items:
        found.setdefault(s.uid, s)
    return list(found.values())


def slice_positions(series: Series) -> tuple[np.ndarray, np.ndarray] | None:
    """The series' slice normal and its sorted slice positions (mm), or None when a file lacks its geometry."""
    orientation = series.header.get("orientation")
    points = [f.header.get("position") for f in series.files]
    if orientation is None or any(p is None for p in points):
        return None
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    normal = np.cross(row, col)
    return normal, np.sort(np.array([float(np.dot(normal, p)) for p in points]))


def _spacing(positions: np.ndarray) -> float:
    gaps = np.diff(positions)
    return float(np.median(gaps)) if len(gaps) and np.median(gaps) > 0 else 1.0


def _on_slices(values: np.ndarray, positions: np.ndarray, spacing: float) -> bool:
    nearest = np.min(np.abs(values[:, None] - positions[None, :]), axis=1)
    return bool(np.all(nearest <= FIT_TOL * spacing))


def _fits(mask: IndexedFile, owner: Series) -> bool:
    """Does the frame-only mask lie on ``owner``'s grid (module docstring, rule 3)?"""
    layout = slice_positions(owner)
    header, grid = mask.header, owner.header
    if layout is None or grid.get("spacing") is None or grid.get("rows") is None:
        return False
    normal, positions = layout
    spacing = _spacing(positions)
    row, col = np.asarray(grid["orientation"][:3], float), np.asarray(grid["orientation"][3:], float)
    origin = np.asarray(owner.files[0].header["position"], float)
    pixel = np.asarray(grid["spacing"], float)  # (row spacing: between rows, i.e. along col; column spacing)
    if mask.kind == "seg":
        points = np.asarray(header.get("frame_positions") or [], float).reshape(-1, 3)
        same_grid = (header.get("rows"), header.get("columns")) == (grid.get("rows"), grid.get("columns"))
        same_pixels = header.get("spacing") is not None and np.allclose(header["spacing"], pixel, rtol=1e-3)
        same_axes = header.get("orientation") is not None and np.allclose(header["orientation"], grid["orientation"],
                                                                           atol=ORIENTATION_ATOL)
        if not (len(points) and same_grid and same_pixels and same_axes):
            return False
        in_plane = np.stack([(points - origin) @ row / pixel[1], (points - origin) @ col / pixel[0]], axis=1)
        return _on_slices(points @ normal, positions, spacing) and bool(
            np.all(np.abs(in_plane - np.round(in_plane)) <= FIT_TOL))
    points = np.asarray(header.get("contour_points") or [], float).reshape(-1, 3)
    if not len(points):
        return False
    columns, rows = (points - origin) @ row / pixel[1], (points - origin) @ col / pixel[0]
    inside = (columns >= -1) & (columns <= grid["columns"]) & (rows >= -1) & (rows <= grid["rows"])
    return _on_slices(points @ normal, positions, spacing) and bool(np.all(inside))
