"""A library call (``radiomx.extract`` from a notebook) leaves the caller's process as it found it: environment,
BLAS/OpenMP thread limits, SimpleITK's global thread count, multiprocessing's start method, no process left
running, and every logger's level, handlers and filters.

The environment is compared in a fresh interpreter whose snapshot is taken before radiomx or any dependency is
imported: in this test process threadpoolctl (imported by pytest plugins and by the tests below) has already set
``KMP_DUPLICATE_LIB_OK``, which hid that radiomx's own import set it in every caller."""

from __future__ import annotations

import io
import logging
import multiprocessing
import os

import psutil
import pytest
import SimpleITK as sitk
from threadpoolctl import threadpool_info

from radiomx.api import extract
from radiomx.options import ExtractOptions

from .conftest import make_cohort

#: Run as a script in a fresh interpreter: the environment before any import, then after ``radiomx.extract``.
FRESH_CALLER = """
import json, multiprocessing, os, sys

before = dict(os.environ)
loaded_before = sorted(m for m in ("radiomx", "numpy", "threadpoolctl", "SimpleITK") if m in sys.modules)
if __name__ == "__main__":
    from radiomx.api import extract
    from radiomx.options import ExtractOptions

    summary = extract(sys.argv[1], sys.argv[2], ExtractOptions(jobs=int(sys.argv[3])))
    after = dict(os.environ)
    changed = {k: [before.get(k), after.get(k)] for k in set(before) | set(after) if before.get(k) != after.get(k)}
    start_method = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("spawn")  # the caller's own choice, still open to it (raised once fixed)
    print(json.dumps({"exit_code": summary.exit_code, "changed": changed, "loaded_before": loaded_before,
                      "threadpoolctl_loaded": "threadpoolctl" in sys.modules, "start_method": start_method}))
"""


@pytest.mark.parametrize("jobs", [1, 2])
def test_extract_leaves_a_fresh_callers_environment_unchanged(tmp_path, jobs):
    """Issue 21.2: ``radiomx.extract()`` left ``KMP_DUPLICATE_LIB_OK=True`` in the caller's ``os.environ`` (set by
    importing threadpoolctl). Checked in a fresh interpreter, snapshot first, with no inherited value."""
    import json
    import subprocess
    import sys

    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 2}, "P002": {"FDG": 1}})  # 2 scans: -j 2 is a pool
    script = tmp_path / "caller.py"
    script.write_text(FRESH_CALLER)
    env = {k: v for k, v in os.environ.items() if k != "KMP_DUPLICATE_LIB_OK"}  # this process has it set
    done = subprocess.run([sys.executable, str(script), str(cohort), str(tmp_path / "out"), str(jobs)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded_before"] == [] and report["exit_code"] == 0
    assert report["threadpoolctl_loaded"] or jobs > 1  # -j 1 computes here, through threadpoolctl's limits
    assert report["changed"] == {}
    # QA #6: spawning a worker fixed the default start method at 'fork' (get_start_method(allow_none=True) said
    # 'fork' afterwards, and the caller's own set_start_method raised "context has already been set").
    assert report["start_method"] is None


#: Run in a fresh interpreter: what logging and the warnings filters look like after ``sys.argv[1]`` ran, against
#: the snapshot taken before anything was imported. Printed as JSON: loggers with a level or handlers, filters added.
FRESH_LOGGING = """
import json, logging, sys, warnings

before = list(warnings.filters)


def state():
    loggers = {"": logging.getLogger(), **logging.root.manager.loggerDict}
    configured = {name: [lg.level, lg.propagate, [[type(h).__name__, getattr(getattr(h, "stream", None), "name", ""),
                                                   h.level] for h in lg.handlers]]
                  for name, lg in loggers.items()
                  if isinstance(lg, logging.Logger) and (lg.level or lg.handlers or not lg.propagate)}
    added = [[f[0], f[1].pattern if f[1] else None, f"{f[2].__module__}.{f[2].__qualname__}", f[3]]
             for f in warnings.filters if f not in before]
    return {"loggers": configured, "warning_filters": sorted(added, key=str)}  # their order: the imports' order


#: The dependencies whose import configures a logger or adds a warning filter (README, "Library").
DOCUMENTED = ("numpy", "ruamel.yaml", "radiomics", "pydicom", "jpeg_ls")

if __name__ == "__main__":
    if sys.argv[1] == "imports":
        import importlib

        for name in sys.argv[2:]:
            importlib.import_module(name)
    else:
        from radiomx.api import extract
        from radiomx.options import ExtractOptions

        assert extract(sys.argv[2], sys.argv[3], ExtractOptions(jobs=int(sys.argv[1]))).exit_code == 0
    print(json.dumps({**state(), "loaded": [m for m in DOCUMENTED if m in sys.modules]}))
"""


@pytest.mark.parametrize("jobs", [1, 2])
def test_extract_configures_no_logger_or_warning_filter_beyond_its_dependencies_imports(tmp_path, jobs):
    """QA2 D8: after ``radiomx.extract`` the ``radiomics`` logger had level INFO and a stderr handler, and 6 warning
    filters were added. All of it is done by importing numpy (4 filters), ruamel.yaml (2, through pykwalify) and
    PyRadiomics (its logger), as the README says, but for one handler PyRadiomics gave pykwalify.core when radiomx
    built an extractor (now removed). A fresh interpreter that only imports the same dependencies must end in
    exactly the state a fresh ``extract`` leaves."""
    import json
    import subprocess
    import sys

    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}})
    script = tmp_path / "caller.py"
    script.write_text(FRESH_LOGGING)

    def fresh(*args: str) -> dict:
        done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, cwd=tmp_path,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    after_extract = fresh(str(jobs), str(cohort), str(tmp_path / "out"))
    assert after_extract == fresh("imports", *after_extract["loaded"])  # PyRadiomics' pykwalify handler: removed
    # What the README documents, to the letter: PyRadiomics' logger at INFO with its own stderr handler at WARNING
    # (pydicom's and jpeg_ls' NullHandlers when a DICOM was read), numpy's and ruamel.yaml's filters, and the root
    # logger untouched (WARNING, no handler).
    loggers = dict(after_extract["loggers"])
    assert loggers.pop("") == [logging.WARNING, True, []]
    assert loggers.pop("radiomics") == [logging.INFO, True, [["StreamHandler", "<stderr>", logging.WARNING]]]
    assert all(handlers == [["NullHandler", "", 0]] for _, _, handlers in loggers.values()), loggers
    assert set(loggers) <= {"pydicom", "jpeg_ls"}, loggers
    assert sorted({f[2].split(".")[0] for f in after_extract["warning_filters"]}) == ["builtins", "numpy", "ruamel"]
    assert len(after_extract["warning_filters"]) == 6, after_extract["warning_filters"]


def _logging_state(names: set[str] | None = None) -> dict:
    """Every logger's level, flags, filters and handlers. Dask's own loggers are left out: a Nanny or Worker of an
    earlier test's cluster adds and removes its DequeHandler from its own threads while it shuts down, and these
    extracts (serial, local pool) never touch Dask."""
    loggers = {"": logging.getLogger()}
    loggers.update({name: logging.getLogger(name) for name in logging.root.manager.loggerDict
                    if not name.startswith("distributed")})
    return {name: (lg.level, lg.disabled, lg.propagate, tuple(lg.filters),
                   tuple((h, h.level, tuple(h.filters)) for h in lg.handlers))
            for name, lg in loggers.items() if isinstance(lg, logging.Logger) and (names is None or name in names)}


def _process_state() -> dict:
    return {
        "environ": dict(os.environ),
        "threadpools": sorted((i["internal_api"], i["filepath"], i["num_threads"]) for i in threadpool_info()),
        "sitk_threads": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(),
        "start_method": multiprocessing.get_start_method(allow_none=True),
        # multiprocessing's resource tracker (one per process, started by any spawn pool) is the stdlib's own
        "children": [p.pid for p in psutil.Process().children() if "resource_tracker" not in " ".join(p.cmdline())],
    }


@pytest.mark.parametrize("jobs", [1, 2])
def test_extract_leaves_the_callers_process_unchanged(tmp_path, jobs):
    import radiomics  # the state after a user's own import: PyRadiomics' handler in place, at its own level

    radiomics.setVerbosity(logging.WARNING)
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(3)  # a caller's own choice, which 1 (our pin) would undo
    try:
        cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 2}, "P002": {"FDG": 1}})
        before, logs_before = _process_state(), _logging_state()
        summary = extract(cohort, tmp_path / "out", ExtractOptions(jobs=jobs))
        assert summary.exit_code == 0 and summary.rows_written == 3
        after = _process_state()
        assert after == before  # the start method included: unset stays unset (engine.leave_start_method_unset)
        assert _logging_state(set(logs_before)) == logs_before  # loggers created by imports are new, not changed
        assert radiomics.handler.level == logging.WARNING
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)


def test_serial_work_runs_single_threaded_inside_the_call_only():
    """``-j 1`` computes in the caller's process: one thread while radiomx's call runs, the caller's after."""
    from radiomx.run.worker import caller_scope

    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(3)
    outside = sorted(i["num_threads"] for i in threadpool_info())
    try:
        with caller_scope():
            assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 1
            assert all(i["num_threads"] == 1 for i in threadpool_info())
        assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 3
        assert sorted(i["num_threads"] for i in threadpool_info()) == outside
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)


def test_pyradiomics_messages_are_held_back_only_for_radiomx_calls_on_its_own_thread():
    """Inside radiomx's call, PyRadiomics' stderr handler drops this thread's records; another thread's
    PyRadiomics use, and every call after, prints as PyRadiomics decides."""
    import threading

    import radiomics

    from radiomx.features.extractor import pyradiomics_silenced

    radiomics.setVerbosity(logging.WARNING)
    log = logging.getLogger("radiomics.test")
    printed = io.StringIO()
    stream = radiomics.handler.setStream(printed)  # PyRadiomics' own stderr handler, captured
    try:
        with pyradiomics_silenced():
            log.warning("inside radiomx")
            other = threading.Thread(target=log.warning, args=("another thread",))
            other.start()
            other.join()
        log.warning("after radiomx")
    finally:
        radiomics.handler.setStream(stream)
    err = printed.getvalue()
    assert "inside radiomx" not in err
    assert "another thread" in err and "after radiomx" in err


UNGUARDED_SCRIPT = """
import sys

import radiomx

radiomx.extract(sys.argv[1], sys.argv[2], radiomx.ExtractOptions(jobs=2))
"""


def test_a_script_without_the_main_guard_is_told_what_to_do_in_one_line(tmp_path):
    """QA #7: the README's example without ``if __name__ == "__main__":`` failed every scan with BrokenProcessPool
    ("rerun to retry this scan", which never helps): each spawned worker imports the script and calls radiomx again.
    The call now raises one error with the fix, and writes no failure row."""
    import subprocess
    import sys

    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}, "P002": {"FDG": 1}, "P003": {"FDG": 1}})
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(cohort), str(tmp_path / "out")], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("radiomx.errors.ConfigError: the worker processes ended before any scan ran"), last
    assert 'unguarded.py); if you run this from a script, put the radiomx call under if __name__ == "__main__":' \
        in last
    assert "rerun to retry" not in done.stderr
    assert not (tmp_path / "out" / "failures.parquet").exists()
