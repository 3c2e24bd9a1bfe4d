"""`mitremap diff A B`: two analyses (JSON files) or two reports, technique by technique."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from mitremap.cli.common import (
    ModelOption,
    ThresholdOption,
    err_console,
    options,
    read_analysis,
)
from mitremap.cli.render import print_diff
from mitremap.errors import MitreMapError
from mitremap.files import write_text

if TYPE_CHECKING:
    from mitremap.analysis import MitreMap

DiffFormat = Literal["table", "json", "navigator"]


def diff(
    a: Annotated[
        str,
        typer.Argument(help="Analysis JSON (analyze -f json) or a report: file, URL.", metavar="A"),
    ],
    b: Annotated[str, typer.Argument(help="The other one, compared with A.", metavar="B")],
    fmt: Annotated[
        DiffFormat,
        typer.Option(
            "--format", "-f", help="table, json, or navigator (a layer).", metavar="FORMAT"
        ),
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.", metavar="FILE")
    ] = None,
    threshold: ThresholdOption = 0.6,
    attack_version: Annotated[
        str | None,
        typer.Option(
            "--attack-version",
            help="Read both in this ATT&CK version (default: the newer one's).",
            metavar="VERSION",
        ),
    ] = None,
    model: ModelOption = None,
) -> None:
    """Techniques only in A, only in B and in both, with confidences. Ids revoked or deprecated
    since the older analysis are read in today's ATT&CK and listed."""
    from mitremap.classify.knowledge import attack_for_model
    from mitremap.diff import diff_analyses

    loaded: list[MitreMap] = []
    sides = [
        read_analysis(source, threshold=threshold, model=model, loaded=loaded) for source in (a, b)
    ]
    version = attack_version or _newer(*(_version(s) for s in sides))
    kb = attack_for_model(version, data_dir=options.data_dir, model=model)
    result = diff_analyses(sides[0], sides[1], kb, names=(_name(a), _name(b)))
    if fmt == "table":
        if output is not None:
            raise MitreMapError("--output needs --format json or navigator, not table")
        print_diff(result)
        return
    from mitremap.export import diff_layer

    data = result.to_dict() if fmt == "json" else diff_layer(result.to_dict())
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_text(output, text)
        err_console.print(f"wrote {output}", highlight=False)


def _version(data: dict[str, Any]) -> str:
    model = data.get("model")
    return str(model.get("attack_version") or "") if isinstance(model, dict) else ""


def _newer(*versions: str) -> str | None:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split(".") if p.isdigit())

    known = [v for v in versions if key(v)]
    return max(known, key=key) if known else None


def _name(source: str) -> str:
    return Path(source).name if not source.startswith(("http://", "https://")) else source


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("diff")(diff)
