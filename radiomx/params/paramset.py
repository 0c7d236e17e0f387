"""Versioned PyRadiomics parameter files: ``<root>/<tracer>/v<N>.yaml``.

Why versioned files and not flags: a feature value is only meaningful together with the exact settings that made
it. Each row records the version and the sha256 of the file, released files are frozen by ``LOCK.json``, and a
new setting is a new version, never an edit.

Each file is a PyRadiomics parameter file (validated with PyRadiomics' own pykwalify schema) plus one radiomx
block, removed before validation::

    radiomx:
      units: SUVbw     # the intensity unit the bin width is expressed in (SUVbw for PET, HU for CT)
      # PET only, from v2 files on (docs/lesions-and-indices.md); absent keys take the defaults in brackets:
      suv_peak: ibsi-local            # [ibsi-local] or ibsi-global: which IBSI peak fills suv_peak
      voi: {method: none}             # [none], relative (fraction: 0.41), absolute (threshold: 2.5), percist
      reference_suv_mean:             # [none] plausible SUVmean per reference region; outside = a warning row
        liver: [1.3, 3.0]
      qc:              # optional: the QC pictures' fixed display window, in the file's unit (radiomx.qc.windows)
        window: [0, 10]
      reorient: LPS    # [absent: as stored] reorient image and mask to this orientation before PyRadiomics
                       # (any PET or CT file; radiomx.features.orientation). From the v3 files on.
      sul: {lbm_formula: janmahasatian}   # PET, from the v3 files on: the read-outs (radiomx.params.readouts:
      scores: {deauville: ..., qpet: {}}  # SUL, Deauville/qPET/Krenning, PERCIST/Lugano/Casasnovas;
      response: {percist: {}, ...}        # docs/readouts.md)
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from radiomx.errors import ConfigError, one_line
from radiomx.params.readouts import ReadoutSettings, readout_settings
from radiomx.quiet import records_dropped
from radiomx.records import REFERENCE_REGIONS
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

SUV_PEAK_DEFINITIONS = ("ibsi-local", "ibsi-global")
VOI_METHODS = ("none", "relative", "absolute", "percist")
#: Reference regions a parameter file may give a plausible range for (radiomx.features.references.REGIONS).
RANGE_REGIONS = REFERENCE_REGIONS
_RADIOMX_KEYS = {"units", "suv_peak", "voi", "reference_suv_mean", "qc", "reorient", "sul", "scores", "response"}
#: radiomx keys that apply to any unit (PET and CT); the others are PET index settings (``index_settings``).
_ANY_UNIT_KEYS = {"units", "reorient"}
#: Opposite patient directions: an orientation code takes one letter of each pair (``LPS``, ``RAS``, ``ASL``).
_AXIS_PAIRS = ("LR", "PA", "SI")


@dataclass(frozen=True)
class VoiSetting:
    """How lesion masks are thresholded before any index or feature (``radiomx: voi:``).

    ``fraction`` is the share of each lesion's SUVmax (``relative``), ``threshold`` a fixed SUV (``absolute``);
    ``percist`` takes 1.5 x liver SUVmean + 2 x liver SUVsd from the scan's liver region (Wahl et al. 2009).
    """

    method: str = "none"
    fraction: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class IndexSettings:
    """radiomx's own PET index settings of one parameter file (the ``radiomx:`` block beyond ``units``)."""

    suv_peak: str = "ibsi-local"
    voi: VoiSetting = VoiSetting()
    #: region -> (low, high) plausible SUVmean; regions not listed are not checked.
    reference_suv_mean: tuple[tuple[str, tuple[float, float]], ...] = ()


@dataclass(frozen=True)
class ParamSet:
    """One validated parameter file: what PyRadiomics gets, plus what each row records about it."""

    tracer: str
    version: str
    path: Path
    sha256: str
    units: str
    pyradiomics: dict[str, Any] = field(hash=False, compare=False)
    indices: IndexSettings = field(default=IndexSettings(), hash=False, compare=False)
    #: ``radiomx: qc: window: [low, high]``: the QC pictures' display window; None = radiomx's default per tracer.
    qc_window: tuple[float, float] | None = None
    #: ``radiomx: reorient: LPS``: the orientation images and masks are reoriented to before PyRadiomics; None =
    #: as stored (stock PyRadiomics' behaviour, the v1/v2 files).
    reorient: str | None = None
    #: ``radiomx: sul / scores / response``: SUL, scores per scan and response between sessions (issue 25).
    readouts: ReadoutSettings = field(default=ReadoutSettings(), hash=False, compare=False)

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.pyradiomics.get("setting") or {})


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


@functools.cache
def _pyradiomics_schema() -> tuple[dict[str, Any], str]:
    """PyRadiomics' parameter schema (parsed once per process: pykwalify re-reads a schema file with its pure-Python
    YAML parser on every validation, ~25 ms) and the file of its extension functions."""
    from radiomics import getParameterValidationFiles

    schema_file, schema_funcs = getParameterValidationFiles()
    with open(schema_file, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)), schema_funcs


def validate_pyradiomics(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Validate with PyRadiomics' own schema (the contract), raising ConfigError naming the file and key.

    pykwalify also logs each violation at ERROR; its logger is the caller's to configure (the CLI holds it at
    CRITICAL, see radiomx.cli.logs), never set from here."""
    import pykwalify.core

    schema, schema_funcs = _pyradiomics_schema()
    try:
        with records_dropped(logging.getLogger("pykwalify.core")):  # it logs what it raises; we report it once
            core = pykwalify.core.Core(source_data=data, schema_data=copy.deepcopy(schema), extensions=[schema_funcs])
            return core.validate(raise_exception=True)
    except Exception as exc:  # pykwalify raises SchemaError, ValueError or TypeError from extension functions
        raise ConfigError(f"{path}: invalid PyRadiomics parameter file: {_schema_error_text(exc)}") from exc


def load_param_file(path: Path, tracer: str = "", version: str = "", validate: bool = True) -> ParamSet:
    """Read, split off the radiomx block, validate, and check the radiomx rules (units, bin width bounds).

    ``validate=False`` skips only PyRadiomics' own schema (which imports PyRadiomics, ~0.5 s): for ``radiomx
    status``, which needs the file's version and hash, not its settings; ``extract`` always validates."""
    try:
        raw_bytes = path.read_bytes()
        data = yaml.safe_load(raw_bytes.decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read parameter file ({exc.strerror})") from exc
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: parameter file is not valid YAML ({one_line(exc)})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: parameter file must be a YAML mapping with setting/imageType/featureClass")
    data = dict(data)
    block = data.pop("radiomx", None)
    if not isinstance(block, dict) or block.get("units") not in KNOWN_UNITS:
        raise ConfigError(
            f"{path}: missing or bad 'radiomx: {{units: ...}}' block; declare the intensity unit the bin width is "
            f"in, one of {', '.join(KNOWN_UNITS)}"
        )
    unknown = set(block) - _RADIOMX_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) in the radiomx block: {', '.join(sorted(unknown))}")
    indices = index_settings(path, block)
    validated = validate_pyradiomics(path, data) if validate else data
    qc_window = _qc_window(path, block.get("qc"))
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
        indices=indices,
        qc_window=qc_window,
        reorient=_orientation(path, block.get("reorient")),
        readouts=readout_settings(path, block),
    )


def _number(path: Path, where: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= float(value) <= high:
        raise ConfigError(f"{path}: radiomx.{where} is {value!r}; expected a number in [{low:g}, {high:g}]")
    return float(value)


def _voi(path: Path, raw: Any) -> VoiSetting:
    if not isinstance(raw, dict) or raw.get("method") not in VOI_METHODS:
        raise ConfigError(f"{path}: radiomx.voi must be a mapping with method one of {', '.join(VOI_METHODS)} "
                          f"(got {raw!r})")
    method = raw["method"]
    allowed = {"none": set(), "percist": set(), "relative": {"fraction"}, "absolute": {"threshold"}}[method]
    extra = set(raw) - {"method"} - allowed
    missing = allowed - set(raw)
    if extra or missing:
        what = f"unknown key(s) {', '.join(sorted(extra))}" if extra else f"missing {', '.join(sorted(missing))}"
        raise ConfigError(f"{path}: radiomx.voi method {method}: {what} (relative takes fraction, absolute takes "
                          "threshold, none and percist take nothing)")
    if method == "relative":
        return VoiSetting(method, fraction=_number(path, "voi.fraction", raw["fraction"], 1e-6, 1.0))
    if method == "absolute":
        return VoiSetting(method, threshold=_number(path, "voi.threshold", raw["threshold"], 0.0, 1e4))
    return VoiSetting(method)


def _ranges(path: Path, raw: Any) -> tuple[tuple[str, tuple[float, float]], ...]:
    if not isinstance(raw, dict) or set(raw) - set(RANGE_REGIONS):
        raise ConfigError(f"{path}: radiomx.reference_suv_mean must map regions ({', '.join(RANGE_REGIONS)}) to "
                          f"[low, high] (got {raw!r})")
    out = []
    for region, pair in sorted(raw.items()):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ConfigError(f"{path}: radiomx.reference_suv_mean.{region} must be [low, high] (got {pair!r})")
        low, high = (_number(path, f"reference_suv_mean.{region}", v, 0.0, 1e4) for v in pair)
        if low >= high:
            raise ConfigError(f"{path}: radiomx.reference_suv_mean.{region} needs low < high (got {pair!r})")
        out.append((region, (low, high)))
    return tuple(out)


def index_settings(path: Path, block: dict[str, Any]) -> IndexSettings:
    """Validate the PET index keys of the radiomx block; HU (CT) files may not set them (no SUV there)."""
    keys = set(block) - _ANY_UNIT_KEYS
    if keys and block["units"] != "SUVbw":
        raise ConfigError(f"{path}: radiomx.{sorted(keys)[0]} applies to SUVbw (PET) parameter files only")
    peak = block.get("suv_peak", "ibsi-local")
    if peak not in SUV_PEAK_DEFINITIONS:
        raise ConfigError(f"{path}: radiomx.suv_peak is {peak!r}; use one of {', '.join(SUV_PEAK_DEFINITIONS)}")
    voi = _voi(path, block["voi"]) if "voi" in block else VoiSetting()
    ranges = _ranges(path, block["reference_suv_mean"]) if "reference_suv_mean" in block else ()
    return IndexSettings(peak, voi, ranges)



def _orientation(path: Path, code: Any) -> str | None:
    """``radiomx: reorient: LPS`` -> "LPS"; absent -> None. A code names, per index axis, the patient direction it
    points to: three letters, one of each pair L/R, P/A, S/I (ITK's DICOMOrient convention)."""
    if code is None:
        return None
    letters = str(code).upper() if isinstance(code, str) else ""
    if len(letters) != 3 or sorted(next((i for i, p in enumerate(_AXIS_PAIRS) if c in p), -1)
                                   for c in letters) != [0, 1, 2]:
        raise ConfigError(f"{path}: radiomx.reorient is {code!r}; expected an orientation code of three letters, one "
                          "of each pair L/R, P/A, S/I (e.g. LPS, DICOM's patient axes)")
    return letters


def _qc_window(path: Path, block: Any) -> tuple[float, float] | None:
    """``radiomx: qc: {window: [low, high]}`` -> (low, high); absent -> None. A display setting only: it changes no
    feature value, but it lives in the versioned file so that every picture of a study uses the same window."""
    if block is None:
        return None
    if not isinstance(block, dict) or set(block) - {"window"}:
        raise ConfigError(f"{path}: radiomx.qc must be a mapping with only 'window: [low, high]'")
    window = block.get("window")
    if (not isinstance(window, list) or len(window) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in window)
            or not float(window[0]) < float(window[1])):
        raise ConfigError(f"{path}: radiomx.qc.window must be two numbers [low, high] with low < high "
                          f"(got {window!r})")
    return float(window[0]), float(window[1])


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


def resolve_params(root: Path, tracer: Tracer, version: str | None = None, validate: bool = True) -> ParamSet:
    """Tracer + optional pinned version -> validated ParamSet (latest version when not pinned)."""
    if version is None:
        versions = available_versions(root, tracer.name)
        if not versions:
            raise ConfigError(f"{root}: no parameter files for tracer {tracer.name} (expected {tracer.name}/v1.yaml)")
        version = versions[-1]
    path = _version_file(root, tracer.name, version)
    params = load_param_file(path, tracer.name, version, validate)
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


def is_released(params: ParamSet) -> bool:
    """True when the file is frozen by its tree's LOCK.json (with this sha256); a draft is not: it may still be
    edited, so values computed with it cannot be cited by version alone."""
    return read_lock(params.path.parent.parent).get(f"{params.path.parent.name}/{params.path.name}") == params.sha256


def read_lock(root: Path) -> dict[str, str]:
    """``LOCK.json``: ``{"<tracer>/<version>.yaml": sha256}`` for every released file."""
    lock = root / "LOCK.json"
    return json.loads(lock.read_text()) if lock.is_file() else {}
