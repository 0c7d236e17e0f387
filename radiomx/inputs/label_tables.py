"""Label tables: the names of a label-map mask's values, from the files the field's tools write beside it.

Why: a NIfTI/NRRD label map holds numbers; the trial's analysis needs names (``GTV_Mass``, ``node_axilla_L``), and
name-based selection (``--roi``) needs them too. A table is looked for beside the mask, named like it (the mask's
name without its image suffix, then the table's own suffix), as BIDS names a sidecar:

* ``<mask>.tsv``: a BIDS ``_dseg.tsv`` (BIDS derivatives, "Common image-derived labels"): a tab-separated table
  with the columns ``index`` and ``name`` (others, such as ``abbreviation`` or ``color``, are ignored);
* ``<mask>.txt``: an ITK-SNAP label description file (Segmentation > Export Label Descriptions): lines
  ``IDX R G B A VIS MSH "LABEL"``, ``#`` comments;
* ``<mask>.json``: a small JSON sidecar ``{"labels": {"1": "GTV_Mass", "2": "node_axilla_L"}}`` (a JSON file
  without a ``labels`` key is some other sidecar and names nothing);
* a 3D Slicer ``.seg.nrrd`` names its segments in its own header (``Segment<N>_Name``, ``Segment<N>_LabelValue``,
  ``Segment<N>_Layer``); those are read with the voxels (``radiomx.inputs.named_masks``), not here.

Two tables beside one mask are refused (which one is meant is not ours to guess). Label 0 is background and never
named. This module imports no imaging library: the planner hashes the table into the work key (editing a name
recomputes the scan) on every nightly rerun.
"""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path

from radiomx.errors import ScanError
from radiomx.inputs.paths import IMAGE_SUFFIXES
from radiomx.vocabulary import Stage

#: The table kinds, in the order they are looked for (the suffix after the mask's name).
TABLE_SUFFIXES = (".tsv", ".txt", ".json")


def _stem(mask: Path) -> str:
    name = mask.name
    suffix = next((s for s in IMAGE_SUFFIXES if name.lower().endswith(s)), mask.suffix)
    return name[: len(name) - len(suffix)]


def label_table_candidates(mask: Path) -> list[Path]:
    """The table files present beside ``mask`` (``mask.nii.gz`` -> ``mask.tsv``, ``mask.txt``, ``mask.json``).
    A ``.json`` without a ``labels`` key is still returned here: the planner hashes what may name labels."""
    if mask.is_dir() or not mask.name.lower().endswith(IMAGE_SUFFIXES):
        return []
    stem = _stem(mask)
    return [p for p in (mask.with_name(stem + s) for s in TABLE_SUFFIXES) if p.is_file()]


def read_label_table(mask: Path) -> tuple[dict[int, str], Path | None]:
    """``({label value: name}, table file)`` for a label-map mask, ``({}, None)`` without a table; a ScanError
    (stage ``load``) names the table file and the line or field at fault."""
    tables = []
    for path in label_table_candidates(mask):
        names = _parse(path)
        if names is not None:
            tables.append((names, path))
    if len(tables) > 1:
        raise ScanError(Stage.LOAD, str(tables[1][1]), f"two label tables for {mask.name} ("
                                                       f"{', '.join(p.name for _, p in tables)}); keep one")
    return tables[0] if tables else ({}, None)


def _parse(path: Path) -> dict[int, str] | None:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScanError(Stage.LOAD, str(path),
                        f"label table is not readable UTF-8 text ({type(exc).__name__})") from exc
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _json_table(path, text)
    return _dseg_table(path, text) if suffix == ".tsv" else _itksnap_table(path, text)


def _label(path: Path, value: object, where: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ScanError(Stage.LOAD, str(path), f"{where}: label value {value!r} is not an integer") from None
    if number < 0:
        raise ScanError(Stage.LOAD, str(path), f"{where}: label value {number} is negative")
    return number


def _put(table: dict[int, str], path: Path, number: int, name: str, where: str) -> None:
    if number in table and table[number] != name:
        raise ScanError(Stage.LOAD, str(path), f"{where}: label {number} is named twice ({table[number]!r}, {name!r})")
    if number:
        table[number] = name.strip()


def _json_table(path: Path, text: str) -> dict[int, str] | None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScanError(Stage.LOAD, str(path), f"label sidecar is not valid JSON (line {exc.lineno})") from exc
    if not isinstance(data, dict) or "labels" not in data:
        return None
    labels = data["labels"]
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ScanError(Stage.LOAD, str(path), 'label sidecar: "labels" must map label values to names, e.g. '
                                               '{"labels": {"1": "GTV_Mass"}}')
    table: dict[int, str] = {}
    for key, name in labels.items():
        _put(table, path, _label(path, key, f"key {key!r}"), name, f"key {key!r}")
    return table


def _dseg_table(path: Path, text: str) -> dict[int, str]:
    rows = list(csv.reader(text.splitlines(), delimiter="\t"))
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if "index" not in header or "name" not in header:
        raise ScanError(Stage.LOAD, str(path), "BIDS dseg.tsv needs the columns index and name (tab-separated)")
    at_index, at_name = header.index("index"), header.index("name")
    table: dict[int, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(at_index, at_name):
            raise ScanError(Stage.LOAD, str(path), f"line {line}: fewer columns than the header")
        _put(table, path, _label(path, row[at_index], f"line {line}"), row[at_name], f"line {line}")
    return table


def _itksnap_table(path: Path, text: str) -> dict[int, str]:
    table: dict[int, str] = {}
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            fields = shlex.split(raw)
        except ValueError:
            raise ScanError(Stage.LOAD, str(path), f"line {line}: unbalanced quotes in the label name") from None
        if len(fields) < 8:
            raise ScanError(Stage.LOAD, str(path), f"line {line}: an ITK-SNAP label description has 8 fields "
                                                   '(IDX R G B A VIS MSH "LABEL"), found {len(fields)}')
        _put(table, path, _label(path, fields[0], f"line {line}"), " ".join(fields[7:]), f"line {line}")
    return table
