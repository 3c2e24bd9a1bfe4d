"""`mitremap data …`: what data is where, and fetching it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TransferSpeedColumn
from rich.table import Table

from mitremap.cli.common import console, options, resolver


def status(
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Show where each data source was found and which ATT&CK version is in use."""
    import json

    from mitremap.attack import load_attack
    from mitremap.data import SOURCES

    if fmt not in ("table", "json"):
        raise typer.BadParameter("choose table or json", param_hint="--format")
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
            }
            for src, found in zip(SOURCES, res.status(), strict=True)
        ]
        mirror = str(res.mirror) if res.mirror else None
        body = {"mirror": mirror, "cache": str(res.cache_dir), "sources": rows}
        typer.echo(json.dumps(body, indent=2))
        return
    console.print(f"Data mirror: {res.mirror or '-'} ({res.mirror_origin})", highlight=False)
    console.print(f"Cache:       {res.cache_dir}", highlight=False)
    table = Table("source", "where", "size", "licence", "path")
    for src, found in zip(SOURCES, res.status(), strict=True):
        size = f"{found.size / 2**20:.1f} MB" if found.path else "-"
        where = found.where if found.path or not src.path else "[red]missing[/]"
        table.add_row(
            src.name,
            where,
            size,
            src.licence,
            str(found.path or src.path or "in the ATT&CK bundle"),
        )
    console.print(table)
    located = res.find(SOURCES[0].path)
    if located.path is not None:
        kb = load_attack(located.path, data_dir=options.data_dir)
        console.print(
            f"ATT&CK Enterprise {kb.version}: {len(kb.techniques())} active techniques and "
            f"sub-techniques, {len(kb.tactics)} tactics"
        )
    else:
        console.print("ATT&CK: not found locally; 'mitremap data fetch' downloads it.")


def fetch(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Sources to fetch (default: attack). 'all' fetches every downloadable one."
        ),
    ] = None,
    attack_version: Annotated[
        str, typer.Option("--attack-version", help="ATT&CK Enterprise version to fetch.")
    ] = "18.1",
) -> None:
    """Download public sources from their official origins into the cache."""
    from mitremap.data import SOURCES, source

    res = resolver()
    names = sources or ["attack"]
    if "all" in names:
        names = [s.name for s in SOURCES if s.fetch]
    for name in names:
        source(name)  # unknown names fail before anything is downloaded
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        disable=options.quiet,
        transient=True,
    ) as bar:
        for name in names:
            task = bar.add_task(name, total=None)

            def update(done: int, total: int | None, task: TaskID = task) -> None:
                bar.update(task, completed=done, total=total)

            if name == "attack":
                path = res.attack_bundle(attack_version, progress=update)
            else:
                path = res.fetch(name, progress=update)
            console.print(f"{name}: {path}", highlight=False)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Where data comes from: status and download.", no_args_is_help=True)
    group.command("status")(status)
    group.command("fetch")(fetch)
    app.add_typer(group, name="data")
