"""Read images and masks, and check that a mask lies on its image's grid.

Why here and not in PyRadiomics: PyRadiomics reports a geometry mismatch as a long ValueError deep in
``loadImage``; we want one line naming both files and the differing property, before any feature code runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radiomx.errors import ScanError, one_line
from radiomx.inputs import nifti
from radiomx.vocabulary import Stage

#: Geometry tolerance between an image and its mask. Sizes must match exactly. Spacing may differ by a relative
#: 1e-4, origin by 1e-3 of the smallest voxel edge, direction cosines by 1e-4: enough to absorb the float32
#: rounding of NIfTI qform/sform headers, far below anything that moves a voxel. Within tolerance the mask gets
#: the image's exact geometry (PyRadiomics' own default tolerance is 1e-16).
SPACING_RTOL = 1e-4
ORIGIN_VOXEL_FRACTION = 1e-3
DIRECTION_ATOL = 1e-4


def _read_checked(path: Path, what: str, digests: dict[Path, str] | None) -> sitk.Image | None:
    """Inflate and check a NIfTI (or any ``.gz``) file; for a plain 3D NIfTI-1 also build the image from those bytes
    (``radiomx.inputs.nifti``), so the file is read and inflated once. None means: read it with ITK.

    With ``digests``, the sha256 of the bytes read is recorded under ``path``: the work key and provenance columns
    then name exactly the bytes the voxels came from (a file replaced mid-run cannot pair one version's hash with
    another's features), and the file is not read a second time just to hash it (~7 ms per whole-body PET)."""
    name = path.name.lower()
    if not name.endswith((".nii", ".nii.gz", ".gz")):
        return None
    data = path.read_bytes()
    if digests is not None:
        digests[path] = hashlib.sha256(data).hexdigest()
    raw = nifti.inflate(path, data, what)
    del data  # the compressed copy (~40 MB for a whole-body PET) is not needed past this point
    if not name.endswith((".nii", ".nii.gz")):
        return None
    header = nifti.parse_header(path, raw, what)
    if header is not None:
        nifti.check_data(path, raw, header, what)
    return nifti.image_from_raw(path, raw, header)


def _read_with_itk(path: Path, what: str) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        reason = one_line(str(exc).split("Description:")[-1])  # ITK's own words, after its source location
        raise ScanError(Stage.LOAD, str(path),
                        f"cannot read {what} ({reason}); check the file is a complete NIfTI/NRRD/MHA") from exc


def read_volume(path: Path, what: str, digests: dict[Path, str] | None = None, components: bool = False
                ) -> sitk.Image:
    """Read one 3D volume; any failure becomes a one-line ScanError naming the file. ``digests``: see
    ``_read_checked`` (files read by ITK itself get no entry). ``components``: accept several values per voxel (the
    layers of a 3D Slicer ``.seg.nrrd``)."""
    if not path.exists():
        raise ScanError(Stage.LOAD, str(path), f"{what} file is missing")
    if path.is_file() and path.stat().st_size == 0:
        raise ScanError(Stage.LOAD, str(path), f"{what} file is empty (0 bytes); re-export it")
    image = _read_checked(path, what, digests) if path.is_file() else None
    if image is None:
        image = _read_with_itk(path, what)
    if image.GetDimension() != 3:
        raise ScanError(Stage.LOAD, str(path), f"{what} has {image.GetDimension()} dimensions; a 3D volume is required")
    if image.GetNumberOfComponentsPerPixel() != 1 and not components:
        raise ScanError(Stage.LOAD, str(path), f"{what} has vector pixels; a scalar volume is required")
    return image


def check_finite(image: sitk.Image, path: Path) -> None:
    """NaN/Inf voxels make PyRadiomics' binning undefined; refuse them by name (whatever reader built the image)."""
    values = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(values.dtype, np.floating):
        nifti.refuse_non_finite(values, path)


#: Label map pixel types used as read: PyRadiomics compares labels by value, so an 8-bit mask needs no 32-bit copy
#: (a whole-body UInt8 mask stays 12 MB instead of becoming 48 MB in every worker).
UNSIGNED_LABEL_TYPES = (sitk.sitkUInt8, sitk.sitkUInt16, sitk.sitkUInt32)


def as_label_map(mask: sitk.Image, path: Path) -> sitk.Image:
    """Masks must hold non-negative integer labels: unsigned masks are used as read, others are checked and cast
    to UInt32."""
    if mask.GetPixelID() in UNSIGNED_LABEL_TYPES:
        return mask
    values = sitk.GetArrayViewFromImage(mask)
    if np.issubdtype(values.dtype, np.floating):
        if not np.isfinite(values).all() or not np.array_equal(values, np.round(values)):
            raise ScanError(Stage.LOAD, str(path), "mask holds non-integer values; save it as an integer label map")
    if values.size and values.min() < 0:
        raise ScanError(Stage.LOAD, str(path), f"mask holds negative label {values.min()}; labels must be >= 0")
    return sitk.Cast(mask, sitk.sitkUInt32)


#: After placement, a mask drawn on its own (cropped) grid must be exactly on the image grid (float round-off only).
GRID_TOL = 1e-3


def check_on_grid(moving: sitk.Image, image: sitk.Image, path: Path, what: str) -> None:
    """Every voxel centre of ``moving`` must be a voxel centre of ``image`` (no interpolation of labels): a mask on
    a sub-block of the image's lattice (a DICOM SEG's frames, a cropped 3D Slicer segmentation) is pasted exactly by
    nearest-neighbour resampling."""
    origin = np.array(image.TransformPhysicalPointToContinuousIndex(moving.GetOrigin()))
    steps = []
    for axis in range(3):
        index = [0, 0, 0]
        index[axis] = 1
        point = moving.TransformIndexToPhysicalPoint(index)
        steps.append(np.array(image.TransformPhysicalPointToContinuousIndex(point)) - origin)
    integral = np.abs(origin - np.round(origin)).max() <= GRID_TOL and all(
        np.abs(s - np.round(s)).max() <= GRID_TOL and np.abs(np.round(s)).sum() == 1 for s in steps)
    if not integral:
        raise ScanError(Stage.GEOMETRY, str(path),
                        f"{what} is not on the image grid (different spacing, orientation or "
                        "offset); it was drawn on another series")


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


def align_mask(image: sitk.Image, mask: sitk.Image, image_path: Path, mask_path: Path) -> sitk.Image:
    """Check the mask is on the image grid (within the documented tolerance) and give it (in place) the exact
    image geometry."""
    where = f"{mask_path} vs {image_path.name}"
    if image.GetSize() != mask.GetSize():
        raise ScanError(Stage.GEOMETRY, str(mask_path),
                        f"mask size {mask.GetSize()} differs from image size {image.GetSize()} ({where}); "
                        "the mask was probably drawn on another scan or grid")
    img_sp, msk_sp = np.array(image.GetSpacing()), np.array(mask.GetSpacing())
    if not np.allclose(msk_sp, img_sp, rtol=SPACING_RTOL, atol=0):
        raise ScanError(Stage.GEOMETRY, str(mask_path),
                        f"mask spacing {_fmt(msk_sp)} differs from image spacing "
                        f"{_fmt(img_sp)} ({where}); resample the mask onto the image")
    tol = ORIGIN_VOXEL_FRACTION * float(img_sp.min())
    if np.abs(np.array(mask.GetOrigin()) - np.array(image.GetOrigin())).max() > tol:
        raise ScanError(Stage.GEOMETRY, str(mask_path),
                        f"mask origin {_fmt(mask.GetOrigin())} differs from image origin "
                        f"{_fmt(image.GetOrigin())} ({where}); the mask belongs to another grid")
    if np.abs(np.array(mask.GetDirection()) - np.array(image.GetDirection())).max() > DIRECTION_ATOL:
        raise ScanError(Stage.GEOMETRY, str(mask_path),
                        f"mask direction differs from image direction ({where}); reorient the mask onto the image")
    mask.CopyInformation(image)  # in place: the mask was just read for this scan; no copy of the volume
    return mask
