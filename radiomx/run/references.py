"""Per-scan inputs beyond image and mask, read in the worker: reference-region masks (their SUV statistics, with
a row for every problem) and the patient's height and weight.

Why in ``run``: reading a reference file is ``radiomx.inputs``, its statistics are ``radiomx.features``, and the
problems are rows of the scan's outcome; this is the one place that joins the three.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from radiomx.errors import ScanError
from radiomx.features.references import REGIONS, RegionStats, region_stats
from radiomx.features.voi_geometry import place_of
from radiomx.inputs.lbm import Normalisation, sul_normalisation, suv_bsa_normalisation
from radiomx.inputs.loader import LoadedScan, load_reference
from radiomx.params.readouts import SulSetting
from radiomx.records import CohortPaths, Failure, Scan, ScanOutcome, region_of
from radiomx.run.tasks import ScanTask
from radiomx.vocabulary import Stage


def reference_stats(task: ScanTask, loaded: LoadedScan, outcome: ScanOutcome) -> dict[str, RegionStats]:
    """SUV statistics of every usable reference region of a PET scan.

    Rows: an unreadable or misaligned reference file is a failure (stage of its ScanError: the user supplied it,
    and the scan is retried next run); an unknown region name, an empty region, a region given twice (file and
    DICOM segment: the file wins) or reference regions on a CT are warnings (stage ``reference``).
    """
    scan, key = task.scan, task.scan.key
    paths = CohortPaths(task.cohort)
    candidates: list[tuple[str, str, Path | None]] = [(region, paths.relative(path), path)
                                                      for region, path in scan.references]
    mask_name = paths.relative(scan.mask)
    candidates += [(region_of(label), f"{mask_name} [{label}]", None) for label in loaded.embedded_references]
    embedded = {region_of(label): mask for label, mask in loaded.embedded_references.items()}
    if candidates and loaded.unit != "SUVbw":
        outcome.warnings.append(Failure(key, Stage.REFERENCE, candidates[0][1], (
            "reference regions are used on PET scans only (their columns are SUV); ignored on this "
            f"{loaded.unit} scan")))
        return {}
    values = sitk.GetArrayViewFromImage(loaded.image)
    stats: dict[str, RegionStats] = {}
    for region, shown, path in candidates:
        if region not in REGIONS:
            outcome.warnings.append(Failure(key, Stage.REFERENCE, shown, (
                f"unknown reference region {region!r}; ignored (known: {', '.join(REGIONS)}; name the file "
                "ref-<region>)")))
            continue
        if region in stats:
            outcome.warnings.append(Failure(key, Stage.REFERENCE, shown, (
                f"reference region {region} is given twice; {stats[region].file} is used")))
            continue
        try:
            mask = (load_reference(path, loaded.image, scan.image, loaded.positions) if path is not None
                    else embedded[region])
        except ScanError as exc:  # named relative to the cohort, in the file column and in the message
            detail = exc.detail.replace(str(path), shown) if path is not None else exc.detail
            outcome.failures.append(Failure(key, exc.stage, shown, f"reference region {region}: {detail}"))
            continue
        except OSError as exc:
            outcome.failures.append(Failure(key, Stage.LOAD, shown, f"reference region {region}: cannot read "
                                                                    f"({exc.strerror}); check permissions"))
            continue
        inside = np.asarray(mask, dtype=bool)
        volume, centre = place_of(loaded.image, np.argwhere(inside))
        found = replace(region_stats(region, shown, values, inside), source=f"drawn: {shown}", volume_ml=volume,
                        centre_mm=centre)
        if found.voxels == 0:
            outcome.warnings.append(Failure(key, Stage.REFERENCE, shown, (
                f"reference region {region} has no voxel; ignored (draw it or remove the file)")))
            continue
        if not found.suv_mean > 0:
            outcome.warnings.append(Failure(key, Stage.REFERENCE, shown, (
                f"reference region {region} has SUVmean {found.suv_mean:.3g}; ratios to it are null (is the region "
                "inside the body?)")))
        stats[region] = found
    return stats


def _first(*values: float | None) -> float:
    for value in values:
        if value is not None and math.isfinite(value):
            return float(value)
    return math.nan


def body_columns(scan: Scan, loaded: LoadedScan) -> dict[str, Any]:
    """``height_m`` and ``weight_kg`` of the state row. Weight: the one SUV used (suv_weight_kg), else DICOM
    Patient Weight (0010,1030), else participants.tsv/sessions.tsv body_weight. Height: DICOM Patient Size
    (0010,1020, m), else participants.tsv/sessions.tsv ``height`` (radiomx.discover.bids.height_m). Null when
    unknown."""
    suv_weight = loaded.unit_inputs.get("suv_weight_kg")
    return {"height_m": _first(loaded.height_m, scan.height_m),
            "weight_kg": _first(suv_weight, loaded.weight_kg, scan.body_weight_kg)}


#: The lesion statistics that convert to SUL and SUVbsa (linear in the voxel values: one factor per scan).
NORMALISED = ("max", "peak", "mean")


@dataclass(frozen=True)
class Normalisations:
    """A PET scan's SUL (always) and SUVbsa (only when the parameter file asks) factors."""

    sul: Normalisation
    bsa: Normalisation | None = None

    def state_columns(self) -> dict[str, Any]:
        """The state row's SUL columns. Never the sex (a de-identification profile blanks it): ``lbm_kg`` and
        ``lbm_formula`` record what SUL used."""
        sul = self.sul
        return {"sul_factor": _or_nan(sul.factor), "lbm_kg": _or_nan(sul.size), "lbm_formula": sul.formula,
                "sul_source": sul.source, "sul_note": sul.note}

    def lesion_columns(self, values: dict[str, Any]) -> dict[str, Any]:
        """``sul_max``, ``sul_peak``, ``sul_mean`` (null without a factor) and what they used; ``suvbsa_*`` with
        ``bsa_m2`` only when asked (a column that is never computed would read as a measured null)."""
        out: dict[str, Any] = {f"sul_{s}": _times(values.get(f"suv_{s}"), self.sul.factor) for s in NORMALISED}
        out.update(lbm_kg=_or_nan(self.sul.size), lbm_formula=self.sul.formula, sul_source=self.sul.source,
                   sul_note=self.sul.note)
        if self.bsa is not None:
            out.update({f"suvbsa_{s}": _times(values.get(f"suv_{s}"), self.bsa.factor) for s in NORMALISED})
            out.update(bsa_m2=_or_nan(self.bsa.size), suvbsa_note=self.bsa.note)
        return out


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _times(value: Any, factor: float | None) -> float:
    if factor is None or value is None:
        return math.nan
    return float(value) * factor


def normalisations(scan: Scan, loaded: LoadedScan, body: dict[str, Any], setting: SulSetting) -> Normalisations:
    """SUL by the parameter file's formula from the weight SUVbw used and the height of the state row (``body``:
    ``body_columns``), and the sex from DICOM Patient's Sex (0010,0040) or the sidecar, else sessions.tsv /
    participants.tsv ``sex``; an image stored as SUL (GML) is recognised from its SUV inputs
    (``radiomx.inputs.lbm``)."""
    weight, height = body.get("weight_kg"), body.get("height_m")
    weight = weight if weight is not None and math.isfinite(weight) else None
    height = height if height is not None and math.isfinite(height) else None
    inputs = loaded.unit_inputs
    factor = inputs.get("suv_factor")
    sul = sul_normalisation(setting.lbm_formula, weight, height, loaded.sex or scan.sex,
                            str(inputs.get("suv_units") or ""), str(inputs.get("suv_suv_type") or ""),
                            float(factor) if factor is not None and math.isfinite(factor) else None)
    return Normalisations(sul, suv_bsa_normalisation(weight, height) if setting.suv_bsa else None)
