"""The bit-exact replays of library internals (``features/bspline.py``: ITK's B-spline prefilter;
``features/crop.py``: PyRadiomics' resampling grid and pywt's wavelet reach; ``features/speedups.py``: two
PyRadiomics functions) hold for the versions they were verified on. pyproject.toml bounds those versions; this
fails when the installed library is outside its bound (an upgrade in place), and the value tests
(tests/test_bspline.py, test_crop_equivalence.py, test_speedups.py) fail when a bound is widened onto a version
that computes differently."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPLAYED = ("pyradiomics-bhklab", "SimpleITK", "PyWavelets")


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    reqs = (Requirement(line) for line in project["dependencies"])
    return {r.name.lower(): r for r in reqs}


@pytest.mark.parametrize("name", REPLAYED)
def test_replayed_library_is_bounded_and_installed_within_the_bound(name):
    requirement = _requirements()[name.lower()]
    assert any(spec.operator in ("==", "<", "<=", "~=") for spec in requirement.specifier), (
        f"{name} needs an upper bound: radiomx replays its internals")
    installed = metadata.version(name)
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"{name} {installed} is outside {requirement.specifier}, the versions radiomx's replay was verified on")
