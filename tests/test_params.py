"""Parameter files: every shipped file validates with PyRadiomics' schema, released files are frozen by
LOCK.json, and bad files are usage errors (exit 2) naming the file and the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.errors import ConfigError
from radiomx.fingerprint import file_sha256
from radiomx.params.paramset import available_versions, default_params_root, read_lock, resolve_params
from radiomx.tracers import TRACERS, get_tracer

from .conftest import make_cohort, next_version_file

ROOT = default_params_root()


def check_lock(root: Path) -> list[str]:
    """Released files whose content no longer matches the lock (empty: every frozen file is intact)."""
    problems = []
    for rel, expected in read_lock(root).items():
        path = root / rel
        if not path.is_file():
            problems.append(f"{path}: released parameter file is missing")
        elif file_sha256(path) != expected:
            problems.append(f"{path}: released parameter file was edited (sha256 differs from LOCK.json)")
    return problems


@pytest.mark.parametrize("tracer", [t.name for t in TRACERS])
def test_every_tracer_has_a_valid_latest_parameter_file(tracer):
    params = resolve_params(ROOT, get_tracer(tracer))
    assert params.version == available_versions(ROOT, tracer)[-1]
    assert params.units == get_tracer(tracer).unit
    assert "binWidth" in params.settings
    assert len(params.sha256) == 64


def test_every_released_file_is_in_the_lock_and_unchanged():
    lock = read_lock(ROOT)
    on_disk = {str(p.relative_to(ROOT)) for p in ROOT.glob("*/v*.yaml")}
    assert on_disk == set(lock), "every params file must be released in LOCK.json (add new versions to it)"
    assert check_lock(ROOT) == []


def test_editing_a_released_file_is_detected(tmp_path):
    copy = shutil.copytree(ROOT, tmp_path / "params")
    target = copy / "18F-FDG" / "v1.yaml"
    target.write_text(target.read_text().replace("binWidth: 0.25", "binWidth: 0.3"))
    assert check_lock(copy) == [f"{target}: released parameter file was edited (sha256 differs from LOCK.json)"]
    with pytest.raises(ConfigError, match="released parameter file was edited"):
        resolve_params(copy, get_tracer("18F-FDG"), "v1")  # v1 is no longer the latest


BAD_FILES = {
    "unknown-key": ("setting:\n  binWidth: 0.25\n  binWdth: 3\n", "binWdth"),
    "wrong-type": ("setting:\n  binWidth: wide\n", "binWidth"),
    "missing-bin-width": ("setting:\n  normalize: false\n", "binWidth (or binCount) is missing"),
    "absurd-bin-width": ("setting:\n  binWidth: 0.0001\n", "grey levels"),
    "bad-feature-class": ("setting:\n  binWidth: 0.25\nfeatureClass:\n  glcmm:\n", "glcmm"),
    "not-yaml": ("setting: [unclosed\n", "not valid YAML"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_parameter_file_is_exit_2_naming_file_and_key(tmp_path, name):
    body, fragment = BAD_FILES[name]
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}})
    params = tmp_path / "params" / "18F-FDG"
    params.mkdir(parents=True)
    header = "" if name == "not-yaml" else "radiomx:\n  units: SUVbw\n"
    (params / "v1.yaml").write_text(header + body)
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(tmp_path / "out"), "--params-dir",
                                      str(tmp_path / "params")])
    assert result.exit_code == 2, result.output
    assert str(params / "v1.yaml") in result.stderr
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists(), "a configuration error must stop before any work"


def test_hu_parameter_file_for_pet_tracer_is_refused(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}})
    params = shutil.copytree(ROOT / "CT", tmp_path / "params" / "18F-FDG")
    result = CliRunner().invoke(cli, ["extract", str(cohort), "-o", str(tmp_path / "out"), "--params-dir",
                                      str(params.parent)])
    assert result.exit_code == 2
    assert "declares units HU but 18F-FDG images are SUVbw" in result.stderr


def test_params_version_pins_and_unknown_version_is_exit_2(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", {"P001": {"FDG": 1}})
    tree = shutil.copytree(ROOT, tmp_path / "params")
    newest = next_version_file(tree, "18F-FDG")
    newest.write_text((tree / "18F-FDG" / "v1.yaml").read_text().replace("binWidth: 0.25", "binWidth: 0.5"))
    runner = CliRunner()
    latest = runner.invoke(cli, ["extract", str(cohort), "-o", str(tmp_path / "a"), "--params-dir", str(tree)])
    pinned = runner.invoke(cli, ["extract", str(cohort), "-o", str(tmp_path / "b"), "--params-dir", str(tree),
                                 "--params-version", "v1"])
    assert latest.exit_code == pinned.exit_code == 0
    import pandas as pd

    a = pd.read_parquet(tmp_path / "a" / "features" / "18F-FDG.parquet")
    b = pd.read_parquet(tmp_path / "b" / "features" / "18F-FDG.parquet")
    assert set(a["params_version"]) == {newest.stem} and set(b["params_version"]) == {"v1"}
    assert (a["original_glcm_Contrast"] != b["original_glcm_Contrast"]).all()
    missing = runner.invoke(cli, ["extract", str(cohort), "-o", str(tmp_path / "c"), "--params-version", "v9"])
    assert missing.exit_code == 2 and "no parameter file v9.yaml" in missing.stderr


SCHEMA_CASES = {
    **{f"shipped-{p.parent.name}-{p.stem}": p.read_text() for p in sorted(ROOT.glob("*/v*.yaml"))},
    **{name: body for name, (body, _) in BAD_FILES.items() if name in ("unknown-key", "wrong-type",
                                                                       "bad-feature-class")},
    "bad-image-type": "setting:\n  binWidth: 0.25\nimageType:\n  Waveletx: {}\n",
    "bad-interpolator-type": "setting:\n  binWidth: 0.25\n  interpolator: [1]\n",
}


@pytest.mark.parametrize("name", list(SCHEMA_CASES))
def test_the_schema_check_accepts_and_refuses_what_pyradiomics_itself_does(name):
    """radiomx validates against PyRadiomics' schema parsed once per process (``paramset._pyradiomics_schema``);
    PyRadiomics' extractor reads the schema file itself. Both must agree on every shipped file and on bad ones."""
    import logging

    import yaml
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    from radiomx.params.paramset import validate_pyradiomics

    data = yaml.safe_load(SCHEMA_CASES[name])
    data.pop("radiomx", None)

    def outcome(check) -> bool:
        try:
            check()
        except Exception:  # noqa: BLE001 - pykwalify raises SchemaError, ValueError or TypeError
            return False
        return True

    logging.getLogger("pykwalify.core").disabled = True  # PyRadiomics' own call logs what it raises
    try:
        theirs = outcome(lambda: RadiomicsFeatureExtractor(dict(data)))
    finally:
        logging.getLogger("pykwalify.core").disabled = False
    ours = outcome(lambda: validate_pyradiomics(Path(f"{name}.yaml"), dict(data)))
    assert ours == theirs
    assert ours is name.startswith("shipped-")
