"""The read-out settings of parameter files (issue 25): SUL, scores per tracer, response criteria. Validated keys
(exit 2 naming the key), the shipped v3 choices, and ``params show``/``diff`` naming them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from radiomx.cli import cli
from radiomx.errors import ConfigError
from radiomx.params.paramset import default_params_root, load_param_file, resolve_params
from radiomx.params.readouts import DeauvilleSetting, KrenningSetting, LuganoSetting, ReadoutSettings, SulSetting
from radiomx.tracers import get_tracer

ROOT = default_params_root()
HEAD = "radiomx:\n  units: SUVbw\n"
TAIL = "setting:\n  binWidth: 0.25\n"


def write(tmp_path: Path, block: str) -> Path:
    path = tmp_path / "v9.yaml"
    path.write_text(HEAD + block + TAIL)
    return path


def test_shipped_v3_files_state_their_readouts():
    fdg = resolve_params(ROOT, get_tracer("18F-FDG"), "v3", validate=False).readouts
    assert fdg == ReadoutSettings(sul=SulSetting("janmahasatian", False),
                                  deauville=DeauvilleSetting("suv_max", "suv_max", 2.0), qpet=True,
                                  percist=True, lugano=LuganoSetting(30.0), new_lesions_are_progression=False)
    dotatate = resolve_params(ROOT, get_tracer("68Ga-DOTATATE"), "v3", validate=False).readouts
    assert dotatate == ReadoutSettings(krenning=KrenningSetting("suv_max", "suv_mean", (0.9, 1.1)))
    pentixafor = resolve_params(ROOT, get_tracer("68Ga-pentixafor"), "v3", validate=False).readouts
    assert pentixafor == ReadoutSettings()  # SUL by janmahasatian (stated), no score, no category


@pytest.mark.parametrize("tracer, version", [("18F-FDG", "v1"), ("18F-FDG", "v2"), ("68Ga-DOTATATE", "v2")])
def test_released_files_before_v3_have_no_scores(tracer, version):
    assert resolve_params(ROOT, get_tracer(tracer), version, validate=False).readouts == ReadoutSettings()


BAD = {
    "unknown-score": ("  scores:\n    recist: {}\n", "radiomx.scores: recist"),
    "deauville-without-cutoff": ("  scores:\n    deauville: {lesion_statistic: suv_max}\n",
                                 "radiomx.scores.deauville needs markedly_higher_than_liver"),
    "cutoff-of-one": ("  scores:\n    deauville: {markedly_higher_than_liver: 1}\n", "must be above 1"),
    "cutoff-as-text": ("  scores:\n    deauville: {markedly_higher_than_liver: '2'}\n",
                       "radiomx.scores.deauville.markedly_higher_than_liver is '2'"),
    "lesion-statistic": ("  scores:\n    deauville: {markedly_higher_than_liver: 2, lesion_statistic: suv_mean}\n",
                         "radiomx.scores.deauville.lesion_statistic is 'suv_mean'; use one of suv_max, suv_peak"),
    "reference-statistic": ("  scores:\n    krenning: {equal_to_liver: [0.9, 1.1], reference_statistic: suv_peak}\n",
                            "radiomx.scores.krenning.reference_statistic"),
    "band-without-one": ("  scores:\n    krenning: {equal_to_liver: [1.1, 1.3]}\n", "must contain 1"),
    "band-of-three": ("  scores:\n    krenning: {equal_to_liver: [0.9, 1.0, 1.1]}\n", "must be [low, high]"),
    "qpet-with-keys": ("  scores:\n    qpet: {peak: local}\n", "radiomx.scores.qpet: peak"),
    "lugano-without-deauville": ("  response:\n    lugano: {significant_change_pct: 30}\n",
                                 "needs radiomx.scores.deauville"),
    "casasnovas-without-cut": ("  response:\n    casasnovas: {}\n", "radiomx.response.casasnovas needs reduction_pct"),
    "percist-with-keys": ("  response:\n    percist: {change_pct: 25}\n", "radiomx.response.percist: change_pct"),
    "new-lesions-as-text": ("  response:\n    new_lesions_are_progression: 'no'\n", "must be true or false"),
    "lbm-formula": ("  sul: {lbm_formula: boer}\n",
                    "radiomx.sul.lbm_formula is 'boer'; use one of janmahasatian, james"),
    "suv-bsa": ("  sul: {suv_bsa: 1}\n", "radiomx.sul.suv_bsa must be true or false"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_readout_setting_names_the_file_and_the_key(tmp_path, name):
    block, fragment = BAD[name]
    path = write(tmp_path, block)
    with pytest.raises(ConfigError) as caught:
        load_param_file(path, validate=False)
    assert str(caught.value).startswith(f"{path}: ") and fragment in str(caught.value)


def test_readouts_are_pet_only(tmp_path):
    path = tmp_path / "v9.yaml"
    path.write_text("radiomx:\n  units: HU\n  scores:\n    qpet: {}\nsetting:\n  binWidth: 25\n")
    with pytest.raises(ConfigError, match="applies to SUVbw \\(PET\\) parameter files only"):
        load_param_file(path, validate=False)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_validate_names_the_readout_key(tmp_path):
    root = tmp_path / "params"
    shutil.copytree(ROOT, root)
    draft = root / "18F-FDG" / "v99.yaml"
    text = (root / "18F-FDG" / "v3.yaml").read_text()
    draft.write_text(text.replace("markedly_higher_than_liver: 2.0", "markedly_higher_than_liver: 20"))
    result = run("params", "validate", draft, "--format", "json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["key"] == "radiomx.scores.deauville.markedly_higher_than_liver"


def test_show_and_diff_name_the_readouts():
    shown = json.loads(run("params", "show", "DOTATATE@v3", "--format", "json").stdout)
    assert shown["radiomx"]["scores"]["krenning"] == {"lesion_statistic": "suv_max", "reference_statistic": "suv_mean",
                                                      "equal_to_liver": [0.9, 1.1]}
    assert shown["radiomx"]["sul"] == {"lbm_formula": "janmahasatian", "suv_bsa": False}
    changes = {c["key"]: (c["a"], c["b"]) for c in json.loads(run("params", "diff", "FDG@v2", "FDG@v3", "--format",
                                                                  "json").stdout)}
    assert changes["radiomx.scores"][1]["deauville"]["markedly_higher_than_liver"] == 2.0
    assert changes["radiomx.response"][0]["percist"] is False and changes["radiomx.response"][1]["percist"] is True
    ct = json.loads(run("params", "show", "CT", "--format", "json").stdout)
    assert "scores" not in ct["radiomx"] and "sul" not in ct["radiomx"]
