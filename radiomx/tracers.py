"""Canonical tracer names, the folder-name aliases that resolve to them, and the DICOM codes and words that name them.

Why a registry: sites name folders ``FDG``, ``18F-FDG``, ``fdg_pet``; the table must carry one name per tracer
so that tables from different sites line up, and a folder we cannot map must fail loudly rather than invent
a new tracer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from radiomx.errors import ScanError
from radiomx.vocabulary import Stage


@dataclass(frozen=True)
class Tracer:
    """A tracer (or modality) and the intensity unit its parameter files expect."""

    name: str
    modality: str  # "PET" or "CT"
    radionuclide: str | None
    aliases: tuple[str, ...]
    #: Radiopharmaceutical Code Sequence (0054,0304) codes, as (Coding Scheme Designator, Code Value): DICOM PS3.16
    #: CID 4021 "PET Radiopharmaceutical" (SNOMED CT "SCT", and the retired SNOMED RT "SRT" codes older scanners
    #: still write; PS3.16 Annex O maps one to the other).
    codes: tuple[tuple[str, str], ...] = ()
    #: Words that name it in the free-text Radiopharmaceutical (0018,0031) or a code's Code Meaning, folded like
    #: aliases (case and punctuation ignored) and looked for inside the folded text: "FDG -- fluorodeoxyglucose"
    #: (GE), "Fluorodeoxyglucose F^18^" (CID 4021's meaning), "68Ga-DOTA-TATE", "[68Ga]Ga-Pentixafor".
    texts: tuple[str, ...] = ()

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
        # No code in CID 4021 (2025): scanners write the free text only.
        texts=("pentixafor",),
    ),
    Tracer("18F-FDG", "PET", "F-18", ("fdg", "18ffdg", "f18fdg", "fdgpet", "fluorodeoxyglucose", "pet-fdg"),
           codes=(("SCT", "35321007"), ("SRT", "C-B1031"), ("SNM3", "C-B1031")),
           texts=("fdg", "fluorodeoxyglucose", "fludeoxyglucose", "fluorodesoxyglucose")),
    Tracer(
        "68Ga-DOTATATE",
        "PET",
        "Ga-68",
        ("dotatate", "ga68dotatate", "68gadotatate", "gadotatate", "dota", "netspot", "sstr"),
        # CID 4021 "Dotatate Ga^68^" (SCT 724025002, added after SNOMED RT was retired: no SRT code). Not "dota":
        # DOTATOC and DOTANOC are other peptides.
        codes=(("SCT", "724025002"),),
        texts=("dotatate", "netspot"),
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
            Stage.DISCOVER,
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


def tracer_of_radiopharmaceutical(codes: list[tuple[str, str, str]], text: str) -> Tracer | None:
    """The PET tracer a DICOM header names in its Radiopharmaceutical Information Sequence (0054,0016): the code
    sequence first (scheme, value, meaning: a known code, else its meaning), then the free text. None when nothing
    names a known tracer, or when the words name two (then nothing is guessed)."""
    for scheme, value, _meaning in codes:
        for tracer in TRACERS:
            if (scheme.strip().upper(), value.strip().upper()) in tracer.codes:
                return tracer
    for words in (*(meaning for _s, _v, meaning in codes), text):
        folded = _fold(words or "")
        named = {t for t in TRACERS for w in t.texts if w in folded} if folded else set()
        if len(named) == 1:
            return named.pop()
    return None


def canonical_tracer(name: str) -> str:
    """A tracer's canonical name from any of its names (``fdg`` -> ``18F-FDG``), as the tables are keyed; a name
    radiomx does not know is returned as given (the caller then reports it missing, with what OUT has)."""
    tracer = find_tracer(name)
    return tracer.name if tracer else name
