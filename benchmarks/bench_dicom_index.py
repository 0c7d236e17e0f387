"""What does a DICOM export's header index cost, cold and on a nightly no-change rerun? And does extracting from an
export cost more than extracting the same files sorted by hand?

Part 1 writes a synthetic PACS-style export of ``--files`` files (default 50,000: patients x two PET/CT studies x a
PET and a CT series, small matrices, random file names without suffix in nested folders, one RTSTRUCT per PET) and
times, side by side:

* stock: every header re-read on every run (``pydicom.dcmread(stop_before_pixels=True)`` over a walk), what a
  crawler without an index (med-imagetools' Crawler, a dcm2niix sort) does each time;
* radiomx, cold: what ``radiomx scan|status|extract EXPORT -o OUT`` do before planning (``api.survey``) into a
  fresh OUT: walk, read every header, write ``OUT/.dicom-index.sqlite``, link;
* radiomx, no change: the same again (walk and stat only, nothing read);
* radiomx, 1 % touched: after rewriting 1 % of the files (new mtime), which are read again.

Part 2 (needs ../shared/data): ``radiomx extract`` of IBSI-SUV DROs from an export and from the same files sorted
by hand into the default layout, fresh OUT each, in one process each (``-j 1``).

``--smoke`` runs the same code on a tiny export (300 files, one DRO) in seconds; tests/test_benchmarks_smoke.py runs
it, so this script cannot rot. Prints markdown tables and the machine load (``os.getloadavg``) next to them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from radiomx import api  # noqa: E402
from radiomx.options import ExtractOptions  # noqa: E402

SLICES = 50  # per series: 2 series per study, 2 studies per patient -> 200 files per patient
RNG = np.random.default_rng(0)


def _name() -> str:
    return "".join(RNG.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), size=8))


def _slice(path: Path, patient: str, study: str, series: str, frame: str, modality: str, k: int, number: int,
           tracer: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.128" if modality == "PT" else "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = patient, study, series, frame
    ds.Modality, ds.SeriesNumber, ds.SeriesDescription = modality, number, f"{modality} WB"
    ds.StudyDate, ds.StudyTime = "20240301" if number < 3 else "20240315", "100000"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    if modality == "PT":
        ds.CorrectedImage = ["DECY", "ATTN"]
        rp = Dataset()
        rp.Radiopharmaceutical = tracer
        ds.RadiopharmaceuticalInformationSequence = Sequence([rp])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, 4.0 * k]
    ds.PixelSpacing = [4, 4]
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = bytes(128)
    ds.save_as(path, enforce_file_format=True)


def _rtstruct(path: Path, patient: str, study: str, series: str, frame: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, generate_uid(), "RTSTRUCT"
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = patient, study, generate_uid()
    ref, st, se = Dataset(), Dataset(), Dataset()
    se.SeriesInstanceUID = series
    st.ReferencedSOPInstanceUID, st.RTReferencedSeriesSequence = study, Sequence([se])
    ref.FrameOfReferenceUID, ref.RTReferencedStudySequence = frame, Sequence([st])
    ds.ReferencedFrameOfReferenceSequence = Sequence([ref])
    ds.save_as(path, enforce_file_format=True)


def write_export(root: Path, files: int) -> int:
    """About ``files`` files; returns how many were written."""
    patients = max(1, files // (4 * SLICES))
    written = 0
    for p in range(patients):
        patient = f"P{p:05d}"
        for s, tracer in enumerate(("FDG", "Pentixafor")):
            study, frame = generate_uid(), generate_uid()
            folder = root / f"D{RNG.integers(100):02d}" / _name()
            folder.mkdir(parents=True, exist_ok=True)
            pet = generate_uid()
            for modality, series, number in (("PT", pet, 1 + 2 * s), ("CT", generate_uid(), 2 + 2 * s)):
                for k in range(SLICES):
                    _slice(folder / _name(), patient, study, series, frame, modality, k, number, tracer)
                    written += 1
            _rtstruct(folder / _name(), patient, study, pet, frame)
            written += 1
    return written


def stock(root: Path) -> float:
    start = time.perf_counter()
    for folder, _dirs, names in os.walk(root):
        for name in names:
            try:
                pydicom.dcmread(os.path.join(folder, name), stop_before_pixels=True)
            except Exception:  # noqa: BLE001 - what a crawler does with a non-DICOM file: skip it
                pass
    return time.perf_counter() - start


def radiomx_index(root: Path, out: Path) -> tuple[float, object]:
    """What ``radiomx scan|status|extract`` do before planning: refresh the index in OUT and link the export."""
    start = time.perf_counter()
    found = api.survey(root, ExtractOptions(layout="dicom"), out=out)
    return time.perf_counter() - start, found


def load() -> str:
    return "load average " + " / ".join(f"{v:.2f}" for v in os.getloadavg()) + f" ({os.cpu_count()} cores)"


def part_index(work: Path, files: int) -> None:
    export, out = work / "export", work / "out-index"
    if not export.exists():
        files = write_export(export, files)
    else:
        files = sum(1 for p in export.rglob("*") if p.is_file())
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    stock_s = stock(export)
    cold, first = radiomx_index(export, out)
    again, second = radiomx_index(export, out)
    assert "0 read" in second.summary, second.summary
    touched = sorted(p for p in export.rglob("*") if p.is_file())[:: 100]
    for path in touched:
        path.write_bytes(path.read_bytes())
    later, third = radiomx_index(export, out)
    assert f"{len(touched)} read" in third.summary, third.summary
    assert len(first.scans) == len(second.scans) == files // (2 * SLICES + 1), (len(first.scans), files)
    per = 1000 / files
    print(f"\n{files} files, {len(first.scans)} scans; {load()}\n")
    print("| run | seconds | per 1,000 files (s) |\n| --- | ---: | ---: |")
    rows = (("stock: re-read every header", stock_s), ("radiomx index, cold", cold),
            ("radiomx index, no change", again), (f"radiomx index, {len(touched)} files touched", later))
    for label, seconds in rows:
        print(f"| {label} | {seconds:.2f} | {seconds * per:.3f} |")


def part_extract(work: Path, dros: list[str], repeats: int) -> None:
    shared = REPO.parent / "shared" / "data" / "ibsi_suv_dro" / "DRO"
    if not shared.is_dir():
        print("\n(part 2 skipped: ../shared/data is not beside this clone)")
        return
    sys.path.insert(0, str(REPO))
    from tests.export_builders import Export, dro_study, sort_by_hand

    root = work / "extract"
    shutil.rmtree(root, ignore_errors=True)
    export = Export(root / "export")
    keys = {}
    for k, dro in enumerate(dros):
        dro_study(export, dro, f"P{k:03d}")
        keys[2 * k] = (f"P{k:03d}", "ses-1", "FDG")
    cohort = sort_by_hand(export, root / "cohort", keys)
    times: dict[str, list[float]] = {"export (--layout dicom)": [], "sorted by hand": []}
    for rep in range(repeats):  # alternated, fresh OUT each: a shared machine's load hits both alike
        for label, source in zip(times, (export.root, cohort), strict=True):
            out = root / f"out-{rep}-{len(times[label])}-{label[:6]}"
            command = [sys.executable, "-m", "radiomx", "extract", str(source), "-o", str(out), "-j", "1"]
            start = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True)
            times[label].append(time.perf_counter() - start)
            if proc.returncode != 0:
                sys.exit(f"{' '.join(command)} failed:\n{proc.stderr}")
    print(f"\nradiomx extract, {len(dros)} IBSI-SUV DROs (20 slices of 256x256 each), -j 1, best and median of "
          f"{repeats} alternated runs; {load()}\n")
    print("| input | best (s) | median (s) |\n| --- | ---: | ---: |")
    for label, seconds in times.items():
        print(f"| {label} | {min(seconds):.2f} | {float(np.median(seconds)):.2f} |")
    best = {label: min(seconds) for label, seconds in times.items()}
    print(f"\nratio export / sorted (best): {best['export (--layout dicom)'] / best['sorted by hand']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--dros", default="DRO_0_0,DRO_1_0,DRO_2_0,DRO_3_0")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="300 files and one DRO: the same code in seconds")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="radiomx-dicom-index-"))
    part_index(work, 300 if args.smoke else args.files)
    part_extract(work, args.dros.split(",")[:1] if args.smoke else args.dros.split(","), 1 if args.smoke else 3)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
