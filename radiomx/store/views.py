"""Views of a stored table for printing: some patients, some columns (globs), or the long (tidy) form.

Why a pure function over a frame: ``radiomx table`` and a notebook get the same rows in the same order, and the
order is the key order, so that two prints of an unchanged OUT are byte-identical (diffable, cacheable).
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

import pandas as pd

from radiomx.columns import TABLES
from radiomx.errors import ConfigError

#: The key columns of each table (declared in radiomx.columns): always kept by ``columns``, the sort order, the id
#: columns of the long form. The patient table and compare are per (patient, session), one row per patient when the
#: cohort has no sessions (session "").
KEYS = {name: list(table.key) for name, table in TABLES.items()}


def select(frame: pd.DataFrame, which: str = "features", patients: Sequence[str] = (),
           columns: Sequence[str] = (), long: bool = False) -> pd.DataFrame:
    """Rows of ``patients`` (all when empty), the key columns plus those matching the ``columns`` globs (all when
    empty), sorted by key; ``long``: one row per key and numeric column, as (keys..., feature, value)."""
    keys = [k for k in KEYS[which] if k in frame.columns]
    if patients and "patient_id" in frame.columns:
        frame = frame[frame["patient_id"].isin(list(patients))]
    if columns:
        frame = frame[keys + _matching(frame, keys, columns)]
    order = [c for c in TABLES[which].order if c in frame.columns] or keys  # response: in session order, not by name
    frame = frame.sort_values(order, kind="stable", na_position="last" if which == "response" else "first")
    frame = frame.reset_index(drop=True)
    return _long(frame, keys) if long else frame


#: The patient table's column blocks: ``<tracer>__<field>`` (``radiomx.derive.patients``).
BLOCK_SEPARATOR = "__"


def of_tracer(frame: pd.DataFrame, which: str, tracer: str) -> pd.DataFrame:
    """One tracer's part of a table: its rows (burden, failures, scans: the ``tracer`` column), or in the patient
    table its column block (``<tracer>__*``) for the patients with a scan of it. A tracer the table does not hold
    is an error naming those it has (never a silently empty table)."""
    if which == "patients":
        blocks = sorted({c.split(BLOCK_SEPARATOR, 1)[0] for c in frame.columns if BLOCK_SEPARATOR in c
                         and "_vs_" not in c.split(BLOCK_SEPARATOR, 1)[0]})
        if tracer not in blocks:
            raise ConfigError(f"--tracer {tracer}: not in the patient table (has: {', '.join(blocks) or 'none'})")
        prefix = f"{tracer}{BLOCK_SEPARATOR}"
        mine = [c for c in frame.columns if c.startswith(prefix)]
        keys = [k for k in KEYS[which] if k in frame.columns]
        status = f"{prefix}status"
        rows = frame[status].notna() if status in frame.columns else frame[mine].notna().any(axis=1)
        return frame.loc[rows, keys + mine].reset_index(drop=True)
    if "tracer" not in frame.columns:
        raise ConfigError(f"--tracer does not apply to the {which} table (it has no tracer column)")
    have = sorted(frame["tracer"].dropna().unique())
    if tracer not in have and len(frame):
        raise ConfigError(f"--tracer {tracer}: no rows in the {which} table (has: {', '.join(have)})")
    return frame[frame["tracer"] == tracer].reset_index(drop=True)


def _matching(frame: pd.DataFrame, keys: list[str], patterns: Sequence[str]) -> list[str]:
    chosen: list[str] = []
    for pattern in patterns:
        hits = [c for c in frame.columns if fnmatchcase(c, pattern) and c not in keys]
        if not hits and not any(fnmatchcase(k, pattern) for k in keys):
            raise ConfigError(f"--columns {pattern!r} matches no column of this table (e.g. "
                              f"{', '.join(c for c in frame.columns[len(keys):len(keys) + 3])})")
        chosen += [c for c in hits if c not in chosen]
    return [c for c in frame.columns if c in chosen]  # the table's own column order, whatever the glob order


def _long(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """keys..., feature, value (float64): the form tidyverse's ``pivot_longer`` gives. Text and timestamp columns
    (provenance) have no numeric value and are left out; select them in the wide form."""
    numeric = [c for c in frame.columns if c not in keys and pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    long = frame.melt(id_vars=keys, value_vars=numeric, var_name="feature", value_name="value")
    long["value"] = long["value"].astype("float64")
    order = {name: i for i, name in enumerate(numeric)}
    long = long.assign(_order=long["feature"].map(order))
    return long.sort_values([*keys, "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
