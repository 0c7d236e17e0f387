"""What a path is, by its name or its first bytes: image files, DICOM files, BIDS sidecars.

Why apart from imaging.py: discovery and planning (``radiomx scan``, ``status``, every nightly rerun) need these
answers and must not import SimpleITK.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

#: The problem of a file that ends where its pixel data should begin (or earlier): a copy cut short.
ENDS_EARLY = "the file ends before its pixel data (a truncated copy); re-export it"
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


def truncated_pixels(fh: BinaryIO, ds: Any, size: int, at: int) -> str:
    """A problem text when a file read up to its Pixel Data (``stop_before_pixels``: ``fh`` is at ``at``) ends there
    or holds fewer bytes than Pixel Data declares (a copy cut short), else "". pydicom reads such a file silently,
    as far as it goes, so a header cut short looks like one that lacks its later attributes."""
    if at >= size:
        return ENDS_EARLY
    fh.seek(at)
    head = fh.read(12)
    if len(head) < 8 or head[:4] != b"\xe0\x7f\x10\x00" and head[:4] != b"\x7f\xe0\x00\x10":
        return ""
    little = head[:4] == b"\xe0\x7f\x10\x00"
    explicit = not ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2").endswith("10008.1.2")
    fmt = "<" if little else ">"
    if explicit:
        if len(head) < 12:
            return "the file ends inside its pixel data header; re-export it"
        length, header = struct.unpack(fmt + "I", head[8:12])[0], 12
    else:
        length, header = struct.unpack(fmt + "I", head[4:8])[0], 8
    if length != 0xFFFFFFFF and at + header + length > size:
        return (f"pixel data is cut short (the file holds {size - at - header} of {length} bytes): a truncated "
                "copy; re-export it")
    return ""
