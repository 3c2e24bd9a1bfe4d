"""`mitremap schema NAME`: the JSON Schema of a JSON output (`mitremap.schema`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mitremap.cli.render import line


def schema(
    name: Annotated[
        str | None,
        typer.Argument(
            help="analyze, iocs, diff, … (without a name: the list of names).", metavar="NAME"
        ),
    ] = None,
) -> None:
    """Print the JSON Schema an output validates against (every JSON output says its
    `schema_version`)."""
    from mitremap.schema import SCHEMAS, json_schema

    if name is None:
        for known in SCHEMAS:
            line(known)
        return
    typer.echo(json.dumps(json_schema(name), indent=2, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("schema")(schema)
