"""Cron safety with real processes: SIGKILL at chosen instants (inside a commit's part writes, inside the publish
step too), two concurrent writers, stale locks. After every kill the tables must read, hold no duplicate key (in
the published file, across the live parts, in ``read_table``), and a rerun must converge to exactly the rows of a
clean single run, published."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from radiomx.api import read_table, stale_tracers

from .conftest import as_read_parquet, make_cohort

KEY = ["patient_id", "session", "tracer", "lesion_id"]
EXTRACT = [sys.executable, "-m", "radiomx", "extract"]


def _start(cohort: Path, out: Path, *extra: str, fault: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIOMX_")}
    if fault:
        env["RADIOMX_FAULT_POINT"] = fault
    return subprocess.Popen([*EXTRACT, str(cohort), "-o", str(out), "-j", "1", "--batch-size", "1", *extra],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)


def _wait_for_line(proc: subprocess.Popen, fragment: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.5)
        if ready:
            line = proc.stderr.readline()
            if fragment in line:
                return
            if line == "" and proc.poll() is not None:
                break
    raise AssertionError(f"process never printed {fragment!r}")


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _assert_readable_and_unique(out: Path) -> None:
    for path in out.rglob("*.parquet"):
        table = pq.read_table(path).to_pandas()  # raises if torn
        if path.parent.name == "features":
            assert not table.duplicated(KEY).any(), f"duplicate key in {path}"
    for folder in (out / ".parts").glob("*/"):
        if any(folder.glob("*.parquet")):  # the live view, read in one call: no key in two parts
            assert not pd.read_parquet(folder).duplicated(KEY).any(), f"duplicate key across {folder}"
    if list(out.glob("features/*.parquet")) or list(out.glob(".parts/*.index.parquet")):
        assert not read_table(out).duplicated(KEY).any()


def _rows(out: Path) -> pd.DataFrame:
    """What a reader gets: ``read_table`` (the live parts when a killed run left the published file behind), its
    integer columns as ``pd.read_parquet`` types them, to compare with the published files."""
    table = as_read_parquet(read_table(out).drop(columns=["extracted_at"]))
    return table.sort_values(KEY).reset_index(drop=True)


def _published_rows(out: Path) -> pd.DataFrame:
    """The published files themselves, read the documented way; they must be current after a completed run."""
    assert stale_tracers(out) == []
    frames = [pd.read_parquet(p) for p in sorted((out / "features").glob("*.parquet"))]
    table = pd.concat(frames, ignore_index=True).drop(columns=["extracted_at"])
    return table.sort_values(KEY).reset_index(drop=True)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    spec = {f"P{i:03d}": {"FDG": 1 + i % 3} for i in range(1, 9)}
    return make_cohort(tmp_path_factory.mktemp("crash") / "cohort", spec)


@pytest.fixture(scope="module")
def clean_rows(cohort, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("clean") / "out"
    proc = subprocess.run([*EXTRACT, str(cohort), "-o", str(out), "-j", "1"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return _published_rows(out)


def test_sigkill_inside_commits_and_mid_run_then_rerun_converges(cohort, clean_rows, tmp_path):
    out = tmp_path / "out"
    # 1. killed after a temporary was written and fsynced, before its rename
    proc = _start(cohort, out, fault="before-rename")
    _wait_for_line(proc, "radiomx-fault-point before-rename")
    _kill(proc)
    assert list(out.rglob(".*.tmp-*")), "the kill should have left a temporary behind"
    _assert_readable_and_unique(out)
    # 2. killed inside a commit's part writes (index written, parts not), then between the features parts and
    #    the state file of a later commit
    for fault in ("between-parts", "between-files", "between-files"):
        proc = _start(cohort, out, fault=fault)
        _wait_for_line(proc, f"radiomx-fault-point {fault}")
        _kill(proc)
        _assert_readable_and_unique(out)
    partial = _rows(out)
    assert 0 < len(partial) < len(clean_rows), "some results committed before the kills must survive"
    assert stale_tracers(out) == ["18F-FDG"], "no run ended, so nothing was published: the parts are newer"
    # 3. killed at arbitrary instants while computing
    for delay in (0.5, 1.5):
        proc = _start(cohort, out)
        time.sleep(delay)
        _kill(proc)
        _assert_readable_and_unique(out)
    # 4. a final run completes the rest: same rows as a clean run, none lost, none duplicated
    final = subprocess.run([*EXTRACT, str(cohort), "-o", str(out), "-j", "1"], capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert not list(out.rglob(".*.tmp-*")), "the next writer removes leftovers"
    pd.testing.assert_frame_equal(_published_rows(out), clean_rows)
    again = subprocess.run([*EXTRACT, str(cohort), "-o", str(out), "-j", "1"], capture_output=True, text=True)
    assert "0 scans computed, 8 unchanged" in again.stderr


def test_sigkill_inside_publish_keeps_the_commits_and_the_next_run_publishes(cohort, clean_rows, tmp_path):
    """Every scan committed, killed while streaming the published file: the old published file (here: none) stays,
    readers get the committed parts, and a no-change rerun (nothing to compute) publishes them."""
    out = tmp_path / "out"
    proc = _start(cohort, out, "--batch-size", "16", fault="publish")
    _wait_for_line(proc, "radiomx-fault-point publish", timeout=120)
    _kill(proc)
    _assert_readable_and_unique(out)
    assert not (out / "features" / "18F-FDG.parquet").exists() and stale_tracers(out) == ["18F-FDG"]
    pd.testing.assert_frame_equal(_rows(out), clean_rows)  # read_table: the live parts, nothing lost
    rerun = subprocess.run([*EXTRACT, str(cohort), "-o", str(out), "-j", "1"], capture_output=True, text=True)
    assert rerun.returncode == 0 and "0 scans computed, 8 unchanged" in rerun.stderr, rerun.stderr
    pd.testing.assert_frame_equal(_published_rows(out), clean_rows)
    assert not list(out.rglob(".*.tmp-*"))


def test_second_writer_fails_fast_naming_the_holder_then_waits(cohort, tmp_path):
    out = tmp_path / "out"
    holder = _start(cohort, out, fault="between-files")
    try:
        _wait_for_line(holder, "radiomx-fault-point between-files")
        second = subprocess.run([*EXTRACT, str(cohort), "-o", str(out), "-j", "1"], capture_output=True, text=True)
        assert second.returncode == 2
        assert f"locked by PID {holder.pid}" in second.stderr and "started 20" in second.stderr
        assert "--wait" in second.stderr and len(second.stderr.strip().splitlines()) == 1
        started = time.monotonic()
        waiting = subprocess.run([*EXTRACT, str(cohort), "-o", str(out), "-j", "1", "--wait", "1.5"],
                                 capture_output=True, text=True)
        assert waiting.returncode == 2 and time.monotonic() - started >= 1.5
    finally:
        _kill(holder)
    # the holder died (SIGKILL): its flock is gone, so the stale lock is taken over at once
    taker = subprocess.run([*EXTRACT, str(cohort), "-o", str(out), "-j", "1"], capture_output=True, text=True)
    assert taker.returncode == 0, taker.stderr
    _assert_readable_and_unique(out)


def test_concurrent_runs_with_wait_both_succeed_and_never_interleave(cohort, clean_rows, tmp_path):
    out = tmp_path / "out"
    first = _start(cohort, out, "--wait", "120")
    time.sleep(0.3)
    second = _start(cohort, out, "--wait", "120")
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0
    stderr = first.stderr.read() + second.stderr.read()
    assert "8 scans computed, 0 unchanged" in stderr and "0 scans computed, 8 unchanged" in stderr
    pd.testing.assert_frame_equal(_published_rows(out), clean_rows)
    runs = pd.read_parquet(out / "runs.parquet")
    assert sorted(runs["computed"]) == [0, 8]


def test_full_disk_mid_run_exits_2_and_keeps_the_last_commit(tmp_path, monkeypatch):
    """ENOSPC on the second commit: one line, exit 2, tables exactly as after the first commit; a rerun finishes."""
    import errno

    import pyarrow.parquet as pq_module
    from click.testing import CliRunner

    from radiomx.cli import cli

    cohort = make_cohort(tmp_path / "cohort", {f"P{i}": {"FDG": 1} for i in range(4)})
    out = tmp_path / "out"
    runner = CliRunner()
    real_write = pq_module.write_table
    first_commit_done = {"yes": False}
    snapshot: dict[str, bytes] = {}

    def filling_disk(table, where, *args, **kwargs):
        if first_commit_done["yes"]:  # the second commit's first write: the disk is now full
            if not snapshot:
                snapshot.update({str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.parquet")})
            raise OSError(errno.ENOSPC, "No space left on device")
        written = real_write(table, where, *args, **kwargs)
        # a commit writes the scan state last (renamed into place before the next write starts)
        first_commit_done["yes"] = "scans.parquet" in Path(where).name
        return written

    monkeypatch.setattr(pq_module, "write_table", filling_disk)
    result = runner.invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1", "--batch-size", "2"])
    assert result.exit_code == 2, result.stderr
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot and set(snapshot) >= {"scans.parquet", ".parts/18F-FDG.index.parquet"}
    assert len(read_table(out, "18F-FDG")) == 2  # the first commit's 2 scans only (the live parts: no run ended)
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.parquet")} == snapshot
    assert not list(out.rglob(".*.tmp-*"))
    monkeypatch.setattr(pq_module, "write_table", real_write)
    rerun = runner.invoke(cli, ["extract", str(cohort), "-o", str(out), "-j", "1"])
    assert rerun.exit_code == 0 and "2 scans computed, 2 unchanged" in rerun.stderr


@pytest.mark.full
def test_twenty_random_sigkills_then_rerun_equals_a_clean_run(cohort, clean_rows, tmp_path):
    """20 SIGKILLs at seeded random instants of real runs (computing, committing the parts, failures or state,
    publishing), each followed by the checks every kill gets; the run that finally completes publishes exactly the
    rows of a clean run. ``make test-full`` (about 2 min)."""
    import random

    out = tmp_path / "out"
    # The kill instants are fractions of how long one whole run takes here, so that they land inside a run on a
    # fast machine and a loaded one alike (fixed seconds missed once one scan stopped starting a pool).
    started = time.monotonic()
    first = _start(cohort, tmp_path / "timing")
    assert first.communicate()[1] is not None and first.returncode == 0
    whole_run = time.monotonic() - started
    delays = [f * whole_run for f in random.Random(23).choices([0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65], k=20)]
    alive = 0
    for number, delay in enumerate(delays):
        proc = _start(cohort, out, *(("--force",) if number % 2 else ()))  # every other run recomputes (upserts)
        time.sleep(delay)
        alive += proc.poll() is None
        _kill(proc)
        _assert_readable_and_unique(out)
    assert alive >= 15, f"only {alive} of 20 kills hit a running writer"
    final = subprocess.run([*EXTRACT, str(cohort), "-o", str(out), "-j", "1"], capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    pd.testing.assert_frame_equal(_published_rows(out), clean_rows)
    pd.testing.assert_frame_equal(_rows(out), clean_rows)
