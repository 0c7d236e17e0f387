"""Versioned PyRadiomics parameter files: ``<root>/<tracer>/v<N>.yaml``.

Why versioned files and not flags: a feature value is only meaningful together with the exact settings that made
it. Each row records the version and the sha256 of the file, released files are frozen by ``LOCK.json``, and a
new setting is a new version, never an edit.

Each file is a PyRadiomics parameter file (validated with PyRadiomics' own pykwalify schema) plus one radiomx
block, removed before validation::

    radiomx:
      units: SUVbw     # the intensity unit the bin width is expressed in (SUVbw for PET, HU for CT)
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from radiomx.errors import ConfigError
from radiomx.fingerprint import file_sha256
from radiomx.tracers import Tracer

#: Units a parameter file may declare.
KNOWN_UNITS = ("SUVbw", "HU")
#: Largest number of grey levels a fixed bin width may produce on a plausible intensity range before we refuse:
#: PyRadiomics allocates (levels x levels) GLCM/GLSZM matrices per angle, so an SUV bin width applied to Bq/mL
#: or a 0.001 HU bin width exhausts memory (PyRadiomics issue #444).
MAX_GREY_LEVELS = 2000
#: Plausible intensity span per unit, used only to bound the number of grey levels before extraction starts.
PLAUSIBLE_SPAN = {"SUVbw": 100.0, "HU": 4000.0}

_VERSION_RE = re.compile(r"^v(\d+)\.ya?ml$")


@dataclass(frozen=True)
class ParamSet:
    """One validated parameter file: what PyRadiomics gets, plus what each row records about it."""

    tracer: str
    version: str
    path: Path
    sha256: str
    units: str
    pyradiomics: dict[str, Any] = field(hash=False, compare=False)

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.pyradiomics.get("setting") or {})

    @property
    def image_types(self) -> dict[str, dict]:
        return dict(self.pyradiomics.get("imageType") or {"Original": {}})


def default_params_root() -> Path:
    """The params tree shipped with radiomx: the repo's ``params/`` (editable install) or the wheel's copy."""
    package = Path(__file__).resolve().parent.parent  # radiomx/
    for candidate in (package.parent / "params", package / "_params"):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"{package}: radiomx's params/ folder is missing from this installation; reinstall radiomx")


def _schema_error_text(exc: Exception) -> str:
    """pykwalify packs every violation into one string; keep the first, on one line."""
    msg = getattr(exc, "msg", None) or str(exc)
    lines = [ln.strip(" -") for ln in str(msg).splitlines() if ln.strip(" -")]
    lines = [ln for ln in lines if "validation failed" not in ln.lower()]
    return lines[0] if lines else str(msg).strip()


def validate_pyradiomics(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Validate with PyRadiomics' own schema (the contract), raising ConfigError naming the file and key.

    pykwalify also logs each violation at ERROR; its logger is the caller's to configure (the CLI holds it at
    CRITICAL, see radiomx.cli.logs), never set from here."""
    import pykwalify.core
    from radiomics import getParameterValidationFiles

    schema_file, schema_funcs = getParameterValidationFiles()
    try:
        core = pykwalify.core.Core(source_data=data, schema_files=[schema_file], extensions=[schema_funcs])
        return core.validate(raise_exception=True)
    except Exception as exc:  # pykwalify raises SchemaError, ValueError or TypeError from extension functions
        raise ConfigError(f"{path}: invalid PyRadiomics parameter file: {_schema_error_text(exc)}") from exc


def load_param_file(path: Path, tracer: str = "", version: str = "") -> ParamSet:
    """Read, split off the radiomx block, validate, and check the radiomx rules (units, bin width bounds)."""
    try:
        raw_bytes = path.read_bytes()
        data = yaml.safe_load(raw_bytes.decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read parameter file ({exc.strerror})") from exc
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: parameter file is not valid YAML ({first})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: parameter file must be a YAML mapping with setting/imageType/featureClass")
    data = dict(data)
    block = data.pop("radiomx", None)
    if not isinstance(block, dict) or block.get("units") not in KNOWN_UNITS:
        raise ConfigError(
            f"{path}: missing or bad 'radiomx: {{units: ...}}' block; declare the intensity unit the bin width is "
            f"in, one of {', '.join(KNOWN_UNITS)}"
        )
    unknown = set(block) - {"units"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) in the radiomx block: {', '.join(sorted(unknown))}")
    validated = validate_pyradiomics(path, data)
    settings = validated.get("setting") or {}
    if "binWidth" not in settings and "binCount" not in settings:
        raise ConfigError(
            f"{path}: setting.binWidth (or binCount) is missing; PyRadiomics would silently use 25, "
            f"which is meaningless in {block['units']}"
        )
    if "binWidth" in settings:
        levels = PLAUSIBLE_SPAN[block["units"]] / float(settings["binWidth"])
        if levels > MAX_GREY_LEVELS:
            raise ConfigError(
                f"{path}: setting.binWidth {settings['binWidth']} would give ~{levels:.0f} grey levels over a "
                f"plausible {block['units']} range (limit {MAX_GREY_LEVELS}); use a larger bin width"
            )
    return ParamSet(
        tracer=tracer,
        version=version or path.stem,
        path=path,
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        units=block["units"],
        pyradiomics=validated,
    )


def available_versions(root: Path, tracer: str) -> list[str]:
    """Versions present for a tracer, oldest first (v2 < v10)."""
    folder = root / tracer
    found = []
    if folder.is_dir():
        for item in folder.iterdir():
            m = _VERSION_RE.match(item.name)
            if m:
                found.append((int(m.group(1)), item.stem))
    return [name for _, name in sorted(found)]


def _version_file(root: Path, tracer: str, version: str) -> Path:
    for suffix in (".yaml", ".yml"):
        candidate = root / tracer / f"{version}{suffix}"
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"{root / tracer}: no parameter file {version}.yaml for tracer {tracer}; "
        f"available: {', '.join(available_versions(root, tracer)) or 'none'}"
    )


def resolve_params(root: Path, tracer: Tracer, version: str | None = None) -> ParamSet:
    """Tracer + optional pinned version -> validated ParamSet (latest version when not pinned)."""
    if version is None:
        versions = available_versions(root, tracer.name)
        if not versions:
            raise ConfigError(f"{root}: no parameter files for tracer {tracer.name} (expected {tracer.name}/v1.yaml)")
        version = versions[-1]
    path = _version_file(root, tracer.name, version)
    params = load_param_file(path, tracer.name, version)
    locked = read_lock(root).get(f"{tracer.name}/{path.name}")
    if locked is not None and locked != params.sha256:
        raise ConfigError(
            f"{path}: released parameter file was edited (sha256 differs from LOCK.json); restore it and put the "
            "new settings in a new version file"
        )
    if params.units != tracer.unit:
        raise ConfigError(
            f"{params.path}: parameter file declares units {params.units} but {tracer.name} images are "
            f"{tracer.unit}; use a {tracer.unit} parameter file for this tracer"
        )
    return params


def read_lock(root: Path) -> dict[str, str]:
    """``LOCK.json``: ``{"<tracer>/<version>.yaml": sha256}`` for every released file."""
    lock = root / "LOCK.json"
    return json.loads(lock.read_text()) if lock.is_file() else {}


def check_lock(root: Path) -> list[str]:
    """Released files whose content no longer matches the lock (empty list means all frozen files are intact)."""
    problems = []
    for rel, expected in read_lock(root).items():
        path = root / rel
        if not path.is_file():
            problems.append(f"{path}: released parameter file is missing")
        elif file_sha256(path) != expected:
            problems.append(f"{path}: released parameter file was edited (sha256 differs from LOCK.json)")
    return problems
