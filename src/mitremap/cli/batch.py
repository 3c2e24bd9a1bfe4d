"""`mitremap batch`: a whole corpus into JSONL, in parallel, resumable."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from mitremap.cli import render
from mitremap.cli.common import (
    FormatOption,
    ModelOption,
    StageProgress,
    ThresholdOption,
    TimeLimitOption,
    WindowOption,
    err_console,
    printable,
)
from mitremap.deadline import DEFAULT_TIME_LIMIT_S
from mitremap.schema import SCHEMA_VERSION


def batch(
    sources: Annotated[
        list[Path],
        typer.Argument(help="Files, folders, or .jsonl files of {id, text}.", metavar="PATH"),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--output",
            "--out",
            "-o",
            help="Results, one JSON line per document.",
            metavar="FILE",
        ),
    ],
    model: ModelOption = None,
    threshold: ThresholdOption = 0.6,
    window: WindowOption = 3,
    workers: Annotated[int, typer.Option(min=1, help="Local worker processes.", metavar="N")] = max(
        1, (os.cpu_count() or 1)
    ),
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler address (tcp://host:8786) to run on a cluster.",
            metavar="ADDRESS",
        ),
    ] = None,
    fmt: FormatOption = "table",
    time_limit: TimeLimitOption = DEFAULT_TIME_LIMIT_S,
) -> None:
    """Analyze every document of a corpus; a re-run skips what is already in --out.
    --time-limit holds for each document: one that runs past it is recorded as an error."""
    import signal

    from mitremap.batch import Settings, analyze_corpus

    # SIGTERM ends the run like Ctrl-C: the workers are stopped, written lines stay
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    settings = Settings(
        model=str(model) if model else None,
        threshold=threshold,
        window=window,
        time_limit_s=time_limit,
    )
    with StageProgress() as progress:
        summary = analyze_corpus(
            sources,
            out,
            settings,
            workers=workers,
            scheduler=scheduler,
            progress=lambda done, total, _: progress.update("analyzing", done, total),
        )
    if fmt == "json":  # the results are in --output; this is what the run did
        errors = [{"id": ident, "error": error} for ident, error in summary.errors]
        body = {
            "schema_version": SCHEMA_VERSION,
            "output": str(out),
            "done": summary.done,
            "failed": summary.failed,
        }
        typer.echo(json.dumps({**body, "skipped": summary.skipped, "errors": errors}, indent=2))
        return
    render.line(
        f"{summary.done} analyzed, {summary.failed} failed, {summary.skipped} already done → "
        + printable(str(out))
    )
    for ident, error in summary.errors[:10]:
        line = f"  skipped {printable(ident)}: {printable(error)}"
        err_console.print(line, highlight=False, markup=False)
    if len(summary.errors) > 10:
        more = f"  … and {len(summary.errors) - 10} more (see {printable(str(out))})"
        err_console.print(more, highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
