"""From a loaded scan (SimpleITK image in its unit + lesion label map) to its QC picture: the one entry point used
by the extraction worker (image already in memory) and by ``radiomx qc`` (image read again from the cohort).

Reference regions are the ``ref-<region>.nii.gz`` files of the scan folder (the convention of issue 14): drawn when
present, dashed grey. One that cannot be read or is not on the image grid is left out of the picture, and said so
as a ``qc`` warning; the picture is still drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radiomx import __version__
from radiomx.errors import ScanError
from radiomx.features.indices import lesion_values
from radiomx.features.lesions import layers_of
from radiomx.inputs.imaging import align_mask, as_label_map, read_volume
from radiomx.params.paramset import ParamSet
from radiomx.qc.files import reference_files, region_name, render_key
from radiomx.qc.picture import Scene, render
from radiomx.qc.windows import display_window
from radiomx.records import QcPicture, ScanKey


@dataclass
class Drawn:
    picture: QcPicture
    #: One-line problems that did not stop the picture (a reference region left out), for ``qc`` failures rows.
    warnings: list[tuple[str, str]] = field(default_factory=list)


def suv_source(unit: str, unit_inputs: dict) -> str:
    """Where the SUV scale came from, in a reader's words (the ``suv_*`` columns of radiomx.inputs.suv)."""
    if unit != "SUVbw":
        return f"{unit} as stored"
    source = unit_inputs.get("suv_source", "")
    if source == "dicom":
        return f"DICOM {unit_inputs.get('suv_units', '')}".strip()
    if source == "bids-sidecar":
        return "BIDS sidecar"
    if source == "declared":
        reason = unit_inputs.get("suv_weight_source", "")
        return f"declared ({reason})" if reason else "declared"
    return source or "unknown"


IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def _lps(image: sitk.Image) -> sitk.Image:
    """The image with its axes along L, P, S (a permutation/flip only; an oblique grid goes to the nearest axes).
    Most PET/CT grids already are: then no copy (a whole-body reorientation costs ~70 ms)."""
    if np.allclose(image.GetDirection(), IDENTITY):
        return image
    return sitk.DICOMOrient(image, "LPS")


def _oriented(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(_lps(image))


def _references(image: sitk.Image, image_path: Path, folder: Path, cohort: Path
                ) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, str]]]:
    regions, warnings = [], []
    for path in reference_files(folder):
        try:
            mask = align_mask(image, as_label_map(read_volume(path, "reference region"), path), image_path, path)
        except ScanError as exc:
            detail = exc.detail.replace(f"{cohort}/", "")
            warnings.append((_relative(path, cohort), f"reference region not drawn: {detail}"))
            continue
        regions.append((region_name(path), _oriented(mask) > 0))
    return regions, warnings


def _relative(path: Path, cohort: Path) -> str:
    try:
        return str(path.relative_to(cohort))
    except ValueError:
        return path.name


def caption(key: ScanKey, params: ParamSet, unit: str, unit_inputs: dict, lesions: int,
            window: tuple[float, float]) -> str:
    """Keys, tracer, parameter version, unit and SUV source, lesion count: never a name, date or UID."""
    return (f"patient {key.patient_id} | session {key.session or '(none)'} | tracer {key.tracer} | "
            f"params {params.version} | unit {unit}, source {suv_source(unit, unit_inputs)} | "
            f"{lesions} lesion{'s' if lesions != 1 else ''} | window [{window[0]:g}, {window[1]:g}] {unit} "
            f"| radiomx {__version__}")


def draw_scan(key: ScanKey, image: sitk.Image, labels: sitk.Image | Sequence[sitk.Image], unit: str,
              unit_inputs: dict, params: ParamSet, image_path: Path, folder: Path, cohort: Path, work_key: str,
              names: dict[int, str] | None = None) -> Drawn:
    """The scan's picture; ``labels`` holds lesion_id per voxel: one label map, or the layers of lesions that may
    overlap (``radiomx.features.lesions.LesionMap.layers``), each lesion outlined on its own. ``names``: lesion_id ->
    lesion_name, shown in the legend."""
    window = display_window(params)
    key_now = render_key(work_key, params, folder)
    regions, warnings = _references(image, image_path, folder, cohort)
    oriented = _lps(image)
    values = sitk.GetArrayFromImage(oriented)
    label_values = tuple(_oriented(layer) for layer in layers_of(labels))
    spacing = tuple(float(s) for s in oriented.GetSpacing())
    lesions = tuple(sorted((v for layer in label_values for v in lesion_values(values, layer, spacing)),  # type: ignore
                           key=lambda v: v.lesion_id))
    session = f" / {key.session}" if key.session else ""
    scene = Scene(
        title=f"{key.patient_id}{session} / {key.tracer}" + ("   NEGATIVE" if not lesions else ""),
        caption=caption(key, params, unit, unit_inputs, len(lesions), window),
        image=values, spacing_xyz=spacing, labels=label_values, lesions=lesions, unit=unit, window=window,
        references=tuple(regions), cmap="gray" if unit == "HU" else "gray_r", names=dict(names or {}))
    rendered = render(scene, key_now)
    return Drawn(QcPicture(key_now, rendered.png, rendered.thumbnail), warnings)
