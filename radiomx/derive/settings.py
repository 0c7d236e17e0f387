"""The derive settings a cohort declares in ``COHORT/radiomx.toml``::

    [derive]
    bsa_formula = "dubois"      # or "mosteller": the BSA of SDmax; recorded in every burden row

    [compare]
    same_frame = true           # both tracers' scans of every patient share one frame of reference
    # same_frame = ["P001", "P007"]   # ... or only these patients' scans (one PET/CT session, or registered)

Why declared, not guessed: two scans on different days share a frame of reference only when registered; pairing
lesions across unregistered scans by overlap would report nonsense as concordance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from radiomx.discover.cohort import CONFIG_NAME, read_cohort_config
from radiomx.errors import ConfigError

#: Body-surface-area formulas for SDmax (``bsa.py``); Du Bois is the default, as in SUVbsa.
BSA_FORMULAS = ("dubois", "mosteller")
DEFAULT_BSA_FORMULA = "dubois"


@dataclass(frozen=True)
class DeriveSettings:
    bsa_formula: str = DEFAULT_BSA_FORMULA
    #: True: every patient; a tuple: those patient ids; False: not declared.
    same_frame: bool | tuple[str, ...] = False
    #: The cohort is a DICOM export, whose sessions (``ses-1``, ``ses-2``, ...) are numbered in study date order per
    #: tracer: the response table may order them by that number (``radiomx.derive.response_table``).
    export_sessions: bool = False

    def __post_init__(self) -> None:
        if self.bsa_formula not in BSA_FORMULAS:
            raise ConfigError(f"[derive] bsa_formula must be one of {', '.join(BSA_FORMULAS)} "
                              f"(got {self.bsa_formula!r})")

    def shares_frame(self, patient_id: str) -> bool:
        if isinstance(self.same_frame, bool):
            return self.same_frame
        return patient_id in self.same_frame

    def as_record(self) -> dict:
        """The settings as the run log records them (``radiomx.store.runlog``)."""
        same = self.same_frame if isinstance(self.same_frame, bool) else list(self.same_frame)
        return {"bsa_formula": self.bsa_formula, "same_frame": same, "export_sessions": self.export_sessions}

    @classmethod
    def from_record(cls, record: dict) -> DeriveSettings:
        """Settings as a run recorded them; the defaults for a run log older than the record."""
        same = record.get("same_frame", False)
        return cls(record.get("bsa_formula", DEFAULT_BSA_FORMULA), same if isinstance(same, bool) else tuple(same),
                   bool(record.get("export_sessions", False)))


def settings_for(cohort: Path | None) -> DeriveSettings:
    """Settings from the cohort's radiomx.toml (defaults without a cohort or without the sections)."""
    if cohort is None:
        return DeriveSettings()
    config = read_cohort_config(Path(cohort))
    where = Path(cohort) / CONFIG_NAME
    derive, compare = config.get("derive", {}), config.get("compare", {})
    for name, section, known in (("derive", derive, {"bsa_formula"}), ("compare", compare, {"same_frame"})):
        unknown = set(section) - known
        if unknown:
            raise ConfigError(f"{where}: unknown [{name}] key(s): {', '.join(sorted(unknown))}")
    same = compare.get("same_frame", False)
    if isinstance(same, list) and all(isinstance(p, str) for p in same):
        same = tuple(same)
    elif not isinstance(same, bool):
        raise ConfigError(f"{where}: [compare] same_frame must be true, false or a list of patient ids "
                          f"(got {same!r})")
    try:
        return DeriveSettings(derive.get("bsa_formula", DEFAULT_BSA_FORMULA), same)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
