"""The parameter files as a catalogue: list, effective settings, differences, validation, a new draft version.

Why here and not in the CLI: a methods section cites the *effective* settings (PyRadiomics' defaults filled in),
and a notebook needs the same answer as ``radiomx params show``. The defaults come from PyRadiomics itself
(``RadiomicsFeatureExtractor(config).settings``, ``enabledImagetypes``, ``enabledFeatures``), never from a copy of
its table that could drift when PyRadiomics changes, and radiomx's own override (``additionalInfo`` off, see
``radiomx.features.extractor``) is applied the same way a run applies it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radiomx.errors import ConfigError, ScanError
from radiomx.params.paramset import (
    ParamSet,
    available_versions,
    default_params_root,
    load_param_file,
    read_lock,
    resolve_params,
)
from radiomx.quiet import pyradiomics_extractor
from radiomx.tracers import TRACERS, Tracer, get_tracer, resolve_tracer

#: What radiomx changes in every extractor it builds (``radiomx.features.extractor._extractor_for``).
RADIOMX_OVERRIDES = {"additionalInfo": False}
_VERSION_NUMBER = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class CatalogEntry:
    """One row of ``radiomx params list``: a parameter file and where it stands in its tree."""

    params: ParamSet
    default: bool    # the version a run uses when --params-version is not given (the latest)
    released: bool   # frozen by LOCK.json
    intact: bool     # False when a released file no longer matches its LOCK.json sha256

    def as_dict(self) -> dict[str, Any]:
        p = self.params
        return {"tracer": p.tracer, "version": p.version, "sha256": p.sha256, "default": self.default,
                "released": self.released, "intact": self.intact, "unit": p.units, "summary": summary_line(p)}


def parse_ref(text: str) -> tuple[Tracer, str | None]:
    """``"FDG@v1"`` -> (18F-FDG, "v1"); ``"pentixafor"`` -> (68Ga-pentixafor, None: the latest). Aliases work."""
    name, _, version = text.partition("@")
    try:
        tracer = resolve_tracer(name)
    except ScanError as exc:
        raise ConfigError(f"{text}: {exc.detail}") from None
    if version and not _VERSION_NUMBER.match(version):
        raise ConfigError(f"{text}: version must look like v1, v2, ... (got {version!r})")
    return tracer, version or None


def find_params(root: Path, tracer: Tracer, version: str | None = None) -> ParamSet:
    """``TRACER@vN`` in ``root`` (``--params-dir``), or in radiomx's released tree when ``root`` lacks that version
    (or the tracer): a draft made by ``params new`` lives in your tree and its parent in radiomx's, and ``show`` and
    ``diff`` take each where it lives. ``params.path`` says which."""
    released = default_params_root()
    own = available_versions(root, tracer.name)
    if Path(root).resolve() != released.resolve() and (version not in own if version else not own):
        theirs = available_versions(released, tracer.name)
        if version in theirs if version else theirs:
            return resolve_params(released, tracer, version)
    return resolve_params(root, tracer, version)


def summary_line(params: ParamSet) -> str:
    """``binWidth 0.25 SUVbw, resampled 4x4x4 mm (sitkLinear), Original`` - what a reader checks first."""
    s = params.settings
    binning = f"binWidth {s['binWidth']} {params.units}" if "binWidth" in s else f"binCount {s.get('binCount')}"
    spacing = s.get("resampledPixelSpacing")
    resampling = (f"resampled {'x'.join(f'{v:g}' for v in spacing)} mm ({s.get('interpolator', 'sitkBSpline')})"
                  if spacing else "not resampled")
    image_types = ", ".join(params.pyradiomics.get("imageType") or {"Original": {}})
    return f"{binning}, {resampling}, {image_types}"


def catalog(root: Path) -> list[CatalogEntry]:
    """Every parameter file of a tree, by tracer then version (v2 before v10)."""
    lock = read_lock(root)
    entries = []
    for tracer in sorted(TRACERS, key=lambda t: t.name):
        versions = available_versions(root, tracer.name)
        for version in versions:
            params = _load_unlocked(root, tracer, version)
            rel = f"{tracer.name}/{params.path.name}"
            entries.append(CatalogEntry(params, default=version == versions[-1], released=rel in lock,
                                        intact=lock.get(rel, params.sha256) == params.sha256))
    return entries


def _load_unlocked(root: Path, tracer: Tracer, version: str) -> ParamSet:
    """Load one version without the lock check, so that ``list`` can show an edited released file as such."""
    for suffix in (".yaml", ".yml"):
        path = root / tracer.name / f"{version}{suffix}"
        if path.is_file():
            return load_param_file(path, tracer.name, version)
    raise ConfigError(f"{root / tracer.name}: no parameter file {version}.yaml")


def effective(params: ParamSet) -> dict[str, Any]:
    """The settings a run uses: PyRadiomics' defaults filled in, every enabled feature named.

    ``featureClass`` lists feature names rather than PyRadiomics' "None means all": the list a paper needs, and
    deprecated features (which PyRadiomics leaves out of "all") are left out here too.
    """
    from radiomics import getFeatureClasses
    extractor = pyradiomics_extractor(dict(params.pyradiomics))
    extractor.settings.update(RADIOMX_OVERRIDES)
    classes = getFeatureClasses()
    features = {}
    for name, enabled in sorted(extractor.enabledFeatures.items()):
        known = classes[name].getFeatureNames()  # name -> deprecated
        features[name] = sorted(enabled) if enabled else sorted(f for f, old in known.items() if not old)
    return {
        "tracer": params.tracer, "version": params.version, "sha256": params.sha256, "units": params.units,
        "radiomx": radiomx_settings(params),
        "setting": dict(sorted(extractor.settings.items())),
        "imageType": {k: dict(v) for k, v in sorted(extractor.enabledImagetypes.items())},
        "featureClass": features,
    }


def radiomx_settings(params: ParamSet) -> dict[str, Any]:
    """radiomx's own settings of the file (the ``radiomx:`` block beyond ``units``), defaults filled in: they change
    index values (``suv_peak``, ``voi``), the read-outs (``sul``, ``scores``, ``response``) and the rows a run
    writes, so ``show`` and ``diff`` name them too."""
    indices = params.indices
    return {"suv_peak": indices.suv_peak,
            "voi": {"method": indices.voi.method, "fraction": indices.voi.fraction, "threshold": indices.voi.threshold},
            "reference_suv_mean": {region: list(bounds) for region, bounds in indices.reference_suv_mean},
            "qc_window": list(params.qc_window) if params.qc_window else None,
            "reorient": params.reorient,
            **(params.readouts.as_dict() if params.units == "SUVbw" else {})}


def flatten(settings: dict[str, Any]) -> dict[str, Any]:
    """``{"setting": {"binWidth": 0.25}}`` -> ``{"setting.binWidth": 0.25}`` (lists stay values)."""
    flat: dict[str, Any] = {}
    for section in ("units", "radiomx", "setting", "imageType", "featureClass"):
        value = settings.get(section)
        if isinstance(value, dict) and value:
            for key, item in value.items():
                flat[f"{section}.{key}"] = item
        elif value is not None:
            flat[section] = value
    return flat


def diff(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Effective settings that differ: (dotted key, value in a, value in b); a missing key is None."""
    fa, fb = flatten(a), flatten(b)
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def validate_file(path: Path) -> tuple[ParamSet, list[str]]:
    """The checks a run makes, on one file: schema, radiomx rules, and, when the file sits in a params tree
    (``<root>/<tracer>/<version>.yaml``), the tracer's unit and the tree's LOCK.json. Returns notes on what
    could not be checked; raises ``ConfigError`` (exit 2) naming the key."""
    path = Path(path)
    notes = []
    if not re.match(r"^v\d+\.ya?ml$", path.name):
        notes.append(f"{path.name} is not a version name (v<N>.yaml): a run only picks it with --params-version")
    try:
        tracer = get_tracer(path.parent.name)
    except KeyError:
        notes.append(f"folder {path.parent.name!r} is not a canonical tracer name: unit and LOCK.json not checked")
        return load_param_file(path, "", path.stem), notes
    return resolve_params(path.parent.parent, tracer, path.stem), notes


def error_key(message: str) -> str | None:
    """The dotted key a validation message is about (``setting.binWidth``), from radiomx's or pykwalify's text."""
    m = re.search(r"Key '([^']+)' was not defined\. Path: '([^']*)'", message)
    if m:
        return ".".join(p for p in (*m.group(2).strip("/").split("/"), m.group(1)) if p)
    m = re.search(r"Path: '([^']+)'", message)
    if m:
        return ".".join(p for p in m.group(1).strip("/").split("/") if p)
    m = re.search(r"\b((?:setting|imageType|featureClass)\.\w+)", message)
    if m:
        return m.group(1)
    if "declares units" in message or "'radiomx: {units: ...}' block" in message:
        return "radiomx.units"
    m = re.search(r"unknown key\(s\) in the radiomx block: (\w+)", message)
    if m:
        return f"radiomx.{m.group(1)}"
    m = re.search(r"unknown key\(s\) in (radiomx\.[\w.]+): (\w+)", message)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    m = re.search(r"\b(radiomx\.\w+(?:\.\w+)*)", message)
    return m.group(1) if m else None


def new_version(tracer: Tracer, dest_root: Path, source_root: Path) -> tuple[Path, Path]:
    """Copy the latest version of a tracer to the next version number in ``dest_root``, for editing.

    The latest is looked for in ``dest_root`` first (your own drafts), then in ``source_root`` (radiomx's released
    files). The new number is past every version in both trees, so a draft never shadows a released file. Nothing
    existing is ever overwritten, and no LOCK.json is touched: a draft is editable until you release it.
    Returns (new file, file it was copied from).
    """
    own, released = available_versions(dest_root, tracer.name), available_versions(source_root, tracer.name)
    if not own and not released:
        raise ConfigError(f"{source_root}: no parameter files for tracer {tracer.name} to copy")
    source = _load_unlocked(dest_root if own else source_root, tracer, (own or released)[-1]).path
    number = max(int(v[1:]) for v in own + released) + 1
    target = Path(dest_root) / tracer.name / f"v{number}.yaml"
    if target.exists():
        raise ConfigError(f"{target}: already exists; edit it, or remove it first")
    text = source.read_text(encoding="utf-8")
    header = (f"# radiomx parameter file: {tracer.name}, version v{number} (draft copied from {source.stem}; edit, "
              "check with `radiomx params validate`, release by adding its sha256 to LOCK.json)")
    first, _, rest = text.partition("\n")
    text = f"{header}\n{rest}" if first.startswith("# radiomx parameter file:") else f"{header}\n{text}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "x", encoding="utf-8") as fh:  # "x": never replace a file that appeared meanwhile
        fh.write(text)
    return target, source
