"""``ExtractOptions``: every knob of an extraction, validated once, built equally from CLI flags or Python."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from radiomx.errors import ConfigError
from radiomx.tracers import TRACERS, find_tracer

ENGINES = ("local", "dask")
#: How a mask becomes lesions: one per label value, or one per 26-connected component of each label.
LESION_MODES = ("labels", "components")
#: How a cohort folder is read: ``auto`` (BIDS-PET, else the default layout, else a DICOM export, said in one
#: line) or ``dicom`` (a PACS/CD export read by content: ``radiomx.discover.dicom_export``).
LAYOUTS = ("auto", "dicom")


@dataclass(frozen=True)
class RoiSelection:
    """Which named masks of a mask file are lesions, by name (SEG Segment Label, RTSTRUCT ROI Name, a label
    table's name): ``include`` (``--roi``) and ``exclude`` (``--exclude-roi``) are case-insensitive shell globs.
    No ``include`` means every mask except the default non-lesions (``radiomx.inputs.lesion_selection``). Part of
    the work key: changing it recomputes the scan. Rules: docs/lesions.md."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for what, globs in (("--roi", self.include), ("--exclude-roi", self.exclude)):
            if isinstance(globs, str) or not all(isinstance(g, str) and g.strip() for g in globs):
                raise ConfigError(f"{what} takes non-empty name patterns (got {globs!r})")
        object.__setattr__(self, "include", tuple(g.strip() for g in self.include))
        object.__setattr__(self, "exclude", tuple(g.strip() for g in self.exclude))

    def as_key(self) -> dict[str, list[str]]:
        """The work key's part (order-free: the same set of patterns selects the same masks)."""
        return {"roi": sorted({g.lower() for g in self.include}),
                "exclude_roi": sorted({g.lower() for g in self.exclude})}


@dataclass(frozen=True)
class LesionOptions:
    """How a mask becomes lesions, as one value threaded from the options to the work key, the worker and ``radiomx
    qc``: the mode (``--lesions``), the label values (``--label``; None: all) and the selection by name (``--roi``,
    ``--exclude-roi`` and the cohort's ``[lesions]``). Part of every scan's work key (``as_key``)."""

    mode: str = "labels"
    labels: tuple[int, ...] | None = None
    selection: RoiSelection = field(default_factory=RoiSelection)

    def __post_init__(self) -> None:
        if self.mode not in LESION_MODES:
            raise ConfigError(f"--lesions must be one of {', '.join(LESION_MODES)} (got {self.mode!r})")
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(sorted({int(v) for v in self.labels})) or None)

    @classmethod
    def from_record(cls, options: dict[str, Any]) -> LesionOptions:
        """As a run log recorded them (``radiomx.store.runlog.options_json``)."""
        return cls(options.get("lesions") or "labels", tuple(options.get("labels") or ()) or None,
                   RoiSelection(tuple(options.get("roi") or ()), tuple(options.get("exclude_roi") or ())))

    def as_key(self) -> dict[str, Any]:
        """The work key's part (the same JSON the key always hashed: a new spelling must not recompute a cohort)."""
        return {"lesions": [self.mode, list(self.labels) if self.labels else None], "select": self.selection.as_key()}


def usable_cores() -> int:
    """Cores this process may run on (respects taskset/cgroup affinity, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ExtractOptions:
    params_dir: Path | None = None
    params_version: str | None = None
    lesions: str = "labels"
    labels: tuple[int, ...] | None = None
    #: Lesions by name (``--roi``/``--exclude-roi``); the cohort's ``[lesions]`` in radiomx.toml fills what is not
    #: given here (``radiomx.discover.cohort.selection_for``).
    roi: tuple[str, ...] = ()
    exclude_roi: tuple[str, ...] = ()
    image_patterns: tuple[str, ...] = ()
    mask_patterns: tuple[str, ...] = ()
    pet_units: str | None = None
    jobs: int = 0  # 0 means usable_cores()
    engine: str = "local"
    dask_scheduler: str | None = None
    dask_timeout: float = 30.0
    force: bool = False
    dry_run: bool = False
    prune: bool = False
    wait: float = 0.0
    batch_size: int = 16
    batch_seconds: float = 60.0
    #: Render each computed scan's QC picture in its worker (``radiomx.qc``), while the image is in memory.
    qc: bool = False
    #: ``auto`` or ``dicom`` (``LAYOUTS``). CLI: ``--layout``.
    layout: str = "auto"
    #: A DICOM export's PatientID -> study ID map (CSV, columns PatientID and patient_id). CLI: ``--patient-ids``.
    patient_ids: Path | None = None
    #: The tracer of export PET series that name no radiopharmaceutical (anonymised). CLI: ``--default-tracer``.
    default_tracer: str | None = None

    def __post_init__(self) -> None:
        if self.lesions not in LESION_MODES:
            raise ConfigError(f"--lesions must be one of {', '.join(LESION_MODES)} (got {self.lesions!r})")
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be one of {', '.join(ENGINES)} (got {self.engine!r})")
        if self.jobs < 0:
            raise ConfigError(f"--jobs must be >= 1 (got {self.jobs})")
        if self.batch_size < 1 or self.batch_seconds <= 0:
            raise ConfigError("--batch-size must be >= 1 and --batch-seconds > 0")
        if self.dask_timeout <= 0:
            raise ConfigError(f"--dask-timeout must be > 0 seconds (got {self.dask_timeout})")
        if self.wait < 0:
            raise ConfigError(f"--wait must be >= 0 seconds (got {self.wait})")
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(sorted(set(int(v) for v in self.labels))) or None)
        if self.params_dir is not None:
            object.__setattr__(self, "params_dir", Path(self.params_dir))
        RoiSelection(tuple(self.roi), tuple(self.exclude_roi))  # validates
        object.__setattr__(self, "roi", tuple(self.roi))
        object.__setattr__(self, "exclude_roi", tuple(self.exclude_roi))
        if self.layout not in LAYOUTS:
            raise ConfigError(f"--layout must be one of {', '.join(LAYOUTS)} (got {self.layout!r})")
        if self.patient_ids is not None:
            object.__setattr__(self, "patient_ids", Path(self.patient_ids))
        if self.default_tracer is not None:
            object.__setattr__(self, "default_tracer", _pet_tracer(self.default_tracer))
        object.__setattr__(self, "image_patterns", tuple(self.image_patterns))
        object.__setattr__(self, "mask_patterns", tuple(self.mask_patterns))
        if self.jobs == 0:
            object.__setattr__(self, "jobs", usable_cores())

    @classmethod
    def from_flags(cls, flags: dict[str, Any]) -> ExtractOptions:
        """Build from a CLI flag dict; unknown flags are a programming error, not silently dropped."""
        names = {f.name for f in fields(cls)}
        unknown = set(flags) - names
        if unknown:
            raise TypeError(f"unknown extract option(s): {sorted(unknown)}")
        return cls(**flags)


def _pet_tracer(name: str) -> str:
    """``--default-tracer``: a PET tracer's canonical name from any of its names, or exit 2 with the known ones."""
    tracer = find_tracer(name)
    if tracer is None or tracer.modality != "PET":
        pet = [t.name for t in TRACERS if t.modality == "PET"]
        raise ConfigError(f"--default-tracer {name!r} is not a known PET tracer; use one of {', '.join(pet)}")
    return tracer.name
