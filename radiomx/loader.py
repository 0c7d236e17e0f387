"""Load one scan for extraction: image in the unit its parameter file expects, mask on the image grid.

Why one function: every entry point (local pool, Dask worker, tests) must get the same voxels, and a PET image
must never reach PyRadiomics in Bq/mL when its bin width is in SUV.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import SimpleITK as sitk

from .cohort import Layout, Scan
from .errors import ScanError
from .imaging import align_mask, as_label_map, check_finite, read_volume
from .tracers import get_tracer


@dataclass
class LoadedScan:
    image: sitk.Image
    mask: sitk.Image
    unit: str
    #: Every input of the unit conversion (SUV: weight, dose, times, half-life, ...), recorded with each row.
    unit_inputs: dict = field(default_factory=dict)


def load_image_in_unit(scan: Scan, layout: Layout) -> tuple[sitk.Image, str, dict]:
    """The scan's image in SUVbw (PET) or HU (CT), or a ScanError saying which input is missing."""
    tracer = get_tracer(scan.key.tracer)
    assert scan.image is not None
    image = read_volume(scan.image, "image")
    if tracer.modality != "PET":
        return image, "HU", {}
    if layout.pet_units == "SUVbw":
        return image, "SUVbw", {"suv_source": "declared SUVbw (pet_units)"}
    raise ScanError(
        "suv", str(scan.image),
        "PET image has no SUV metadata; add a BIDS sidecar (.json) or declare already-SUV images with "
        "pet_units = \"SUVbw\" under [layout] in radiomx.toml (or --pet-units SUVbw)")


def load_scan(scan: Scan, layout: Layout) -> LoadedScan:
    image, unit, inputs = load_image_in_unit(scan, layout)
    check_finite(image, scan.image)
    assert scan.mask is not None
    mask = as_label_map(read_volume(scan.mask, "mask"), scan.mask)
    mask = align_mask(image, mask, scan.image, scan.mask)
    return LoadedScan(image, mask, unit, inputs)
