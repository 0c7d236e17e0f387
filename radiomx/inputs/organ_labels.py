"""The names of a multilabel organ file's values: a label table beside it, else its NIfTI-1 header extension.

Where the names are, in the order looked for:

* a table beside the file, named like it (``organs.tsv``, a BIDS ``..._desc-organs_dseg.tsv``, ``organs.json``
  ``{"labels": {"1": "spleen"}}``, an ITK-SNAP ``organs.txt``): read by ``radiomx.inputs.label_tables``, as for
  lesion label maps;
* the NIfTI-1 header extension TotalSegmentator's ``--ml`` output carries: ``add_label_map_to_nifti`` in
  ``totalsegmentator/nifti_ext_header.py`` appends, with nibabel, one extension with ecode 0 whose content is a
  Caret-style XML document ``<CaretExtension> ... <LabelTable> <Label Key="1" ...><![CDATA[spleen]]></Label> ...``.
  NIfTI-1 (``nifti1.h``) lays extensions out after the 348-byte header: 4 bytes ``extension``
  (``extender[0] != 0`` when extensions follow), then per extension ``int32 esize`` (a multiple of 16, counting
  these 8 bytes), ``int32 ecode`` and ``esize - 8`` bytes of content, up to ``vox_offset``, in the header's byte
  order. SimpleITK does not expose extensions, so they are parsed here from the file's first bytes (for a
  ``.nii.gz`` only the start of the stream is inflated).

A table beside the file wins over the extension (it is what a user wrote on purpose). No imaging library here.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from isal import igzip, isal_zlib

from radiomx.errors import ScanError
from radiomx.inputs.label_tables import read_label_table
from radiomx.vocabulary import Stage

NIFTI1_HEADER_BYTES = 348
#: Largest header + extensions read (a TotalSegmentator label XML for 117 classes is ~12 kB).
MAX_HEADER_BYTES = 4 << 20


def _head(path: Path) -> bytes:
    """The file's first bytes up to its ``vox_offset`` (inflating only that much of a ``.gz``)."""
    try:
        opener = igzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as fh:  # type: ignore[operator]
            head = fh.read(NIFTI1_HEADER_BYTES + 4)
            if len(head) < NIFTI1_HEADER_BYTES:
                return head
            endian = "<" if struct.unpack("<i", head[:4])[0] == NIFTI1_HEADER_BYTES else ">"
            vox_offset = int(struct.unpack(endian + "f", head[108:112])[0])
            if vox_offset > len(head):
                head += fh.read(min(vox_offset, MAX_HEADER_BYTES) - len(head))
            return head
    except (OSError, EOFError, isal_zlib.error) as exc:
        raise ScanError(Stage.ORGANS, str(path), f"organ label file cannot be read ({exc}); re-export it") from exc


def nifti_extensions(head: bytes) -> list[tuple[int, bytes]]:
    """``(ecode, content)`` of every NIfTI-1 header extension in ``head`` (the bytes before the voxels)."""
    if len(head) < NIFTI1_HEADER_BYTES + 4 or head[NIFTI1_HEADER_BYTES] == 0:
        return []
    if struct.unpack("<i", head[:4])[0] == NIFTI1_HEADER_BYTES:
        endian = "<"
    elif struct.unpack(">i", head[:4])[0] == NIFTI1_HEADER_BYTES:
        endian = ">"
    else:
        return []  # NIfTI-2 or not NIfTI: no NIfTI-1 extensions
    found, at = [], NIFTI1_HEADER_BYTES + 4
    while at + 8 <= len(head):
        esize, ecode = struct.unpack(endian + "2i", head[at: at + 8])
        if esize < 8 or at + esize > len(head):
            break
        found.append((ecode, bytes(head[at + 8: at + esize])))
        at += esize
    return found


def caret_label_table(content: bytes) -> dict[int, str]:
    """``{Key: name}`` of the ``<Label>`` elements of a Caret XML extension (TotalSegmentator's), {} if none."""
    text = content.rstrip(b"\0 \n\t\r").decode("utf-8", "replace")
    if "<LabelTable" not in text:
        return {}
    root = ElementTree.fromstring(text.strip())
    table: dict[int, str] = {}
    for label in root.iter("Label"):
        key, name = label.get("Key"), (label.text or "").strip()
        if key is not None and name and int(key) > 0:
            table[int(key)] = name
    return table


def organ_label_names(path: Path) -> tuple[dict[int, str], str]:
    """``({label value: name}, where the names came from)`` for a multilabel organ file: a table beside it
    (``organs.tsv``), else a TotalSegmentator NIfTI header extension; ``({}, "")`` when neither names anything."""
    table, table_path = read_label_table(path)
    if table_path is not None:
        return table, table_path.name
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        return {}, ""
    for _code, content in nifti_extensions(_head(path)):
        try:
            names = caret_label_table(content)
        except (ElementTree.ParseError, ValueError) as exc:
            raise ScanError(Stage.ORGANS, str(path), f"the label table in its NIfTI header extension is not valid "
                                                 f"XML ({exc}); re-export it or put an organs.tsv beside it") from exc
        if names:
            return names, "NIfTI header extension"
    return {}, ""
