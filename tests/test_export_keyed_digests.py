"""No identifier-derived value in an export's outputs can be reversed with the hospital's ID list: the header index
keeps HMAC-SHA256 digests under a secret of its own (``dicom_headers.Digest``), and a PatientID missing from
``--patient-ids`` becomes ``unmapped-<keyed digest>``, stable from one nightly run to the next on the same OUT."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pydicom
from click.testing import CliRunner
from pydicom.uid import generate_uid

from radiomx.cli import cli
from radiomx.discover import dicom_index

from .export_builders import Export, box_volume, rtstruct_on, synthetic_pet
from .test_dicom_export import minimal_params

MAPPED, UNMAPPED = "MRN-0001", "MRN-0002"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _export(tmp_path: Path) -> tuple[Export, Path]:
    export = Export(tmp_path / "export")
    image, mask = box_volume()
    for patient in (MAPPED, UNMAPPED):
        rtstruct_on(export, synthetic_pet(export, patient, generate_uid(), generate_uid(), volume=image), mask)
    ids = tmp_path / "ids.csv"
    ids.write_text(f"PatientID,patient_id\n{MAPPED},S-01\n")
    return export, ids


def _unmapped(text: str) -> set[str]:
    return set(re.findall(r"unmapped-[0-9a-f]+", text))


def _plain_digests(export: Export) -> set[str]:
    """Every plain SHA-256 (full, and the 20 and 8 hex digits radiomx kept) of every identifier and path."""
    values = {MAPPED, UNMAPPED}
    for written in export.written:
        for path in written.files:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            values |= {str(ds.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                                                     "FrameOfReferenceUID")} - {""}
            values.add(str(path.relative_to(export.root)))
    return {d[:n] for v in values for d in (_sha256(v),) for n in (8, 20, 64)}


def test_an_unmapped_patient_key_is_keyed_and_stable_between_nightly_runs(tmp_path):
    export, ids = _export(tmp_path)
    out = tmp_path / "out"
    args = ["extract", str(export.root), "-o", str(out), "--params-dir", str(minimal_params(tmp_path / "params")),
            "-j", "1", "--patient-ids", str(ids)]
    first, second = CliRunner().invoke(cli, args), CliRunner().invoke(cli, args)
    assert (first.exit_code, second.exit_code) == (1, 1), first.stderr
    (key,) = _unmapped(first.stderr)
    assert _unmapped(second.stderr) == {key}  # the same OUT, the same key: the index keeps its secret
    assert key != f"unmapped-{_sha256(UNMAPPED)[:8]}" and key[len("unmapped-"):] not in _plain_digests(export)
    failures = CliRunner().invoke(cli, ["table", str(out), "--which", "failures"]).stdout
    assert _unmapped(failures) == {key} and UNMAPPED not in failures


def test_the_index_keeps_no_plain_digest_and_the_same_keyed_ones_each_run(tmp_path):
    export, ids = _export(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    runs = []
    for _ in range(2):
        result = CliRunner().invoke(cli, ["scan", str(export.root), "-o", str(out), "--patient-ids", str(ids)])
        assert result.exit_code == 0, result.stderr
        db = sqlite3.connect(out / dicom_index.INDEX_NAME)
        runs.append(sorted(db.execute("SELECT key, patient, study, series, sop, header FROM files").fetchall()))
        db.close()
    assert runs[0] == runs[1] and len(runs[0]) == sum(len(w.files) for w in export.written)
    blob = (out / dicom_index.INDEX_NAME).read_bytes()
    for plain in _plain_digests(export):
        assert plain.encode() not in blob, plain
    patients = {row[1] for row in runs[0]}
    assert len(patients) == 2 and not patients & _plain_digests(export)


def test_scan_without_out_prints_no_plain_digest(tmp_path):
    export, ids = _export(tmp_path)
    result = CliRunner().invoke(cli, ["scan", str(export.root), "--patient-ids", str(ids)])
    assert result.exit_code == 0, result.stderr
    (key,) = _unmapped(result.stdout + result.stderr)
    assert key[len("unmapped-"):] not in _plain_digests(export)


def test_an_index_of_plain_digests_is_rebuilt_and_leaves_none_behind(tmp_path):
    """An OUT indexed by an older radiomx (version 1: plain SHA-256) is rebuilt, and its old pages vacuumed."""
    export, ids = _export(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    old = sqlite3.connect(out / dicom_index.INDEX_NAME)
    old.execute("CREATE TABLE files (key TEXT PRIMARY KEY, patient TEXT)")
    old.execute("INSERT INTO files VALUES (?, ?)", (_sha256("some/path"), _sha256(UNMAPPED)[:20]))
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    result = CliRunner().invoke(cli, ["scan", str(export.root), "-o", str(out), "--patient-ids", str(ids)])
    assert result.exit_code == 0, result.stderr
    blob = (out / dicom_index.INDEX_NAME).read_bytes()
    assert _sha256(UNMAPPED)[:20].encode() not in blob and _sha256("some/path").encode() not in blob
