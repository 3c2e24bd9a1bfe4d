"""`mitremap attack …`: look techniques up in the ATT&CK knowledge base."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from mitremap.cli import render
from mitremap.cli.common import FormatOption, options
from mitremap.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from mitremap.attack import AttackKB


def _kb(version: str | None) -> AttackKB:
    from mitremap.classify.knowledge import attack_for_model

    return attack_for_model(version, data_dir=options.data_dir)


VersionOption = Annotated[
    str | None,
    typer.Option(
        "--attack-version", help="ATT&CK version (default: the bundled one).", metavar="VERSION"
    ),
]


def show(
    technique_id: Annotated[
        str, typer.Argument(help="Technique id, e.g. T1053.005.", metavar="ID")
    ],
    fmt: FormatOption = "table",
    attack_version: VersionOption = None,
) -> None:
    """Show one technique: name, tactics, URL and description."""
    kb = _kb(attack_version)
    technique = kb[technique_id]
    replacement = kb.resolve(technique_id) if technique.revoked else None
    if fmt == "json":
        data = {"schema_version": SCHEMA_VERSION, **technique.to_dict()}
        if replacement is not None:
            data["replaced_by"] = replacement.id
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    title = f"{technique.id} {technique.name}"
    if technique.parent:
        title = f"{technique.id} {kb[technique.parent].name}: {technique.name}"
    lines = [title]
    if replacement is not None:
        lines.append(f"revoked: replaced by {replacement.id} {replacement.name}")
    elif technique.deprecated:
        lines.append("deprecated")
    lines += [
        f"Tactics:   {', '.join(f'{t.name} ({t.id})' for t in technique.tactics) or '-'}",
        f"Platforms: {', '.join(technique.platforms) or '-'}",
        f"URL:       {technique.url}",
        f"ATT&CK:    {kb.version}",
        "",
        technique.description,
    ]
    for text in lines:
        render.line(text)


def search(
    query: Annotated[
        str, typer.Argument(help="Words to look for in names and aliases.", metavar="WORDS")
    ],
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="At most this many results.", metavar="N")
    ] = 10,
    fmt: FormatOption = "table",
    attack_version: VersionOption = None,
) -> None:
    """Search techniques, tactics, groups, software and campaigns by name or alias."""
    results = _kb(attack_version).search(query, limit=limit)
    if fmt == "json":
        rows = [{"id": r.id, "name": r.name, "kind": r.kind, "matched": r.matched} for r in results]
        body = {"schema_version": SCHEMA_VERSION, "query": query, "results": rows}
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    render.table(
        ("id", "name", "kind", "matched"),
        [(r.id, r.name, r.kind, r.matched) for r in results],
        no_wrap=("id",),
        empty=f"No match for {query!r}.",
    )


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Look up ATT&CK techniques, tactics, groups and software.", no_args_is_help=True
    )
    group.command("show")(show)
    group.command("search")(search)
    app.add_typer(group, name="attack")
