"""From a loaded scan (SimpleITK image in its unit + lesion label map) to its QC picture: ``draw_loaded`` is the one
entry point used by the extraction worker (image already in memory) and by ``radiomx qc`` (image read again from the
cohort); ``draw_scan`` draws given arrays.

Reference regions are the ones the extraction measures: the scan's reference files as discovery found them
(``ref-liver.nii.gz``, ``.nrrd``, a SEG/RTSTRUCT ``.dcm``, BIDS ``desc-ref<region>``) and the ``ref-*`` segments or
ROIs inside a DICOM SEG/RTSTRUCT mask, then the regions derived from organ segmentations (``liver (organ)``:
``OrganOverlay``, the VOIs the extraction measured). Each is drawn dashed and listed with its SUVmean; each lesion's
site follows its row in the legend (``@liver``). One that cannot be read or
is not on the image grid is left out of the picture, and said so as a ``qc`` warning; the picture is still drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radiomx import __version__
from radiomx.errors import ScanError
from radiomx.features.indices import lesion_values
from radiomx.features.lesion_sites import SITE_CLASSES, lesion_masks, lesion_sites
from radiomx.features.lesions import LesionMap, layers_of
from radiomx.features.organ_references import DERIVED_REGIONS, scan_regions
from radiomx.features.orientation import reoriented
from radiomx.features.references import RegionStats
from radiomx.features.voi import scan_lesions
from radiomx.inputs.loader import LoadedScan, load_reference
from radiomx.inputs.organs import BoxMask
from radiomx.options import LesionOptions
from radiomx.params.paramset import ParamSet, VoiSetting
from radiomx.qc.files import render_key
from radiomx.qc.picture import Scene, render
from radiomx.qc.windows import display_window
from radiomx.records import CohortPaths, QcPicture, Scan, ScanKey, region_of

#: Regions whose name is too long for the picture's labels.
ORGAN_LABELS = {"adrenal_contralateral": "adrenal_contra"}


@dataclass
class OrganOverlay:
    """What the organ segmentations add to a picture: the derived reference VOIs (region -> mask on the image grid)
    and each lesion's site (lesion_id -> ``lesion_site``)."""

    regions: dict[str, BoxMask] = field(default_factory=dict)
    sites: dict[int, str] = field(default_factory=dict)


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


def _lps(image: sitk.Image) -> sitk.Image:
    """The image with its axes along L, P, S (``features.orientation``: a permutation/flip only; an oblique grid goes
    to the nearest axes). Most PET/CT grids already are: then no copy."""
    return reoriented(image, "LPS")


def _oriented(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(_lps(image))


def _on_grid(mask: np.ndarray, image: sitk.Image) -> sitk.Image:
    """A (z, y, x) array on ``image``'s grid as an image with its geometry (to reorient it like the image)."""
    out = sitk.GetImageFromArray(np.asarray(mask, dtype=np.uint8))
    out.CopyInformation(image)
    return out


def reference_regions(scan: Scan, loaded: LoadedScan, cohort: Path
                      ) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, str]]]:
    """(region, boolean (z, y, x) array on the image grid) for every reference region of the scan, files first,
    then those embedded in a DICOM mask; and (file, message) for each one left out."""
    regions, warnings = [], []
    paths = CohortPaths(cohort)
    for region, path in scan.references:
        try:
            mask = load_reference(path, loaded.image, scan.image, loaded.positions)
        except ScanError as exc:
            warnings.append((paths.relative(path), f"reference region not drawn: {paths.text(exc.detail)}"))
            continue
        except OSError as exc:
            warnings.append((paths.relative(path), f"reference region not drawn: cannot read ({exc.strerror})"))
            continue
        regions.append((region, np.asarray(mask)))
    regions += [(region_of(label), mask) for label, mask in loaded.embedded_references.items()]
    return regions, warnings


def caption(key: ScanKey, params: ParamSet, unit: str, unit_inputs: dict, lesions: int,
            window: tuple[float, float]) -> str:
    """Keys, tracer, parameter version, unit and SUV source, lesion count: never a name, date or UID."""
    return (f"patient {key.patient_id} | session {key.session or '(none)'} | tracer {key.tracer} | "
            f"params {params.version} | unit {unit}, source {suv_source(unit, unit_inputs)} | "
            f"{lesions} lesion{'s' if lesions != 1 else ''} | window [{window[0]:g}, {window[1]:g}] {unit} "
            f"| radiomx {__version__}")


def draw_scan(key: ScanKey, image: sitk.Image, labels: sitk.Image | Sequence[sitk.Image], unit: str,
              unit_inputs: dict, params: ParamSet, references: Sequence[tuple[str, np.ndarray]], picture_key: str,
              names: dict[int, str] | None = None, sites: dict[int, str] | None = None) -> QcPicture:
    """The scan's picture; ``labels`` holds lesion_id per voxel: one label map, or the layers of lesions that may
    overlap (``radiomx.features.lesions.LesionMap.layers``), each lesion outlined on its own; ``references`` the
    reference regions as boolean (z, y, x) arrays on the image grid as stored; ``names``: lesion_id -> lesion_name,
    shown in the legend."""
    window = display_window(params)
    oriented = _lps(image)
    values = sitk.GetArrayFromImage(oriented)
    label_values = tuple(_oriented(layer) for layer in layers_of(labels))
    regions = tuple((name, _oriented(_on_grid(mask, image)) > 0) for name, mask in references)
    spacing = tuple(float(s) for s in oriented.GetSpacing())
    lesions = tuple(sorted((v for layer in label_values for v in lesion_values(values, layer, spacing)),  # type: ignore
                           key=lambda v: v.lesion_id))
    session = f" / {key.session}" if key.session else ""
    scene = Scene(
        title=f"{key.patient_id}{session} / {key.tracer}" + ("   NEGATIVE" if not lesions else ""),
        caption=caption(key, params, unit, unit_inputs, len(lesions), window),
        image=values, spacing_xyz=spacing, labels=label_values, lesions=lesions, unit=unit, window=window,
        references=regions, cmap="gray" if unit == "HU" else "gray_r", names=dict(names or {}),
        sites=dict(sites or {}))
    rendered = render(scene, picture_key)
    return QcPicture(picture_key, rendered.png, rendered.thumbnail)


def draw_loaded(scan: Scan, loaded: LoadedScan, labels: sitk.Image | Sequence[sitk.Image], params: ParamSet,
                cohort: Path, work_key: str, names: dict[int, str] | None = None,
                organs: OrganOverlay | None = None) -> Drawn:
    """The picture of a loaded scan with its reference regions (the drawn ones, then those derived from organs,
    labelled ``liver (organ)``), each lesion's site, and the warnings about regions left out."""
    regions, warnings = reference_regions(scan, loaded, cohort)
    shape = loaded.image.GetSize()[::-1]
    derived = [(f"{ORGAN_LABELS.get(region, region)} (organ)", mask.full(shape))
               for region, mask in (organs.regions if organs else {}).items()]
    picture = draw_scan(scan.key, loaded.image, labels, loaded.unit, loaded.unit_inputs, params, regions + derived,
                        render_key(work_key, params, scan), names, organs.sites if organs else None)
    return Drawn(picture, warnings)


def organ_overlay(scan: Scan, loaded: LoadedScan, references: Mapping[str, RegionStats], lesion_options: LesionOptions,
                  lesion_map: LesionMap) -> OrganOverlay | None:
    """The organ overlay of a scan drawn again (``radiomx qc``): the regions the extraction derived (those whose
    stored source is not ``drawn: ...``; PET only) placed again by the same code on the same inputs
    (``features.organ_references.scan_regions``: deterministic), and the sites of ``lesion_map``'s lesions. None
    without organs; empty when they cannot be read (as the extraction drew it: its failures row says why)."""
    if scan.organs is None:
        return None
    pet = loaded.unit == "SUVbw"
    missing = tuple(r for r in DERIVED_REGIONS if pet and not (r in references and
                                                               references[r].source.startswith("drawn: ")))
    as_drawn = scan_lesions(loaded.image, loaded.mask, VoiSetting(), lesion_options.mode, lesion_options.labels,
                            loaded.unit, {}).lesion_map
    try:
        organs, regions = scan_regions(scan.organs, loaded.image, missing, as_drawn, SITE_CLASSES)
    except (ScanError, OSError):
        return OrganOverlay()
    sites = lesion_sites(organs, lesion_masks(lesion_map.layers, lesion_map.lesions))
    return OrganOverlay({r: d.mask for r, d in regions.items() if d.mask is not None},
                        {i: s.site for i, s in sites.items() if s.site})
