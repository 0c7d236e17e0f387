"""``radiomx params ...`` and ``radiomx tracers`` through CliRunner, on the released tree and on copies in tmp_path."""

from __future__ import annotations

import json
import logging
import re
import shutil
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.cli.logs import adopt, cli_logging
from radiomx.params.paramset import available_versions, default_params_root, read_lock

#: The released FDG versions, whatever their number by now (tests must not break when v3 is released).
FDG_VERSIONS = available_versions(default_params_root(), "18F-FDG")
NEXT_FDG = int(FDG_VERSIONS[-1][1:]) + 1


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_list_names_every_released_file_with_the_lock_sha256():
    result = run("params", "list", "--format", "json")
    assert result.exit_code == 0, result.stderr
    entries = json.loads(result.stdout)
    lock = read_lock(default_params_root())
    assert {f"{e['tracer']}/{e['version']}.yaml": e["sha256"] for e in entries} == lock
    fdg = {e["version"]: e for e in entries if e["tracer"] == "18F-FDG"}
    assert [v for v, e in fdg.items() if e["default"]] == [FDG_VERSIONS[-1]]
    assert fdg["v1"]["released"] and fdg["v1"]["intact"] and fdg["v1"]["unit"] == "SUVbw"
    assert fdg["v1"]["summary"] == "binWidth 0.25 SUVbw, resampled 4x4x4 mm (sitkLinear), Original"
    text = run("params", "list")
    assert re.search(r"^18F-FDG +v1 +10e58d1c4f0e +(default,)?released ", text.stdout, re.M), text.stdout


def test_show_fills_in_pyradiomics_defaults_and_names_the_features():
    result = run("params", "show", "fdg@v1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    setting = shown["setting"]
    assert setting["binWidth"] == 0.25 and setting["resampledPixelSpacing"] == [4, 4, 4]  # from the file
    assert setting["distances"] == [1] and setting["force2D"] is False and "removeOutliers" in setting  # defaults
    assert setting["additionalInfo"] is False  # radiomx's own override, as a run applies it
    assert "Mean" in shown["featureClass"]["firstorder"]
    assert "StandardDeviation" not in shown["featureClass"]["firstorder"]  # deprecated in PyRadiomics
    assert shown["imageType"] == {"Original": {}}
    assert "  binWidth: 0.25" in run("params", "show", "18F-FDG").stdout


def test_diff_prints_what_differs_and_nothing_else():
    result = run("params", "diff", "FDG@v1", "CT@v1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    changes = {c["key"]: (c["a"], c["b"]) for c in json.loads(result.stdout)}
    assert changes["setting.binWidth"] == (0.25, 25)
    assert changes["setting.voxelArrayShift"] == (None, 1000)
    assert "setting.normalize" not in changes
    same = run("params", "diff", "FDG@v1", "18F-FDG@v1")
    assert same.exit_code == 0 and same.stdout == "" and "same effective settings" in same.stderr


def test_show_and_diff_name_radiomx_own_settings():
    """v2 chose another SUVpeak definition and a liver range: values in the tables change, so diff must say so
    (it said "same effective settings") and show must list them."""
    changes = {c["key"]: (c["a"], c["b"])
               for c in json.loads(run("params", "diff", "FDG@v1", "FDG@v2", "--format", "json").stdout)}
    assert changes["radiomx.suv_peak"] == ("ibsi-local", "ibsi-global")
    assert changes["radiomx.reference_suv_mean"] == ({}, {"liver": [1.3, 3.0]})
    shown = json.loads(run("params", "show", "fdg@v2", "--format", "json").stdout)["radiomx"]
    assert shown["voi"] == {"method": "none", "fraction": None, "threshold": None}
    assert shown["suv_peak"] == "ibsi-global"
    assert '  suv_peak: "ibsi-global"' in run("params", "show", "FDG@v2").stdout


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "params"
    shutil.copytree(default_params_root(), root)
    return root


@pytest.mark.parametrize("edit, key", [
    (lambda t: t.replace("binWidth: 0.25", "binWidth: abc"), "setting.binWidth"),
    (lambda t: t.replace("  interpolator:", "  interpolatr:"), "setting.interpolatr"),
    (lambda t: t.replace("binWidth: 0.25", "binWidth: 0.0001"), "setting.binWidth"),
    (lambda t: t.replace("units: SUVbw", "units: HU").replace("binWidth: 0.25", "binWidth: 25"), "radiomx.units"),
    (lambda t: t.replace("units: SUVbw", "units: SUVbw\n  colour: red"), "radiomx.colour"),
], ids=["type", "unknown-key", "too-many-grey-levels", "unit-of-another-tracer", "unknown-radiomx-key"])
def test_validate_exits_2_naming_the_key(tmp_path, edit, key):
    root = _tree(tmp_path)
    draft = root / "18F-FDG" / f"v{NEXT_FDG}.yaml"
    draft.write_text(edit((root / "18F-FDG" / "v1.yaml").read_text()))
    result = run("params", "validate", draft)
    assert result.exit_code == 2 and result.stdout == ""
    assert str(draft) in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert f"(key: {key})" in result.stderr
    as_json = json.loads(run("params", "validate", draft, "--format", "json").stdout)
    assert as_json["valid"] is False and as_json["key"] == key


def test_validate_checks_the_lock_like_a_run(tmp_path):
    root = _tree(tmp_path)
    released = root / "18F-FDG" / "v1.yaml"
    assert run("params", "validate", released).exit_code == 0
    released.write_text(released.read_text().replace("binWidth: 0.25", "binWidth: 0.3"))
    result = run("params", "validate", released)
    assert result.exit_code == 2 and "sha256 differs from LOCK.json" in result.stderr
    assert "EDITED-since-release" in run("params", "list", "--params-dir", root).stdout


def test_new_copies_the_latest_to_the_next_number_without_touching_released_files(tmp_path):
    released = {p: p.read_bytes() for p in default_params_root().rglob("*") if p.is_file()}
    mine = tmp_path / "mine"
    first = run("params", "new", "FDG", "--params-dir", mine)
    assert first.exit_code == 0, first.stderr
    draft = mine / "18F-FDG" / f"v{NEXT_FDG}.yaml"
    assert first.stdout.strip() == str(draft)
    assert f"draft copied from {FDG_VERSIONS[-1]}" in draft.read_text().splitlines()[0]
    assert run("params", "validate", draft).exit_code == 0
    second = mine / "18F-FDG" / f"v{NEXT_FDG + 1}.yaml"
    assert run("params", "new", "fdg", "--params-dir", mine).stdout.strip() == str(second)
    assert {p: p.read_bytes() for p in default_params_root().rglob("*") if p.is_file()} == released
    assert not (mine / "LOCK.json").exists()
    listing = json.loads(run("params", "list", "--params-dir", mine, "--format", "json").stdout)
    assert [(e["version"], e["default"], e["released"]) for e in listing] == [
        (f"v{NEXT_FDG}", False, False), (f"v{NEXT_FDG + 1}", True, False)]
    missing = run("params", "new", "FDG")
    assert missing.exit_code == 2 and "--params-dir" in missing.stderr


def test_a_draft_is_diffed_against_its_released_parent_where_it_lives(tmp_path):
    """Issue 21.9: after ``params new pentixafor --params-dir mine``, ``params diff pentixafor@v2 pentixafor@v3
    --params-dir mine`` exited 2 (no v2.yaml in mine): the parent is taken from radiomx's released tree, with a
    note, and the edit shows."""
    mine = tmp_path / "mine"
    versions = available_versions(default_params_root(), "68Ga-pentixafor")
    parent, draft_version = versions[-1], f"v{int(versions[-1][1:]) + 1}"
    assert run("params", "new", "pentixafor", "--params-dir", mine).exit_code == 0
    draft = mine / "68Ga-pentixafor" / f"{draft_version}.yaml"
    text = draft.read_text()
    width = re.search(r"binWidth: ([0-9.]+)\n", text).group(1)
    draft.write_text(text.replace(f"binWidth: {width}\n", f"binWidth: {float(width) * 2:g}\n"))
    result = run("params", "diff", f"pentixafor@{parent}", f"pentixafor@{draft_version}", "--params-dir", mine)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [f"setting.binWidth\t{width}\t{float(width) * 2:g}"]
    assert f"note: pentixafor@{parent} is not in {mine}: radiomx's released 68Ga-pentixafor {parent} is used" \
        in result.stderr
    shown = run("params", "show", f"pentixafor@{parent}", "--params-dir", mine, "--format", "json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["version"] == parent
    assert run("params", "diff", "pentixafor@v99", f"pentixafor@{draft_version}", "--params-dir", mine).exit_code == 2


def test_unknown_tracer_or_version_is_exit_2():
    assert run("params", "show", "FLT").exit_code == 2
    result = run("params", "show", "FDG@v99")
    assert result.exit_code == 2 and f"available: {', '.join(FDG_VERSIONS)}" in result.stderr


def test_tracers_lists_names_aliases_and_units():
    rows = json.loads(run("tracers", "--format", "json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["68Ga-pentixafor"]["unit"] == "SUVbw" and "cxcr4" in by_name["68Ga-pentixafor"]["aliases"]
    assert by_name["CT"]["unit"] == "HU"
    assert run("tracers").stdout.splitlines()[1].startswith("18F-FDG          PET  SUVbw  fdg,")


def test_json_log_format_makes_every_stderr_line_an_object(tmp_path):
    result = run("--log-format", "json", "params", "show", "FDG@v99")
    assert result.exit_code == 2
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(x["level"], x["exit_code"]) for x in lines] == [("error", 2)]
    assert run("-q", "params", "new", "FDG", "--params-dir", tmp_path).stderr == ""  # --quiet: no info line


def test_library_warnings_reach_stderr_once_in_our_format_and_the_loggers_are_restored(capsys):
    import radiomics

    root = logging.getLogger()
    before = (list(root.handlers), radiomics.logger.level, [list(h.filters) for h in radiomics.logger.handlers])
    with cli_logging(fmt="json"):
        adopt("radiomics")
        logging.getLogger("radiomics.glcm").info("chatter")
        logging.getLogger("radiomics.glcm").warning("per-lesion advice")
        logging.getLogger("radiomics.glcm").error("a real problem")
        logging.getLogger("distributed.scheduler").info("more chatter")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            logging.captureWarnings(True)  # as cli_logging did: pytest's catch_warnings replaced showwarning
            warnings.warn("a library's warning", UserWarning, stacklevel=1)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["logger"], x["level"]) for x in lines] == [("radiomics.glcm", "error"), ("py.warnings", "warning")]
    assert (list(root.handlers), radiomics.logger.level,
            [list(h.filters) for h in radiomics.logger.handlers]) == before
