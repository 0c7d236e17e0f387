"""What a path is, by its name or its first bytes: image files, DICOM files, BIDS sidecars.

Why apart from imaging.py: discovery and planning (``radiomx scan``, ``status``, every nightly rerun) need these
answers and must not import SimpleITK.
"""

from __future__ import annotations

from pathlib import Path

#: File endings read through SimpleITK.
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def sidecar_path(image: Path) -> Path:
    """``pet.nii.gz`` -> ``pet.json`` (BIDS: same name, ``.json``)."""
    name = image.name
    suffix = next((s for s in IMAGE_SUFFIXES if name.lower().endswith(s)), image.suffix)
    return image.with_name(name[: len(name) - len(suffix)] + ".json")


def is_dicom_file(path: Path) -> bool:
    """Part-10 DICOM file (``DICM`` after the 128-byte preamble); no pydicom needed to tell."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def has_image_suffix(path: Path) -> bool:
    return path.name.lower().endswith(IMAGE_SUFFIXES)
