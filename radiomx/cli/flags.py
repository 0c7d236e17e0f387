"""Options shared by several commands, declared once (as sqlite-utils' ``output_options``), and their parsing."""

from __future__ import annotations

import functools
from pathlib import Path

import click


def cohort_options(func):
    """Options shared by every command that reads a cohort, declared once."""

    @click.option("--image-pattern", "image_patterns", multiple=True, help="Image name pattern (repeatable).")
    @click.option("--mask-pattern", "mask_patterns", multiple=True, help="Mask name pattern (repeatable).")
    @click.option("--pet-units", type=click.Choice(["SUVbw"]), default=None,
                  help="Declare NIfTI/NRRD/MHA PET images without sidecar as already SUVbw.")
    @click.option("--params-dir", type=click.Path(path_type=Path), default=None,
                  help="Your own params tree (<tracer>/v<N>.yaml). Default: radiomx's params/.")
    @click.option("--params-version", default=None, help="Pin a parameter file version (e.g. v1). Default: latest.")
    @click.option("--lesions", type=click.Choice(["labels", "components"]), default="labels", show_default=True,
                  help="labels: one lesion per label value; components: 26-connected components of each label.")
    @click.option("--label", "labels", type=int, multiple=True,
                  help="Only these label values / segment numbers / ROI numbers (repeatable).")
    @click.option("--roi", "roi", multiple=True, metavar="GLOB",
                  help="Only lesions whose name (segment label, ROI name, label table name) matches "
                       "(case-insensitive glob, repeatable).")
    @click.option("--exclude-roi", "exclude_roi", multiple=True, metavar="GLOB",
                  help="Never lesions: names matching this glob (case-insensitive, repeatable).")
    @click.option("--layout", type=click.Choice(["auto", "dicom"]), default="auto", show_default=True,
                  help="auto: BIDS-PET, the default layout, else a DICOM export; dicom: a PACS/CD export, read by "
                       "content.")
    @click.option("--patient-ids", type=click.Path(path_type=Path, dir_okay=False), default=None,
                  help="DICOM export: CSV mapping PatientID to your patient_id (columns PatientID, patient_id).")
    @click.option("--default-tracer", default=None,
                  help="DICOM export: tracer of PET series that name no radiopharmaceutical (e.g. fdg).")
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def extract_options_from(**flags):
    from radiomx.options import ExtractOptions

    flags["labels"] = tuple(flags.get("labels") or ()) or None
    return ExtractOptions.from_flags(flags)


def format_option(choices: tuple[str, ...], default: str | None = "", help: str = "Output format."):
    """``--format``, one spelling for every command (the value reaches the command as ``fmt``). ``default`` ""
    means the first choice; None means "not given", for a command whose default depends on the terminal."""
    value = choices[0] if default == "" else default
    return click.option("--format", "fmt", type=click.Choice(choices), default=value,
                        show_default=value is not None, help=help)
