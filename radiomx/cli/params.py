"""``radiomx params list|show|diff|validate|new`` and ``radiomx tracers``: the parameter files a methods section
cites, and the tracer names they are keyed by. Thin: every answer comes from ``radiomx.params.catalog``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from radiomx.cli.flags import format_option
from radiomx.cli.logs import emit

if TYPE_CHECKING:
    from radiomx.errors import ExitCode

params_dir_option = click.option(
    "--params-dir", type=click.Path(path_type=Path), default=None,
    help="A params tree (<tracer>/v<N>.yaml). Default: radiomx's released params/.")


def _root(params_dir: Path | None) -> Path:
    from radiomx.params.paramset import default_params_root

    return params_dir if params_dir is not None else default_params_root()


def _say_where(ref: str, params, params_dir: Path | None) -> None:
    """A note when ``--params-dir`` lacked the version and radiomx's released file was taken (a draft's parent)."""
    from radiomx.params.paramset import default_params_root

    if params_dir is not None and params.path.parent.parent.resolve() == default_params_root().resolve():
        emit("params_note", f"note: {ref} is not in {params_dir}: radiomx's released {params.tracer} "
             f"{params.version} is used", file=f"{params.tracer}/{params.path.name}")


def _value(value) -> str:
    return json.dumps(value, sort_keys=True)


def _emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@click.group(short_help="List, show, compare and validate parameter files.", epilog="""\b
Example:
  radiomx params list
  radiomx params show FDG@v1 --format json > methods/fdg-v1.json""")
def params() -> None:
    """List, show, compare and validate the versioned PyRadiomics parameter files."""


@params.command("list", epilog="""\b
Example:
  radiomx params list --format json | jq -r '.[] | select(.default) | .tracer + " " + .version'""")
@params_dir_option
@format_option(("text", "json"))
def list_(params_dir: Path | None, fmt: str) -> None:
    """One line per parameter file: tracer, version, sha256, default, released, unit, summary."""
    from radiomx.params.catalog import catalog

    entries = [e.as_dict() for e in catalog(_root(params_dir))]
    if fmt == "json":
        return _emit_json(entries)
    for e in entries:
        flags = ",".join(f for f, on in (("default", e["default"]), ("released" if e["released"] else "draft", True),
                                         ("EDITED-since-release", not e["intact"])) if on)
        click.echo(f"{e['tracer']:<16} {e['version']:<4} {e['sha256'][:12]}  {flags:<16} {e['unit']:<6} "
                   f"{e['summary']}")


@params.command(epilog="""\b
Example:
  radiomx params show pentixafor          # the latest version
  radiomx params show 18F-FDG@v1 --format json""")
@click.argument("ref", metavar="TRACER[@vN]")
@params_dir_option
@format_option(("text", "json"))
def show(ref: str, params_dir: Path | None, fmt: str) -> None:
    """Print the effective settings of a parameter file, PyRadiomics' defaults filled in."""
    from radiomx.params.catalog import effective, find_params, parse_ref

    found = find_params(_root(params_dir), *parse_ref(ref))
    _say_where(ref, found, params_dir)
    settings = effective(found)
    if fmt == "json":
        return _emit_json(settings)
    click.echo(f"{settings['tracer']} {settings['version']}  sha256 {settings['sha256']}  units {settings['units']}")
    for section in ("radiomx", "setting", "imageType"):
        click.echo(f"{section}:")
        for key, value in settings[section].items():
            click.echo(f"  {key}: {_value(value)}")
    click.echo("featureClass:")
    for name, features in settings["featureClass"].items():
        click.echo(f"  {name} ({len(features)}): {', '.join(features)}")


@params.command(epilog="""\b
Example:
  radiomx params diff FDG@v1 FDG@v2
  radiomx params diff FDG@v1 pentixafor@v1 --format json""")
@click.argument("a", metavar="TRACER@vN")
@click.argument("b", metavar="TRACER@vN")
@params_dir_option
@format_option(("text", "json"))
def diff(a: str, b: str, params_dir: Path | None, fmt: str) -> None:
    """Print the effective settings that differ between two parameter files (exit 0 either way)."""
    from radiomx.params import catalog

    root = _root(params_dir)
    found = [catalog.find_params(root, *catalog.parse_ref(ref)) for ref in (a, b)]
    for ref, params in zip((a, b), found, strict=True):
        _say_where(ref, params, params_dir)
    sides = [catalog.effective(params) for params in found]
    changes = catalog.diff(*sides)
    if fmt == "json":
        return _emit_json([{"key": k, "a": va, "b": vb} for k, va, vb in changes])
    if not changes:
        emit("params_same", f"{a} and {b} have the same effective settings")
    for key, va, vb in changes:
        click.echo(f"{key}\t{_value(va)}\t{_value(vb)}")


@params.command(epilog="""\b
Example:
  radiomx params validate my-params/18F-FDG/v2.yaml && echo ok""")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@format_option(("text", "json"))
def validate(file: Path, fmt: str) -> ExitCode | None:
    """Check FILE as a run would (schema, units, bin width, LOCK.json); exit 2 naming the key on error."""
    from radiomx.errors import ConfigError, ExitCode
    from radiomx.params.catalog import error_key, validate_file

    try:
        params, notes = validate_file(file)
    except ConfigError as exc:
        if fmt == "json":
            _emit_json({"file": str(file), "valid": False, "key": error_key(str(exc)), "error": str(exc)})
            return ExitCode.USAGE  # the JSON says why; no error line on stderr
        key = error_key(str(exc))
        raise ConfigError(f"{exc}" + (f" (key: {key})" if key else "")) from None
    if fmt == "json":
        return _emit_json({"file": str(file), "valid": True, "sha256": params.sha256, "units": params.units,
                           "notes": notes})
    for note in notes:
        emit("params_note", f"note: {note}")
    click.echo(f"{file}: valid ({params.units}, sha256 {params.sha256})")


@params.command(epilog="""\b
Example:
  radiomx params new FDG --params-dir my-params
  $EDITOR my-params/18F-FDG/v2.yaml && radiomx params validate my-params/18F-FDG/v2.yaml""")
@click.argument("tracer")
@click.option("--params-dir", type=click.Path(path_type=Path), required=True,
              help="Your own params tree to write the draft into (radiomx's released files are never edited).")
@format_option(("text", "json"))
def new(tracer: str, params_dir: Path, fmt: str) -> None:
    """Copy TRACER's latest parameter file to the next version number, as a draft to edit."""
    from radiomx.params.catalog import new_version, parse_ref
    from radiomx.params.paramset import default_params_root

    target, source = new_version(parse_ref(tracer)[0], params_dir, default_params_root())
    if fmt == "json":
        return _emit_json({"file": str(target), "copied_from": str(source)})
    click.echo(str(target))
    emit("params_copied", f"copied {source.parent.name}/{source.name}; edit it, then `radiomx params validate "
         f"{target}`", file=str(target))


@click.command(short_help="List tracer names and their folder aliases.", epilog="""\b
Example:
  radiomx tracers
  radiomx tracers --format json | jq -r '.[].name'""")
@format_option(("text", "json"))
def tracers(fmt: str) -> None:
    """List the canonical tracer names, the folder aliases that map to them, and their units."""
    from radiomx.tracers import TRACERS

    rows = [{"name": t.name, "modality": t.modality, "radionuclide": t.radionuclide, "unit": t.unit,
             "aliases": list(t.aliases)} for t in TRACERS]
    if fmt == "json":
        return _emit_json(rows)
    for r in rows:
        click.echo(f"{r['name']:<16} {r['modality']:<4} {r['unit']:<6} {', '.join(r['aliases'])}")
