"""`mitremap analyze`: one report, a folder of reports, a URL or stdin, in any export format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from mitremap.cli.common import (
    TIME_LIMIT_ADVICE,
    ThresholdOption,
    TimeLimitOption,
    WindowOption,
    console,
    err_console,
    options,
    printable,
)
from mitremap.cli.defend import print_defence
from mitremap.cli.model import ModelOption, _load
from mitremap.deadline import DEFAULT_TIME_LIMIT_S, Deadline
from mitremap.errors import MitreMapError
from mitremap.export import export_format, render
from mitremap.files import atomic_writer, check_writable_folder, write_text

# `table` and every export format (a test checks it against the export registry); a choice, so
# an unknown format is a usage error before any work
AnalyzeFormat = Literal[
    "table", "json", "csv", "navigator", "stix", "misp", "markdown", "html", "docx"
]


def analyze(
    source: Annotated[
        str,
        typer.Argument(help="A report: file, folder, URL, or - for stdin.", metavar="SOURCE"),
    ],
    threshold: ThresholdOption = 0.6,
    window: WindowOption = 3,
    stride: Annotated[
        int, typer.Option("--stride", min=1, help="Sentences between window starts.", metavar="N")
    ] = 1,
    parents: Annotated[
        bool,
        typer.Option(
            "--parents", help="Also list each found sub-technique's parent (at its confidence)."
        ),
    ] = False,
    fmt: Annotated[
        AnalyzeFormat,
        typer.Option(
            "--format",
            "-f",
            help="table, json, csv, navigator, stix, misp, markdown, html or docx.",
            metavar="FORMAT",
        ),
    ] = "table",
    iocs: Annotated[
        bool, typer.Option("--iocs", help="Also list indicators of compromise.")
    ] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Add per-word attributions.")] = False,
    defend: Annotated[
        bool,
        typer.Option(
            "--defend",
            help="Add mitigations (prioritised), detections and techniques in common with "
            "ATT&CK groups, campaigns and software.",
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file (a folder for a folder).", metavar="PATH"
        ),
    ] = None,
    model: ModelOption = None,
    time_limit: TimeLimitOption = DEFAULT_TIME_LIMIT_S,
) -> None:
    """Find the ATT&CK techniques a report (or every report in a folder) describes."""
    from mitremap.documents import read_document

    if stride > window:
        raise MitreMapError(
            f"--stride {stride} is larger than --window {window}: sentences would be skipped"
        )
    # an unknown format, or a binary one without a file to go to, fails before any work
    if fmt != "table" and export_format(fmt).binary and output is None:
        raise MitreMapError(f"--format {fmt} makes a binary file: add --output FILE")
    settings = dict(
        threshold=threshold,
        window=window,
        stride=stride,
        include_parents=parents,
        explain=explain,
        iocs=iocs,
        defend=defend,
    )
    if Path(source).is_dir():
        _analyze_folder(Path(source), settings, fmt, output, model, time_limit)
        return
    deadline = Deadline.after(time_limit, TIME_LIMIT_ADVICE)
    document = read_document(source, deadline=deadline)
    if not document.text.strip():
        raise MitreMapError(f"{source}: the input is empty")
    result = _model(model, defend).analyze(document, deadline=deadline, **settings)
    for warning in result.document.warnings:
        note = f"note: {source}: {warning}"
        err_console.print(note, highlight=False, markup=False, soft_wrap=True)
    if fmt == "table":
        if output is not None:
            raise MitreMapError("--output needs a file format (json, csv, …), not table")
        _print_table(result, iocs)
        if result.defence is not None:
            print_defence(result.defence)
        return
    text = _render(result, fmt, iocs)
    if output is not None:
        _write(output, text)
        err_console.print(f"wrote {output}", highlight=False)
    else:
        typer.echo(text)


def _model(model: Path | None, defend: bool):
    """The model; with --defend, ATT&CK loaded first from where --data says."""
    mm = _load(model)
    if defend:
        mm.attack(data_dir=options.data_dir)
    return mm


def _render(result, fmt: str, iocs: bool) -> str | bytes:
    return render(result, fmt, iocs=iocs)


def _write(path: Path, content: str | bytes) -> None:
    """An export into its file: bytes as they are, text ending with a newline."""
    if isinstance(content, bytes):
        with atomic_writer(path, binary=True) as handle:
            handle.write(content)
    else:
        write_text(path, content if content.endswith("\n") else content + "\n")


def _analyze_folder(
    folder: Path,
    settings: dict,
    fmt: str,
    output: Path | None,
    model: Path | None,
    time_limit: float,
) -> None:
    """Every supported file of a folder: a table each, one JSON document, or one file each
    in the --output folder; then what was skipped and why. The time limit holds for reading
    each file, and again for analysing it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from mitremap.documents import read_folder

    if fmt not in ("table", "json") and output is None:
        raise MitreMapError(
            f"for a folder, --format {fmt} writes one file per report: add --output DIR"
        )
    if fmt == "table" and output is not None:
        raise MitreMapError("--output needs a file format (json, csv, …), not table")
    mm = _model(model, settings["defend"])
    with Progress(
        "{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
        disable=options.quiet,
    ) as bar:
        task = bar.add_task("reading", total=None)
        found = read_folder(
            folder,
            progress=lambda done, total, _: bar.update(task, completed=done, total=total),
            time_limit=time_limit,
        )
        bar.update(task, description="analyzing", completed=0, total=len(found.documents))
        results = []
        for document in found.documents:
            deadline = Deadline.after(time_limit, TIME_LIMIT_ADVICE)
            results.append(mm.analyze(document, deadline=deadline, **settings))
            bar.advance(task)
    if fmt == "table":
        for result in results:
            _print_table(result, settings["iocs"])
            if result.defence is not None:
                print_defence(result.defence)
    elif fmt == "json" and output is None:
        typer.echo(
            json.dumps(
                {
                    "documents": [r.to_dict() for r in results],
                    "skipped": [{"path": str(p), "reason": reason} for p, reason in found.skipped],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    elif output is not None:
        check_writable_folder(output)
        names = _output_names(
            folder, [r.document.origin for r in results], export_format(fmt).extension
        )
        for result, name in zip(results, names, strict=True):
            _write(output / name, _render(result, fmt, settings["iocs"]))
        err_console.print(f"wrote {len(set(names))} files to {output}", highlight=False)
    err_console.print(
        f"{len(results)} reports analyzed, {len(found.skipped)} skipped", highlight=False
    )
    for path, reason in found.skipped:
        line = f"  skipped {printable(str(path))}: {printable(reason)}"
        err_console.print(line, highlight=False, markup=False)


def _output_names(folder: Path, origins: list[str], extension: str) -> list[str]:
    """One output file per report, named after its path inside the folder (`a/report.md` →
    `a__report.md.json`), so two reports of the same name never overwrite each other."""
    names = []
    for origin in origins:
        try:
            relative = Path(origin).resolve().relative_to(folder.resolve())
        except ValueError:
            relative = Path(Path(origin).name or "report")
        names.append("__".join(relative.parts) + extension)
    return names


def _print_table(result, iocs: bool) -> None:
    """A table on a terminal (ids, hashes and URLs never wrap: the evidence folds instead);
    plain tab-separated lines when piped, so every value can be copied whole."""
    from rich.markup import escape
    from rich.table import Table

    text = result.document.text
    rows: list[tuple[str, ...]] = []
    for hit in result.techniques:
        evidence = hit.evidence[0] if hit.evidence else None
        snippet = " ".join(text[evidence.start : evidence.end].split()) if evidence else ""
        if len(snippet) > 160:
            snippet = snippet[:157] + "…"
        tactics = ", ".join(hit.technique.tactics)
        rows.append(
            (hit.technique.id, hit.technique.name, tactics, f"{hit.confidence:.2f}", snippet)
        )
    indicators: list[tuple[str, ...]] = [(i.type, i.value, i.raw) for i in result.indicators]
    if not console.is_terminal:
        for line in rows or [("#", result.message)]:
            typer.echo("\t".join(line))
        if iocs:
            for line in indicators or [("#", "no indicators found")]:
                typer.echo("\t".join(line))
        return
    title = result.document.title or result.document.origin
    table = Table(
        title=f"{escape(title)} — techniques at or above {result.threshold}", title_justify="left"
    )
    table.add_column("technique", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("tactics", overflow="fold")
    table.add_column("confidence", no_wrap=True)
    table.add_column("evidence", overflow="fold", ratio=1)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table if rows else result.message, highlight=False)
    if iocs:
        itable = Table(title="indicators", title_justify="left")
        itable.add_column("type", no_wrap=True)
        itable.add_column("value", no_wrap=True, overflow="ignore")
        itable.add_column("as written", no_wrap=True, overflow="ignore")
        for indicator in indicators:
            itable.add_row(*(escape(cell) for cell in indicator))
        console.print(itable if indicators else "no indicators found")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("analyze")(analyze)
