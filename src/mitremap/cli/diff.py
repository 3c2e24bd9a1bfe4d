"""`mitremap diff A B`: two analyses (JSON files) or two reports, technique by technique."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.table import Table

from mitremap.cli.common import ModelOption, ThresholdOption, console, err_console, options
from mitremap.errors import InputError, MitreMapError
from mitremap.files import write_text

if TYPE_CHECKING:
    from mitremap.analysis import MitreMap
    from mitremap.diff import AnalysisDiff

MAX_ANALYSIS_BYTES = 64 * 2**20
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
    from mitremap.attack import load_attack
    from mitremap.diff import diff_analyses

    loaded: list[MitreMap] = []
    sides = [_analysis(source, threshold, model, loaded) for source in (a, b)]
    version = attack_version or _newer(*(_version(s) for s in sides))
    kb = load_attack(version=version, data_dir=options.data_dir)
    result = diff_analyses(sides[0], sides[1], kb, names=(_name(a), _name(b)))
    if fmt == "table":
        if output is not None:
            raise MitreMapError("--output needs --format json or navigator, not table")
        _print(result)
        return
    data = result.to_dict() if fmt == "json" else result.to_navigator()
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_text(output, text)
        err_console.print(f"wrote {output}", highlight=False)


def _analysis(source: str, threshold: float, model: Path | None, loaded: list) -> dict[str, Any]:
    """An analysis JSON file as it is; anything else is read as a report and analyzed."""
    data = _json_analysis(Path(source)) if not source.startswith(("http://", "https://")) else None
    if data is not None:
        return data
    from mitremap.cli.model import _load
    from mitremap.documents import read_document

    document = read_document(source)
    if not document.text.strip():
        raise InputError(f"{source}: the input is empty")
    if not loaded:
        loaded.append(_load(model))
    return loaded[0].analyze(document, threshold=threshold).to_dict()


def _json_analysis(path: Path) -> dict[str, Any] | None:
    """The analysis in a JSON file; None when the file is not JSON (then it is a report)."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    if path.stat().st_size > MAX_ANALYSIS_BYTES:
        raise InputError(f"{path}: larger than {MAX_ANALYSIS_BYTES // 2**20} MB, not an analysis")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc.__class__.__name__})") from None
    if isinstance(data, dict) and "documents" in data and "techniques" not in data:
        raise InputError(f"{path}: the analysis of a folder; give the JSON of one report")
    if not isinstance(data, dict) or "techniques" not in data:
        raise InputError(f"{path}: not a MitreMap analysis (analyze -f json writes one)")
    return data


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


def _print(result: AnalysisDiff) -> None:
    """Three tables on a terminal; tab-separated lines (set, id, name, A, B) when piped."""
    titles = {"only_a": f"only in A ({result.a_name})", "only_b": f"only in B ({result.b_name})"}
    titles["both"] = "in both"

    def conf(value: float | None) -> str:
        return f"{value:.2f}" if value is not None else ""

    rows = {
        side: [(t.technique, t.name, conf(t.a), conf(t.b)) for t in result.of(side)]
        for side in titles
    }
    changes = [(c.analysis, c.was, c.now or "", c.why) for c in result.changes]
    if not console.is_terminal:
        for side, lines in rows.items():
            for line in lines:
                typer.echo("\t".join((side, *line)))
        for change in changes:
            typer.echo("\t".join(("changed", *change)))
        return
    for side, title in titles.items():
        table = Table(title=escape(title), title_justify="left")
        for column in ("technique", "name", "A", "B"):
            table.add_column(column, no_wrap=column != "name")
        for line in rows[side]:
            table.add_row(*(escape(cell) for cell in line))
        console.print(table if rows[side] else f"{title}: none", highlight=False)
    for analysis, was, now, why in changes:
        to = f" → {now}" if now else ""
        console.print(
            f"{analysis}: {was} {why}{to} in ATT&CK {result.attack_version}", highlight=False
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("diff")(diff)
