"""Which layout a cohort folder has, and its scans: BIDS-PET, the default layout, or a DICOM export.

``--layout auto`` (the default) reads a folder as BIDS-PET when it looks like one, else in the default layout; a
folder in which neither finds any scan, but which holds DICOM files, is read as a DICOM export, and ``note`` says so
in one line. ``--layout dicom`` reads it as an export whatever it looks like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from radiomx.discover import bids
from radiomx.discover.cohort import CONFIG_NAME, discover, layout_for, read_cohort_config
from radiomx.discover.export_walk import walk
from radiomx.errors import ConfigError
from radiomx.inputs.paths import is_dicom_file
from radiomx.options import ExtractOptions
from radiomx.records import Layout, Scan


@dataclass
class Discovery:
    """The scans of a cohort (ready or failed), the PET series waiting for a mask (a DICOM export only), the layout
    it was read as, the auto-detection line and the export's index summary line (empty for the folder layouts)."""

    scans: list[Scan]
    layout: str
    waiting: list[Scan] = field(default_factory=list)
    note: str = ""
    summary: str = ""
    #: An export's header index built in memory (no OUT yet): ``dicom_index.save_index`` writes it into OUT.
    index_image: bytes = b""


def discover_cohort(cohort: Path, layout: Layout, kind: str = "auto", patient_ids: Path | None = None,
                    default_tracer: str | None = None, index_folder: Path | None = None) -> Discovery:
    """The scans of ``cohort`` read as ``kind`` (auto or dicom); ``index_folder``: where an export's header index is
    kept (OUT), None for one in memory."""
    cohort = Path(cohort)
    if kind == "dicom":
        return _export(cohort, patient_ids, default_tracer, index_folder, "")
    scans = discover(cohort, layout)
    if scans or bids.looks_like_bids(cohort) or not _holds_dicom(cohort, index_folder):
        return Discovery(scans, "bids" if bids.looks_like_bids(cohort) else "default")
    note = ("the folder holds no scan in the default layout or BIDS-PET, but DICOM files: reading it as a DICOM "
            "export (as --layout dicom does)")
    return _export(cohort, patient_ids, default_tracer, index_folder, note)


def layout_of(cohort: Path, options: ExtractOptions) -> Layout:
    """The name patterns and units a run with ``options`` uses for ``cohort`` (its ``radiomx.toml`` fills the rest)."""
    return layout_for(cohort, options.image_patterns, options.mask_patterns, options.pet_units)


def survey(cohort: Path | str, options: ExtractOptions, index_folder: Path | None = None) -> Discovery:
    """The scans of ``cohort`` as a run with ``options`` finds them: ``radiomx extract``, ``scan`` and ``status``,
    and, from the options a run log recorded, ``radiomx qc`` and ``compare`` finding a scan's files again. A DICOM
    export's header index is kept in ``index_folder`` (OUT) when that folder exists, else built in memory."""
    cohort = Path(cohort)
    index = Path(index_folder) if index_folder is not None and Path(index_folder).is_dir() else None
    return discover_cohort(cohort, layout_of(cohort, options), options.layout, options.patient_ids,
                           options.default_tracer, index)


def _holds_dicom(cohort: Path, out: Path | None) -> bool:
    return any(is_dicom_file(Path(location)) for location, _relative, size, _mtime in walk(cohort, out) if size > 132)


def _export(cohort: Path, patient_ids: Path | None, default_tracer: str | None, index_folder: Path | None,
            note: str) -> Discovery:
    from radiomx.discover.dicom_export import ExportSettings, discover_export, read_patient_ids

    if not cohort.is_dir():
        raise ConfigError(f"{cohort}: export folder does not exist or is not a folder")
    settings = ExportSettings(read_patient_ids(patient_ids) if patient_ids else None,
                              patient_ids.name if patient_ids else "", default_tracer, session_names(cohort))
    found = discover_export(cohort, settings, index_folder, exclude=index_folder)
    return Discovery(found.scans, "dicom", found.waiting, note, found.line(), found.index_image)


def session_names(cohort: Path) -> tuple[str, ...]:
    """``[sessions] order = ["baseline", "followup"]`` in radiomx.toml: the names of a patient's first, second, ...
    study of a tracer in a DICOM export (default ``ses-1``, ``ses-2``, ...)."""
    order = read_cohort_config(cohort).get("sessions", {}).get("order", [])
    if not (isinstance(order, list) and all(isinstance(n, str) and n.strip() for n in order)
            and len(set(order)) == len(order)):
        raise ConfigError(f"{cohort / CONFIG_NAME}: [sessions] order must be a list of distinct names "
                          f"(got {order!r})")
    return tuple(n.strip() for n in order)
