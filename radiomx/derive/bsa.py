"""Body surface area (BSA, m^2) for SDmax = Dmax / BSA; the formula is a cohort setting, recorded in every row.

* Du Bois & Du Bois 1916 (Arch Intern Med 17:863): BSA = 0.007184 W^0.425 H^0.725 (W kg, H cm); the same function
  SUVbsa uses (``radiomx.inputs.suv.bsa_dubois_m2``), so both stages agree.
* Mosteller 1987 (N Engl J Med 317:1098): BSA = sqrt(H W / 3600) (H cm, W kg).
"""

from __future__ import annotations

import math

from radiomx.derive.settings import BSA_FORMULAS
from radiomx.inputs.suv import bsa_dubois_m2


def bsa_mosteller_m2(weight_kg: float, height_m: float) -> float:
    """Mosteller 1987: sqrt(height [cm] x weight [kg] / 3600), in m^2."""
    return math.sqrt(height_m * 100.0 * weight_kg / 3600.0)


def body_surface_area(formula: str, weight_kg: float | None, height_m: float | None) -> float | None:
    """BSA in m^2 by ``formula``; None when the weight or the height is unknown or not positive."""
    if formula not in BSA_FORMULAS:
        raise ValueError(f"unknown BSA formula {formula!r}; use one of {', '.join(BSA_FORMULAS)}")
    if not _positive(weight_kg) or not _positive(height_m):
        return None
    compute = bsa_dubois_m2 if formula == "dubois" else bsa_mosteller_m2
    return compute(float(weight_kg), float(height_m))  # type: ignore[arg-type]


def _positive(value: float | None) -> bool:
    return value is not None and math.isfinite(float(value)) and float(value) > 0
