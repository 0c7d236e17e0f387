"""Reading OUT's tables as pandas: ``read_table`` (what notebooks call), ``load_table`` (what ``radiomx table``
prints), ``read_failures`` (with the ``acknowledged`` column).

Why here: the readers know where each table lives and how its types map to pandas; the facade (``radiomx.api``)
only re-exports them, so that ``radiomx.read_table`` and ``radiomx table`` read the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from radiomx.errors import ConfigError, ScanError
from radiomx.store.acknowledged import read_acknowledgements
from radiomx.store.outdir import compare_path, existing_pairs
from radiomx.tracers import canonical_tracer, resolve_tracer

if TYPE_CHECKING:
    import pandas as pd

    from radiomx.store.tables import Store


def _store(out: Path) -> Store:
    from radiomx.store.tables import Store

    return Store(out)


def read_table(out: Path | str, tracer: str | None = None, which: str = "features") -> pd.DataFrame:
    """A table of OUT, with the dtypes ``radiomx table`` prints: by default the feature table of one tracer (its
    canonical name or an alias: ``fdg``), or all tracers stacked (columns unioned) when ``tracer`` is None.

    ``which``: ``features``, ``burden``, ``patients``, ``compare``, ``response``, ``failures``, ``scans`` or ``runs``,
    so that a notebook needs no file paths. Every table keeps its integer columns as nullable ``Int64`` (a negative
    scan's ``largest_lesion_id`` is null, an RTSTRUCT lesion's ``segment_number`` too; the others stay integers:
    ``2``, never ``2.0``). ``tracer`` selects that tracer's rows (its column block in ``patients``, its table for
    ``response``); for ``compare`` it names the pair, ``A,B``."""
    return load_table(out, which, tracer, nullable_integers=True)


def _read_features(out: Path | str, tracer: str | None = None, nullable_integers: bool = False) -> pd.DataFrame:
    import pandas as pd

    store = _store(Path(out))
    tracers = [canonical_tracer(tracer)] if tracer else store.tracers()
    if not tracers:
        raise ConfigError(f"{out}: no feature tables found (run radiomx extract first)")
    frames = []
    for t in tracers:
        try:
            frames.append(store.read_features(t, nullable_integers))
        except FileNotFoundError:
            have = ", ".join(store.tracers())
            raise ConfigError(f"{out}: no feature table for tracer {t!r} (have: {have})") from None
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def load_table(out: Path | str, which: str = "features", tracer: str | None = None,
               nullable_integers: bool = False) -> pd.DataFrame:
    """Any table of an output folder by name: features (one tracer or all), failures, scans, runs, burden,
    patients, compare (``tracer`` = ``A,B``; default: the only compare table). ``tracer`` selects one tracer's rows
    (burden, failures, scans) or column block (patients: ``<tracer>__*``, for the patients with a scan of it).

    ``nullable_integers``: the derived and bookkeeping tables' integer columns come as pandas' nullable ``Int64``,
    so that ``largest_lesion_id`` of a negative scan stays null and the others print as ``2``, not ``2.0`` (what
    ``radiomx table`` prints and pipes). The default is ``pd.read_parquet``'s own mapping (float64 wherever a
    column holds a null)."""
    out = Path(out)
    if which == "features":
        return _read_features(out, tracer, nullable_integers)
    store = _store(out)
    if which == "compare":
        path = _compare_path(out, tracer)
    elif which == "response":
        path = _response_path(out, tracer)
    else:
        paths = {"failures": store.failures_path, "scans": store.scans_path, "runs": store.runs_path,
                 "burden": out / "burden.parquet", "patients": out / "patients.parquet"}
        if which not in paths:
            raise ConfigError(f"{which!r} is not a table (features, {', '.join(paths)}, compare or response)")
        path = paths[which]
    if which == "failures" and not path.exists() and store.scans_path.exists():
        frame = _failures_frame(store, nullable_integers)  # a run with no failure writes no file: none, not an error
    elif not path.exists():
        raise ConfigError(f"{path}: no {which} table (run radiomx extract first)")
    else:
        frame = _read_parquet(path, nullable_integers)
    if which == "failures":
        frame = _acknowledged_column(out, frame)
    if tracer and which not in ("compare", "response"):
        from radiomx.store.views import of_tracer

        frame = of_tracer(frame, which, canonical_tracer(tracer))
    return frame


def _acknowledged_column(out: Path, failures: pd.DataFrame) -> pd.DataFrame:
    """The failures table with ``acknowledged``: the reason from ``OUT/acknowledged.tsv`` for a failure the team
    accepted, null otherwise (and for warnings, which never fail a run)."""
    import pandas as pd

    reasons = read_acknowledgements(out).column(failures)
    return failures.assign(acknowledged=pd.Series(reasons, index=failures.index, dtype=object))


def _failures_frame(store: Store, nullable_integers: bool) -> pd.DataFrame:
    """The (empty) failures table of an OUT whose runs had no failure, with the table's columns and types."""
    from radiomx.store.schema import with_nullable_integers
    from radiomx.store.tables import FAILURES_SCHEMA

    empty = FAILURES_SCHEMA.empty_table()
    return with_nullable_integers(empty) if nullable_integers else empty.to_pandas()


def _read_parquet(path: Path, nullable_integers: bool) -> pd.DataFrame:
    """One table file as pandas: ``pd.read_parquet``'s mapping, or with nullable integer columns."""
    import pyarrow.parquet as pq

    from radiomx.store.schema import with_nullable_integers

    table = pq.read_table(path)
    return with_nullable_integers(table) if nullable_integers else table.to_pandas()


def _compare_path(out: Path, tracers: str | None) -> Path:
    pairs = existing_pairs(out)
    if tracers:
        a, _, b = tracers.partition(",")
        try:
            wanted = (resolve_tracer(a.strip()).name, resolve_tracer(b.strip()).name)
        except ScanError as exc:
            raise ConfigError(f"tracer= / --tracer: {exc.detail}") from None
        pairs = [p for p in pairs if p == wanted]
    if len(pairs) != 1:
        have = ", ".join(f"{a},{b}" for a, b in existing_pairs(out)) or "none; run radiomx compare"
        raise ConfigError(f"{out}: name one compare table (tracer=\"A,B\" / --tracer A,B; have: {have})")
    return compare_path(out, *pairs[0])


def _response_path(out: Path, tracer: str | None) -> Path:
    """``OUT/response/<tracer>.parquet`` (``radiomx.derive.response_table``): the named tracer's, or the only one."""
    folder = out / "response"
    have = sorted(p.name[: -len(".parquet")] for p in folder.glob("*.parquet")) if folder.is_dir() else []
    if tracer:
        try:
            name = resolve_tracer(tracer.strip()).name
        except ScanError as exc:
            raise ConfigError(f"tracer= / --tracer: {exc.detail}") from None
        have = [t for t in have if t == name] or have
        if name not in have:
            raise ConfigError(f"{out}: no response table for {name} (have: {', '.join(have) or 'none'}; a response "
                              "table needs scans with sessions)")
    if len(have) != 1:
        listed = ", ".join(have) or "none: a response table needs scans with sessions"
        raise ConfigError(f"{out}: name one response table (tracer=... / --tracer; have: {listed})")
    return folder / f"{have[0]}.parquet"


def read_failures(out: Path | str) -> pd.DataFrame:
    """The failures table with its ``acknowledged`` column (see ``load_table``)."""
    return _acknowledged_column(Path(out), _store(Path(out)).read_failures())




def stale_tracers(out: Path | str) -> list[str]:
    """Tracers whose published file is older than the last commit (``read_table`` then reads the live parts)."""
    return _store(Path(out)).stale_tracers()
