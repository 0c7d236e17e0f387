"""Benchmark: reading the bench cohort's PETs, three ways side by side in one process, rounds alternating.

- ``stock``: ``sitk.ReadImage`` (ITK's own reader, zlib; no truncation or NaN check);
- ``whole``: radiomx's reader (``radiomx.inputs.imaging.read_volume``): ``path.read_bytes()``, sha256,
  ``igzip.decompress`` of the whole file, the header checks, ``sitk.GetImageFromArray``;
- ``streamed``: an alternative tried in session 7 and not kept (``streamed`` below): the file hashed and inflated
  in 1 MiB pieces into one numpy buffer.

Why: each scan's whole-file buffers are fresh ``mmap``s that the kernel faults in 4 KiB at a time unless glibc is
told to use huge pages (``GLIBC_TUNABLES``, docs/parallel.md); numpy's own large buffers get huge pages without it,
so streaming into one should cut the faults of the default setting. Reports minor page faults, system and user CPU
time and wall time per leg (``getrusage`` of this process), the median of ``--reps`` rounds and the best wall time,
after checking that ``whole`` and ``streamed`` give identical voxels and hashes. Run it with and without
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` to see both allocator settings. Not a test.

    python benchmarks/bench_read.py --reps 7        # --smoke: two tiny PETs, one round, in a scratch folder
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import SimpleITK as sitk
from isal import igzip

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_extract import cohort_arguments, measured, write_inputs  # noqa: E402

from radiomx.inputs import nifti  # noqa: E402
from radiomx.inputs.imaging import read_volume  # noqa: E402


def whole(path: Path) -> tuple[sitk.Image, str]:
    digests: dict[Path, str] = {}
    return read_volume(path, "image", digests), digests[path]


class _HashingReader:
    """The file as ``IGzipFile`` reads it, hashing every byte on the way."""

    def __init__(self, handle: BinaryIO, digest: Any) -> None:
        self.handle, self.digest, self.mode = handle, digest, "rb"

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data

    def readinto(self, buffer: Any) -> int:
        count = self.handle.readinto(buffer)
        self.digest.update(memoryview(buffer)[:count])
        return count


def streamed(path: Path, chunk: int = 1 << 20) -> tuple[sitk.Image, str]:
    """The alternative: hash and inflate in ``chunk`` pieces into one numpy buffer sized by the gzip ISIZE trailer
    (grown for a multi-member file), then the same header checks and image as ``whole``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(size - 4)
        content = np.empty(max(struct.unpack("<I", handle.read(4))[0], chunk), dtype=np.uint8)
        handle.seek(0)
        filled = 0
        with igzip.IGzipFile(fileobj=_HashingReader(handle, digest), mode="rb") as stream:
            while True:
                if filled == len(content):
                    content = np.concatenate([content, np.empty(len(content), dtype=np.uint8)])
                count = stream.readinto(memoryview(content)[filled: filled + chunk])
                if not count:
                    break
                filled += count
        digest.update(handle.read())
    raw = content[:filled]
    header = nifti.parse_header(path, raw, "image")
    nifti.check_data(path, raw, header, "image")
    image = nifti.image_from_raw(path, raw, header)
    assert image is not None
    return image, digest.hexdigest()


def stock(path: Path) -> tuple[sitk.Image, str]:
    return sitk.ReadImage(str(path)), ""


def measure(read, paths: list[Path]) -> dict[str, float]:
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for path in paths:
        read(path)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"faults": after.ru_minflt - before.ru_minflt, "sys": after.ru_stime - before.ru_stime,
            "user": after.ru_utime - before.ru_utime, "wall": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cohort_arguments(parser, HERE / ".work", patients=10, reps=5)
    args = parser.parse_args(argv)
    return measured(args, "read", compare_readers, patients=2, reps=1)


def compare_readers(args: argparse.Namespace) -> int:
    cohort, _ = write_inputs(args.work, args.patients, args.seed, args.smoke)
    paths = sorted(cohort.glob("P*/FDG/pet.nii.gz"))
    for path in paths:  # same voxels, same hash, before any timing
        (a, sha_a), (b, sha_b) = whole(path), streamed(path)
        assert sha_a == sha_b and np.array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))
    legs = {"stock": stock, "whole": whole, "streamed": streamed}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in legs}
    for _ in range(args.reps):
        for name, read in legs.items():
            runs[name].append(measure(read, paths))
    size = sum(p.stat().st_size for p in paths) / 1e6
    print(f"{len(paths)} PETs, {size:.0f} MB compressed; best / median of {args.reps} alternated rounds")
    print("| reader | page faults | system s | user s | wall s (best) | wall s (median) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, rows in runs.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"| {name} | {med['faults']:.0f} | {med['sys']:.2f} | {med['user']:.2f} | "
              f"{min(r['wall'] for r in rows):.2f} | {med['wall']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
