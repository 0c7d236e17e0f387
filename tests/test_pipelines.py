"""Shell pipelines as a user types them: real processes joined by real pipes, the rows that come out asserted."""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from .conftest import make_cohort

RADIOMX = f"{shlex.quote(sys.executable)} -m radiomx"


def sh(command: str, **kwargs) -> subprocess.CompletedProcess:
    """One bash pipeline with pipefail: any failing stage fails the whole line."""
    return subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], capture_output=True, **kwargs)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> tuple[Path, Path]:
    """10 lesions over 3 scans, extracted once; its long form is larger than a pipe buffer (~64 KiB)."""
    root = tmp_path_factory.mktemp("pipes")
    cohort = make_cohort(root / "cohort", {"P001": {"FDG": 4, "pentixafor": 3}, "P002": {"FDG": 3}})
    proc = sh(f"{RADIOMX} extract {cohort} -o {root / 'out'} -j 1", text=True)
    assert proc.returncode == 0, proc.stderr
    return cohort, root / "out"


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_scan_grep_extract_in_each_format(tmp_path, fmt):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}, "P002": {"FDG": 2, "pentixafor": 1}})
    out = tmp_path / "out"
    proc = sh(f"{RADIOMX} scan {cohort} --format {fmt} | grep P002 | grep FDG "
              f"| {RADIOMX} extract {cohort} -o {out} -j 1 --scans - && {RADIOMX} table {out} --format csv",
              text=True)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [(r["patient_id"], r["tracer"], r["lesion_id"]) for r in rows] == [("P002", "18F-FDG", "1"),
                                                                             ("P002", "18F-FDG", "2")]
    assert "cannot parse" not in proc.stderr


def test_csv_header_and_unparsable_lines_are_reported_and_skipped(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}, "P002": {"FDG": 1}})
    out = tmp_path / "out"
    proc = sh(f"( {RADIOMX} scan {cohort} --format csv | grep -e patient_id -e P001; echo 'not a scan' ) "
              f"| {RADIOMX} extract {cohort} -o {out} -j 1 --scans -", text=True)
    assert proc.returncode == 0, proc.stderr
    assert "--scans line 3: cannot parse 'not a scan'" in proc.stderr
    assert list(pd.read_parquet(out / "features" / "18F-FDG.parquet")["patient_id"]) == ["P001"]
    nothing = sh(f"echo garbage | {RADIOMX} extract {cohort} -o {out} -j 1 --scans -", text=True)
    assert nothing.returncode == 2 and "none of the 1 lines names a scan" in nothing.stderr


def test_scan_with_out_adds_each_scans_state(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {p: {"FDG": 1} for p in ("P001", "P002", "P003", "P004")})
    out = tmp_path / "out"
    (cohort / "P004" / "FDG" / "mask.nii.gz").unlink()
    assert sh(f"{RADIOMX} scan {cohort} | grep -v P003 | {RADIOMX} extract {cohort} -o {out} -j 1 --scans -",
              text=True).returncode == 1
    (cohort / "P002" / "FDG" / "pet.nii.gz").write_bytes((cohort / "P001" / "FDG" / "pet.nii.gz").read_bytes())
    proc = sh(f"{RADIOMX} scan {cohort} -o {out} --format jsonl", text=True)
    assert proc.returncode == 0, proc.stderr
    states = {json.loads(line)["patient_id"]: json.loads(line)["state"] for line in proc.stdout.splitlines()}
    assert states == {"P001": "done", "P002": "changed", "P003": "new", "P004": "failed"}
    # the states pipe straight back in: only what is not done is recomputed
    again = sh(f"{RADIOMX} scan {cohort} -o {out} | grep -v -e 'done$' -e 'failed$' "
               f"| {RADIOMX} extract {cohort} -o {out} -j 1 --scans - --json", text=True)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["computed"] == 2 and summary["skipped"] == 0 and summary["failures"] == []
    assert str(out / "features" / "18F-FDG.parquet") in summary["tables"]


def test_a_params_dir_is_needed_only_for_the_tracers_a_run_uses_and_a_draft_is_said(tmp_path):
    """Issue 21.9: a tree holding only a pentixafor draft serves ``scan -o | grep pentixafor | extract --scans -``
    (``scan -o`` and ``status`` demanded FDG files for their report, exit 2); FDG's scans are reported failed with
    the reason, a run that uses FDG still refuses (exit 2), and a run on the draft says so in one line."""
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1, "pentixafor": 1}, "P002": {"FDG": 1}})
    out, mine = tmp_path / "out", tmp_path / "mine"
    assert sh(f"{RADIOMX} params new pentixafor --params-dir {mine}").returncode == 0
    draft = sorted((mine / "68Ga-pentixafor").glob("v*.yaml"))[-1].stem
    proc = sh(f"{RADIOMX} scan {cohort} -o {out} --params-dir {mine} | grep pentixafor "
              f"| {RADIOMX} extract {cohort} -o {out} -j 1 --params-dir {mine} --scans -", text=True)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "draft parameter files" in line]
    assert notes == [f"radiomx: note: this run uses draft parameter files (not in their tree's LOCK.json): "
                     f"68Ga-pentixafor {draft}; rows record each file's sha256; release a draft before citing "
                     "its values"]
    rows = pd.read_parquet(out / "features" / "68Ga-pentixafor.parquet")
    assert rows["params_version"].tolist() == [draft] and not (out / "features" / "18F-FDG.parquet").exists()
    listed = sh(f"{RADIOMX} scan {cohort} -o {out} --params-dir {mine} --format jsonl", text=True)
    assert listed.returncode == 0, listed.stderr
    states = {(r["patient_id"], r["tracer"]): r for r in map(json.loads, listed.stdout.splitlines())}
    assert states[("P001", "68Ga-pentixafor")]["state"] == "done"
    fdg = states[("P002", "18F-FDG")]
    assert fdg["state"] == "failed" and "no parameter files for tracer 18F-FDG" in fdg["status"]
    status = sh(f"{RADIOMX} status {cohort} -o {out} --params-dir {mine}", text=True)
    assert status.returncode == 0 and "NOTE " in status.stdout and "18F-FDG" in status.stdout
    refused = sh(f"{RADIOMX} extract {cohort} -o {out} -j 1 --params-dir {mine}", text=True)
    assert refused.returncode == 2 and "no parameter files for tracer 18F-FDG" in refused.stderr
    released = sh(f"{RADIOMX} extract {cohort} -o {tmp_path / 'out2'} -j 1", text=True)
    assert released.returncode == 0 and "draft" not in released.stderr


def test_table_into_head_exits_quietly(extracted):
    _, out = extracted
    size = sh(f"{RADIOMX} table {out} --long --format jsonl | wc -c", text=True)
    assert int(size.stdout) > 2**17, "the output must overflow the pipe buffer for the write to break"
    proc = subprocess.run(["bash", "-c", f"{RADIOMX} table {out} --long --format jsonl | head -1"],
                          capture_output=True, text=True)
    assert json.loads(proc.stdout)["patient_id"] == "P001"
    assert proc.stderr == ""


def test_table_long_into_a_reader(extracted):
    _, out = extracted
    reader = ("import csv,sys; rows=list(csv.DictReader(sys.stdin)); "
              "print(len(rows), sorted(rows[0]), len({r['feature'] for r in rows}))")
    proc = sh(f"{RADIOMX} table {out} --long | {shlex.quote(sys.executable)} -c {shlex.quote(reader)}", text=True)
    assert proc.returncode == 0, proc.stderr
    count, columns, features = proc.stdout.split(" ", 1)[0], *proc.stdout.rstrip().split("] ")
    wide = pd.read_parquet(out / "features" / "18F-FDG.parquet")
    assert columns.endswith("'feature', 'lesion_id', 'patient_id', 'session', 'tracer', 'value'")
    assert int(features) >= len([c for c in wide.columns if c.startswith("original_")])
    assert int(count) == 10 * int(features)


def test_table_selection_is_sorted_and_byte_stable(extracted):
    cohort, out = extracted
    command = f"{RADIOMX} table {out} --patient P001 --columns 'original_firstorder_*,voxel_count'"
    first = sh(command).stdout
    assert sh(f"{RADIOMX} extract {cohort} -o {out} -j 1", text=True).returncode == 0  # a no-change rerun
    assert sh(command).stdout == first
    frame = pd.read_csv(io.BytesIO(first))
    assert list(frame.columns[:5]) == ["patient_id", "session", "tracer", "lesion_id", "voxel_count"]
    assert all(c.startswith("original_firstorder_") for c in frame.columns[5:])
    assert list(frame[["tracer", "lesion_id"]].itertuples(index=False, name=None)) == [
        ("18F-FDG", 1), ("18F-FDG", 2), ("18F-FDG", 3), ("18F-FDG", 4),
        ("68Ga-pentixafor", 1), ("68Ga-pentixafor", 2), ("68Ga-pentixafor", 3)]
    parquet = [sh(f"{RADIOMX} table {out} --format parquet").stdout for _ in range(2)]
    assert parquet[0] == parquet[1] and len(pd.read_parquet(io.BytesIO(parquet[0]))) == 10


def _on_a_terminal(args: list[str], env: dict, stream: str = "stderr") -> tuple[bytes, bytes, int]:
    """Run with ``stream`` on a pseudo-terminal and the other one on a pipe; (terminal bytes, piped bytes, exit)."""
    master, slave = os.openpty()
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, stream: slave}
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, env=env, **streams)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the process closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    piped = (proc.stderr if stream == "stdout" else proc.stdout).read()  # type: ignore[union-attr]
    code = proc.wait()
    reader.join()
    os.close(master)
    return b"".join(chunks), piped, code


@pytest.mark.parametrize("no_color", [False, True], ids=["colour", "NO_COLOR"])
def test_progress_bar_on_a_terminal_only_and_stdout_stays_clean(tmp_path, no_color):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}, "P002": {"FDG": 1}})
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    if no_color:
        env["NO_COLOR"] = "1"
    args = [sys.executable, "-m", "radiomx", "extract", str(cohort), "-o", str(tmp_path / "tty"), "-j", "1"]
    terminal, stdout, code = _on_a_terminal(args, env)
    assert code == 0, terminal
    assert b"extract" in terminal and "━".encode() in terminal and b"/2" in terminal  # rich's bar, "n/2"
    assert stdout == b""
    if no_color:
        assert b"\x1b[3" not in terminal and b"\x1b[38;" not in terminal  # no foreground colours
    piped = subprocess.run([*args[:-4], "-o", str(tmp_path / "pipe"), "-j", "1"], capture_output=True, env=env)
    assert piped.returncode == 0 and piped.stdout == b""
    assert b"\x1b" not in piped.stderr and "━".encode() not in piped.stderr
    assert piped.stderr.decode().splitlines() == [
        "radiomx: 2 scans computed, 0 unchanged, 0 negative (no lesion in mask), 0 with failures; 2 lesion rows "
        f"written; tables in {tmp_path / 'pipe'}"]


def test_scan_is_an_aligned_table_on_a_terminal_and_tsv_in_a_pipe(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}, "P002": {"pentixafor": 1}})
    args = [sys.executable, "-m", "radiomx", "scan", str(cohort)]
    terminal, stderr, code = _on_a_terminal(args, {**os.environ, "TERM": "xterm"}, stream="stdout")
    assert code == 0 and stderr == b""
    lines = terminal.decode().replace("\r\n", "\n").splitlines()
    assert lines[0].split() == ["patient_id", "session", "tracer", "image", "mask", "status"]
    assert lines[1].index("18F-FDG") == lines[2].index("68Ga-pentixafor") == lines[0].index("tracer")
    piped = subprocess.run(args, capture_output=True, text=True)
    assert piped.stdout.splitlines()[0].split("\t") == ["P001", "", "18F-FDG", "P001/FDG/pet.nii.gz",
                                                        "P001/FDG/mask.nii.gz", "ok"]
