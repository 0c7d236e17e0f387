"""How an image stores its axes, and reorienting image and lesions to one orientation before PyRadiomics.

Why: PyRadiomics anchors its ``resampledPixelSpacing`` grid at the lesion's bounding box in *index* space
(``imageoperations.resampleImage``). Two files of the same patient, one stored LPS (DICOM's order) and one RAS (x
and y flipped in storage, with a matching direction matrix, as NIfTI writers often do), are the same image in
patient space and give identical PET indices, yet they are resampled onto grids shifted against each other, and most
features differ by more than 1 %, as they do in stock PyRadiomics. (Without resampling they agree to rounding: the
texture matrices pool directions that a flip maps onto each other.) A multi-centre trial mixes such files, so
radiomx records each image's storage orientation (``image_orientation`` in the lesion rows and the scan state) and a
parameter file may ask (``radiomx: reorient: LPS``) that every image and label map be reoriented to one orientation
before features.

The orientation code names the patient direction each index axis points *to*, in ITK's (and DICOMOrient's)
convention: an identity direction matrix is ``LPS``, NIfTI's usual diag(-1, -1, 1) in ITK is ``RAS``. An oblique
grid gets the code of its nearest axes. Reorienting is ``SimpleITK.DICOMOrient``: a permutation and flips of the
array with origin and direction adjusted, so every voxel keeps its value and its physical position; no resampling.

PET indices (SUVmax/mean/peak, MTV, TLG, centroids) are computed on the image as read, before any reorientation:
they do not depend on storage order (``tests/test_orientation.py`` holds both claims).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import SimpleITK as sitk

from radiomx.features.lesions import Lesion


def orientation_code(image: sitk.Image) -> str:
    """``LPS``, ``RAS``, ``LAS``...: the orientation code of the image's direction matrix (nearest axes)."""
    return sitk.DICOMOrientImageFilter_GetOrientationFromDirectionCosines(image.GetDirection())


def reoriented(image: sitk.Image, code: str | None) -> sitk.Image:
    """The image stored in orientation ``code``; the image itself when ``code`` is None or already its own
    (no copy: most PET/CT grids are stored LPS, and a whole-body reorientation costs ~70 ms)."""
    if code is None or orientation_code(image) == code:
        return image
    return sitk.DICOMOrient(image, code)


def _index_on(source: sitk.Image, target: sitk.Image, index: tuple[int, ...]) -> np.ndarray:
    """The index on ``target`` of the voxel centre at ``index`` on ``source`` (same voxels, reordered axes)."""
    point = source.TransformIndexToPhysicalPoint(tuple(int(i) for i in index))
    return np.rint(target.TransformPhysicalPointToContinuousIndex(point)).astype(int)


def lesion_on(source: sitk.Image, target: sitk.Image, lesion: Lesion) -> Lesion:
    """The same lesion with its bounding box on the reoriented grid ``target`` (two corners mapped through patient
    space: a permutation and flips map a box to a box)."""
    if source is target:
        return lesion
    low = np.array(lesion.bbox_index)
    high = low + np.array(lesion.bbox_size) - 1
    a, b = _index_on(source, target, tuple(low)), _index_on(source, target, tuple(high))
    lower = np.minimum(a, b)
    return replace(lesion, bbox_index=tuple(int(v) for v in lower),  # its layer and ids as they were
                   bbox_size=tuple(int(v) for v in np.abs(a - b) + 1))
