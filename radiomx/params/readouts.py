"""The read-out settings of a parameter file: SUL, scores per scan, and response between sessions (issue 25).

Why in the parameter file: a Deauville score, a Krenning score or a PERCIST category is only reproducible with the
cut-offs that made it, and those are a study's choice per tracer (FDG is scored by Deauville, DOTATATE by Krenning).
A released file never changes, so a different cut-off is a new version, and every row can cite the one it used.
Definitions and sources: docs/readouts.md. The arithmetic lives in ``radiomx.inputs.lbm`` (SUL, SUVbsa),
``radiomx.derive.scores`` and ``radiomx.derive.response``; this module only validates and holds the settings::

    radiomx:
      sul:                          # absent: SUL by janmahasatian, no SUVbsa
        lbm_formula: janmahasatian  # or james
        suv_bsa: false              # also SUVbsa (Du Bois)
      scores:                       # absent: no scores
        deauville:
          lesion_statistic: suv_max        # or suv_peak: the hottest lesion's value compared
          reference_statistic: suv_max     # or suv_mean: the blood pool's and liver's value compared
          markedly_higher_than_liver: 2.0  # score 5 above this multiple of the liver (Barrington: 2-3)
        qpet: {}                           # Hasenclever et al. 2014: hottest suv_peak / liver suv_mean
        krenning:
          lesion_statistic: suv_max
          reference_statistic: suv_mean
          equal_to_liver: [0.9, 1.1]       # lesion / liver ratios scored 2 ("equal to liver")
      response:                     # absent: deltas only, no categories
        new_lesions_are_progression: false # a rise in lesion count makes PERCIST and Lugano PMD
        percist: {}                        # PERCIST 1.0 categories
        lugano:
          significant_change_pct: 30       # "reduced" / "increased" uptake for Deauville 4-5
        casasnovas:
          reduction_pct: 66                # classify delta_suv_max_pct (66: after 2 cycles, 70: after 4)

Every key is checked; an unknown one, a wrong type or a number out of range is a ``ConfigError`` naming the file
and the dotted key (exit 2 before any work), as the rest of the radiomx block.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radiomx.errors import ConfigError

#: Lean-body-mass formulas (``radiomx.inputs.lbm.LBM_FORMULAS`` computes them; tests/test_readouts.py checks both
#: name the same ones: params may not import ``inputs``).
LBM_FORMULAS = ("janmahasatian", "james")
DEFAULT_LBM_FORMULA = "janmahasatian"
#: The hottest lesion's statistic a score compares (burden's suv_max_hottest / suv_peak_hottest).
LESION_STATISTICS = ("suv_max", "suv_peak")
#: The reference region's statistic a score compares with.
REFERENCE_STATISTICS = ("suv_mean", "suv_max")
SCORES = ("deauville", "qpet", "krenning")
CRITERIA = ("percist", "lugano", "casasnovas")


@dataclass(frozen=True)
class SulSetting:
    lbm_formula: str = DEFAULT_LBM_FORMULA
    suv_bsa: bool = False


@dataclass(frozen=True)
class DeauvilleSetting:
    """Deauville five-point scale from the hottest lesion against the mediastinal blood pool and the liver."""

    lesion_statistic: str
    reference_statistic: str
    #: Score 5 when the lesion exceeds this multiple of the liver ("markedly higher than liver": 2-3x).
    markedly_higher_than_liver: float

    def definition(self) -> str:
        return (f"hottest lesion {self.lesion_statistic} vs bloodpool and liver {self.reference_statistic}; "
                f"5 above {self.markedly_higher_than_liver:g} x liver")


@dataclass(frozen=True)
class KrenningSetting:
    """Krenning scale (0-4) from the hottest lesion against the liver and the spleen."""

    lesion_statistic: str
    reference_statistic: str
    #: Lesion / liver ratios in [low, high] score 2 ("equal to liver").
    equal_to_liver: tuple[float, float]

    def definition(self) -> str:
        low, high = self.equal_to_liver
        return (f"hottest lesion {self.lesion_statistic} vs liver and spleen {self.reference_statistic}; "
                f"2 for lesion/liver in [{low:g}, {high:g}]")


@dataclass(frozen=True)
class LuganoSetting:
    #: Follow-up uptake at least this many percent below baseline is "reduced" (PMR), above is "increased" (PMD).
    significant_change_pct: float


@dataclass(frozen=True)
class CasasnovasSetting:
    #: A fall of delta_suv_max_pct beyond this many percent is "favourable" (Casasnovas et al. 2011: 66 %, 70 %).
    reduction_pct: float


@dataclass(frozen=True)
class ReadoutSettings:
    """One parameter file's read-outs; the defaults are a file without ``sul``, ``scores`` or ``response``."""

    sul: SulSetting = SulSetting()
    deauville: DeauvilleSetting | None = None
    qpet: bool = False
    krenning: KrenningSetting | None = None
    new_lesions_are_progression: bool = False
    percist: bool = False
    lugano: LuganoSetting | None = None
    casasnovas: CasasnovasSetting | None = None

    def as_dict(self) -> dict[str, Any]:
        """The settings as ``params show`` and ``diff`` name them (every key, defaults filled in)."""
        def fields(setting: Any) -> dict[str, Any] | None:
            if setting is None:
                return None
            return {k: list(v) if isinstance(v, tuple) else v for k, v in setting.__dict__.items()}

        return {"sul": fields(self.sul),
                "scores": {"deauville": fields(self.deauville), "qpet": self.qpet, "krenning": fields(self.krenning)},
                "response": {"new_lesions_are_progression": self.new_lesions_are_progression,
                             "percist": self.percist, "lugano": fields(self.lugano),
                             "casasnovas": fields(self.casasnovas)}}


def _mapping(path: Path, where: str, raw: Any, known: set[str], required: set[str] = frozenset()) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: radiomx.{where} must be a mapping (got {raw!r})")
    unknown, missing = set(raw) - known, required - set(raw)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) in radiomx.{where}: {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(known))})")
    if missing:
        raise ConfigError(f"{path}: radiomx.{where} needs {', '.join(sorted(missing))} (no default: it is the "
                          "study's choice, and every row records it)")
    return raw


def _choice(path: Path, where: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{path}: radiomx.{where} is {value!r}; use one of {', '.join(allowed)}")
    return value


def _flag(path: Path, where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: radiomx.{where} must be true or false (got {value!r})")
    return value


def _number(path: Path, where: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= float(value) <= high:
        raise ConfigError(f"{path}: radiomx.{where} is {value!r}; expected a number in [{low:g}, {high:g}]")
    return float(value)


def _sul(path: Path, raw: Any) -> SulSetting:
    block = _mapping(path, "sul", raw, {"lbm_formula", "suv_bsa"})
    return SulSetting(_choice(path, "sul.lbm_formula", block.get("lbm_formula", DEFAULT_LBM_FORMULA), LBM_FORMULAS),
                      _flag(path, "sul.suv_bsa", block.get("suv_bsa", False)))


def _statistics(path: Path, where: str, block: dict[str, Any], default_reference: str) -> tuple[str, str]:
    return (_choice(path, f"{where}.lesion_statistic", block.get("lesion_statistic", "suv_max"), LESION_STATISTICS),
            _choice(path, f"{where}.reference_statistic", block.get("reference_statistic", default_reference),
                    REFERENCE_STATISTICS))


def _deauville(path: Path, raw: Any) -> DeauvilleSetting:
    where = "scores.deauville"
    block = _mapping(path, where, raw, {"lesion_statistic", "reference_statistic", "markedly_higher_than_liver"},
                     {"markedly_higher_than_liver"})
    lesion, reference = _statistics(path, where, block, "suv_max")
    cutoff = _number(path, f"{where}.markedly_higher_than_liver", block["markedly_higher_than_liver"], 1.0, 10.0)
    if cutoff == 1.0:
        raise ConfigError(f"{path}: radiomx.{where}.markedly_higher_than_liver must be above 1 (score 4 lies between "
                          "the liver and this multiple of it; Barrington et al. 2014 use 2-3)")
    return DeauvilleSetting(lesion, reference, cutoff)


def _krenning(path: Path, raw: Any) -> KrenningSetting:
    where = "scores.krenning"
    block = _mapping(path, where, raw, {"lesion_statistic", "reference_statistic", "equal_to_liver"},
                     {"equal_to_liver"})
    lesion, reference = _statistics(path, where, block, "suv_mean")
    band = block["equal_to_liver"]
    if not isinstance(band, list) or len(band) != 2:
        raise ConfigError(f"{path}: radiomx.{where}.equal_to_liver must be [low, high] lesion/liver ratios "
                          f"(got {band!r})")
    low, high = (_number(path, f"{where}.equal_to_liver", v, 0.01, 10.0) for v in band)
    if not low <= 1.0 <= high:
        raise ConfigError(f"{path}: radiomx.{where}.equal_to_liver must contain 1 (a lesion equal to the liver); "
                          f"got {band!r}")
    return KrenningSetting(lesion, reference, (low, high))


def readout_settings(path: Path, block: dict[str, Any]) -> ReadoutSettings:
    """The ``sul``, ``scores`` and ``response`` keys of a parameter file's radiomx block, validated."""
    sul = _sul(path, block["sul"]) if "sul" in block else SulSetting()
    scores = _mapping(path, "scores", block.get("scores"), set(SCORES))
    response = _mapping(path, "response", block.get("response"), {*CRITERIA, "new_lesions_are_progression"})
    deauville = _deauville(path, scores["deauville"]) if "deauville" in scores else None
    if "qpet" in scores:
        _mapping(path, "scores.qpet", scores["qpet"], set())
    krenning = _krenning(path, scores["krenning"]) if "krenning" in scores else None
    if "percist" in response:
        _mapping(path, "response.percist", response["percist"], set())
    lugano = casasnovas = None
    if "lugano" in response:
        if deauville is None:
            raise ConfigError(f"{path}: radiomx.response.lugano needs radiomx.scores.deauville (Lugano's metabolic "
                              "response is read from the Deauville scores at both time points)")
        raw = _mapping(path, "response.lugano", response["lugano"], {"significant_change_pct"},
                       {"significant_change_pct"})
        lugano = LuganoSetting(_number(path, "response.lugano.significant_change_pct",
                                       raw["significant_change_pct"], 1.0, 100.0))
    if "casasnovas" in response:
        raw = _mapping(path, "response.casasnovas", response["casasnovas"], {"reduction_pct"}, {"reduction_pct"})
        casasnovas = CasasnovasSetting(_number(path, "response.casasnovas.reduction_pct", raw["reduction_pct"],
                                               1.0, 99.0))
    return ReadoutSettings(
        sul=sul, deauville=deauville, qpet="qpet" in scores, krenning=krenning,
        new_lesions_are_progression=_flag(path, "response.new_lesions_are_progression",
                                          response.get("new_lesions_are_progression", False)),
        percist="percist" in response, lugano=lugano, casasnovas=casasnovas)
