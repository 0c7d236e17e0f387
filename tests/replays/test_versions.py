"""The replays (``radiomx.features.replays``) hold for the library versions they were verified on
(``replays.VERIFIED``). pyproject.toml must bound each replayed library by exactly that specifier, and the installed
version must lie inside it: this fails on an upgrade in place, or when a bound is widened in one place only. The
value tests (``tests/replays/``, ``tests/test_crop_equivalence.py``) fail when a new version computes differently.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from radiomx.features.replays import VERIFIED


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    reqs = (Requirement(line) for line in project["dependencies"])
    return {r.name.lower(): r for r in reqs}


@pytest.mark.parametrize("name", sorted(VERIFIED))
def test_replayed_library_is_bounded_as_verified_and_installed_within_the_bound(name):
    verified = SpecifierSet(VERIFIED[name])
    assert any(spec.operator in ("==", "<", "<=", "~=") for spec in verified), (
        f"{name} needs an upper bound: radiomx replays its internals")
    assert _requirements()[name.lower()].specifier == verified, (
        f"pyproject.toml bounds {name} by {_requirements()[name.lower()].specifier}, the replays were verified on "
        f"{verified} (radiomx/features/replays/__init__.py): change both together, after the equivalence tests")
    installed = metadata.version(name)
    assert verified.contains(installed, prereleases=True), (
        f"{name} {installed} is outside {verified}, the versions radiomx's replay was verified on")
