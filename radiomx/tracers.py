"""Canonical tracer names and the folder-name aliases that resolve to them.

Why a registry: sites name folders ``FDG``, ``18F-FDG``, ``fdg_pet``; the table must carry one name per tracer
so that tables from different sites line up, and a folder we cannot map must fail loudly rather than invent
a new tracer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from radiomx.errors import ScanError


@dataclass(frozen=True)
class Tracer:
    """A tracer (or modality) and the intensity unit its parameter files expect."""

    name: str
    modality: str  # "PET" or "CT"
    radionuclide: str | None
    aliases: tuple[str, ...]

    @property
    def unit(self) -> str:
        """Intensity unit features are computed in: SUVbw for every PET tracer, HU for CT."""
        return "SUVbw" if self.modality == "PET" else "HU"


TRACERS: tuple[Tracer, ...] = (
    Tracer(
        "68Ga-pentixafor",
        "PET",
        "Ga-68",
        ("pentixafor", "ga68pentixafor", "68gapentixafor", "gapentixafor", "cxcr4", "pentix", "pentixafor-pet"),
    ),
    Tracer("18F-FDG", "PET", "F-18", ("fdg", "18ffdg", "f18fdg", "fdgpet", "fluorodeoxyglucose", "pet-fdg")),
    Tracer(
        "68Ga-DOTATATE",
        "PET",
        "Ga-68",
        ("dotatate", "ga68dotatate", "68gadotatate", "gadotatate", "dota", "netspot", "sstr"),
    ),
    Tracer("CT", "CT", None, ("ct", "lowdosect", "ldct", "ctac")),
)


def _fold(name: str) -> str:
    """Case- and punctuation-insensitive form used for alias matching (``18F_FDG`` == ``18f-fdg``)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_ALIAS: dict[str, Tracer] = {}
for _tracer in TRACERS:
    for _alias in (_tracer.name, *_tracer.aliases):
        _BY_ALIAS[_fold(_alias)] = _tracer


def known_names() -> list[str]:
    """Canonical names, for error messages and ``--help``."""
    return [t.name for t in TRACERS]


def find_tracer(name: str) -> Tracer | None:
    """The tracer any of whose names (canonical or alias) is ``name``, or None: for callers that only ask."""
    return _BY_ALIAS.get(_fold(name))


def resolve_tracer(folder_name: str, path: str = "") -> Tracer:
    """Map a folder name (or BIDS ``trc-`` label) to its tracer, or raise a ScanError listing the known names."""
    tracer = find_tracer(folder_name)
    if tracer is None:
        raise ScanError(
            "discover",
            path or folder_name,
            f"unknown tracer folder {folder_name!r}; rename it to one of {', '.join(known_names())} "
            "(aliases such as fdg, pentixafor, dotatate, ct are accepted)",
        )
    return tracer


def get_tracer(name: str) -> Tracer:
    """Look up a canonical name (already resolved); KeyError for anything else."""
    for tracer in TRACERS:
        if tracer.name == name:
            return tracer
    raise KeyError(name)
