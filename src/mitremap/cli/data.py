"""`mitremap data …`: what data is where, and fetching it from the origins."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mitremap.cli import render
from mitremap.cli.common import FormatOption, StageProgress, options, resolver
from mitremap.errors import MitreMapError
from mitremap.schema import SCHEMA_VERSION


def status(fmt: FormatOption = "table") -> None:
    """Show where each data source was found and which ATT&CK version is in use."""
    from mitremap.attack import load_attack
    from mitremap.sources import SOURCES

    res = resolver()
    if fmt == "json":
        rows = [
            {
                "source": src.name,
                "where": found.where,
                "path": str(found.path) if found.path else None,
                "bytes": found.size,
                "licence": src.licence,
                "role": src.role,
                "fetchable": bool(src.fetch),
                "origin": src.fetch or None,
            }
            for src, found in zip(SOURCES, res.status(), strict=True)
        ]
        mirror = str(res.mirror) if res.mirror else None
        body = {
            "schema_version": SCHEMA_VERSION,
            "mirror": mirror,
            "cache": str(res.cache_dir),
            "sources": rows,
        }
        typer.echo(json.dumps(body, indent=2))
        return
    render.line(f"Data mirror: {res.mirror or '-'} ({res.mirror_origin})")
    render.line(f"Cache:       {res.cache_dir}")
    found_rows = [
        (
            src.name,
            found.where if found.path or not src.path else "missing",
            f"{found.size / 2**20:.1f} MB" if found.path else "-",
            src.licence,
            str(found.path or src.path or "in the ATT&CK bundle"),
        )
        for src, found in zip(SOURCES, res.status(), strict=True)
    ]
    render.table(("source", "where", "size", "licence", "path"), found_rows, no_wrap=("source",))
    located = res.find(SOURCES[0].path or "")
    if located.path is not None:
        kb = load_attack(located.path, data_dir=options.data_dir)
        render.line(
            f"ATT&CK Enterprise {kb.version}: {len(kb.techniques())} active techniques and "
            f"sub-techniques, {len(kb.tactics)} tactics"
        )
    else:
        render.line("ATT&CK: not found locally; 'mitremap data fetch' downloads it.")


def fetch(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Sources to fetch (default: attack); 'all' fetches every source with an origin.",
            metavar="SOURCE",
        ),
    ] = None,
    attack_version: Annotated[
        str,
        typer.Option(
            "--attack-version", help="ATT&CK Enterprise version to fetch.", metavar="VERSION"
        ),
    ] = "18.1",
    fmt: FormatOption = "table",
) -> None:
    """Download sources from their origins and convert them into the cache's mirror layout.

    MITREMAP_ORIGIN=URL fetches every origin from a mirror of them instead (URL/github.com/…).
    """
    from mitremap.training.converters import Fetched, fetch_plan, fetch_source

    res = resolver()
    plan = fetch_plan(sources or ["attack"], attack_version)  # unknown names fail first
    fetched: list[Fetched] = []
    failed: dict[str, str] = {}
    try:
        with StageProgress(in_bytes=True) as progress:
            for spec in plan:
                progress.line(f"{spec.name}: fetching {res.origin_url(str(spec.fetch))}")

                def update(done: int, total: int | None, name: str = spec.name) -> None:
                    progress.update(name, done, total)

                try:
                    result = fetch_source(spec, res, progress=update)
                except MitreMapError as exc:
                    failed[spec.name] = str(exc)
                    progress.line(f"{spec.name}: failed (the others go on)")
                    continue
                fetched.append(result)
                progress.line(f"{spec.name}: done")
    finally:
        res.discard_downloads()  # the converted files stay; the raw archives are not needed
    if fmt == "json":
        rows = [{"source": f.source, "path": str(f.path), "records": f.records} for f in fetched]
        body = {
            "schema_version": SCHEMA_VERSION,
            "cache": str(res.cache_dir),
            "fetched": rows,
            "failed": failed,
        }
        typer.echo(json.dumps(body, indent=2))
    else:
        for item in fetched:
            records = "" if item.records is None else f"{item.records} records → "
            render.line(f"{item.source}: {records}{item.path}")
    if len(plan) == 1 and failed:
        raise MitreMapError(next(iter(failed.values())))
    if failed:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in failed.items())
        raise MitreMapError(f"{len(failed)} of {len(plan)} sources could not be fetched: {reasons}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Where data comes from: status and download.", no_args_is_help=True)
    group.command("status")(status)
    group.command("fetch")(fetch)
    app.add_typer(group, name="data")
