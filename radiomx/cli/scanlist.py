"""The scan list ``radiomx scan`` prints and ``extract --scans`` reads, in TSV, CSV and JSONL.

Writer and reader sit together so that they cannot drift: whatever ``scan`` prints, in any format, filtered by any
line-oriented tool (``grep``, ``awk``, ``jq -c``), ``extract --scans -`` reads back. TSV has no header (one scan per
line, as ``cut``/``awk`` want, and ``grep`` never has to skip one); CSV has a header row (as CSV readers expect), and
its header-less remains after ``grep`` are read too; JSONL objects carry their keys.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

import click

from radiomx.cli.logs import emit
from radiomx.records import ScanKey
from radiomx.vocabulary import Severity

FORMATS = ("tsv", "csv", "jsonl")
COLUMNS = ("patient_id", "session", "tracer", "image", "mask", "status")
#: With ``scan -o OUT``: where the scan stands against OUT (see ``radiomx.api.scan_states``).
STATE_COLUMN = "state"


@dataclass(frozen=True)
class Unparsed:
    """A line of the --scans input that named no scan, and why."""

    line_no: int
    text: str
    reason: str


def write_rows(rows: Iterable[dict[str, str]], fmt: str, stream: TextIO, columns: tuple[str, ...]) -> None:
    """Print scan rows in one of FORMATS."""
    if fmt == "jsonl":
        for row in rows:
            stream.write(json.dumps({c: row[c] for c in columns}) + "\n")
    elif fmt == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([row[c] for c in columns] for row in rows)
    else:
        for row in rows:
            stream.write("\t".join(row[c].replace("\t", " ").replace("\n", " ") for c in columns) + "\n")


def aligned(rows: list[dict[str, str]], columns: tuple[str, ...]) -> str:
    """The same rows as a table for eyes on a terminal (not meant to be parsed: pipe for that)."""
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def detect(first_line: str) -> str:
    """jsonl if the line is an object, tsv if it has a tab, else csv."""
    stripped = first_line.lstrip()
    if stripped.startswith("{"):
        return "jsonl"
    return "tsv" if "\t" in first_line else "csv"


def _key(fields: list[str]) -> ScanKey | None:
    if len(fields) < 3 or not fields[0] or not fields[2]:
        return None
    return ScanKey(fields[0], fields[1], fields[2])


def _parse(fmt: str, number: int, line: str) -> ScanKey | Unparsed | None:
    text = line.rstrip("\r\n")
    if not text.strip():
        return None
    if fmt == "jsonl":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            return Unparsed(number, text, f"not JSON ({exc.msg})")
        if not isinstance(obj, dict) or not all(isinstance(obj.get(k), str) for k in ("patient_id", "tracer")):
            return Unparsed(number, text, "a JSON object with patient_id and tracer is expected")
        return ScanKey(obj["patient_id"], str(obj.get("session") or ""), obj["tracer"])
    fields = text.split("\t") if fmt == "tsv" else next(csv.reader(io.StringIO(text)), [])
    if fmt == "csv" and fields[:3] == list(COLUMNS[:3]):
        return None  # the header row
    key = _key(fields)
    if key is None:
        return Unparsed(number, text, f"expected patient_id, session, tracer as the first three {fmt} fields")
    return key


def read_scan_keys(stream: TextIO) -> tuple[list[ScanKey], list[Unparsed], str]:
    """Keys from ``radiomx scan`` output in any of FORMATS (detected per line, so concatenated listings work), the
    lines that named no scan, and the format of the first non-empty line."""
    keys: list[ScanKey] = []
    bad: list[Unparsed] = []
    first = ""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        fmt = detect(line)
        first = first or fmt
        parsed = _parse(fmt, number, line)
        if isinstance(parsed, ScanKey):
            keys.append(parsed)
        elif isinstance(parsed, Unparsed):
            bad.append(parsed)
    return keys, bad, first or "empty"


def read_from(stream: TextIO) -> list[ScanKey]:
    """``extract --scans``: the keys, a warning per line that named no scan, exit 2 when lines came but none
    parsed (an empty input, as after a ``grep`` that matched nothing, selects no scan and is not an error)."""
    keys, bad, fmt = read_scan_keys(stream)
    for item in bad[:20]:
        emit("scans_input", f"--scans line {item.line_no}: cannot parse {item.text[:80]!r}: {item.reason}",
             Severity.WARNING, line=item.line_no, format=fmt)
    if len(bad) > 20:
        emit("scans_input", f"--scans: {len(bad) - 20} more lines could not be parsed", Severity.WARNING)
    if bad and not keys:
        raise click.UsageError(f"--scans: none of the {len(bad)} lines names a scan (read as {fmt}); give the "
                               "output of `radiomx scan` (tsv, csv or jsonl)")
    if not keys:
        emit("scans_input", "--scans: the input lists no scan; nothing to extract", Severity.WARNING)
    return keys
