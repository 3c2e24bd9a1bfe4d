"""`mitremap analyze`: one report, a folder of reports, a URL or stdin, in any export format."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypedDict

import typer

from mitremap.cli.common import (
    TIME_LIMIT_ADVICE,
    BenignOption,
    KeepPathOption,
    MispDistributionOption,
    MispThreatOption,
    ModelOption,
    RefangOption,
    StageProgress,
    ThresholdOption,
    TimeLimitOption,
    TlpOption,
    WindowOption,
    err_console,
    export_options,
    load_mitremap,
    options,
    printable,
)
from mitremap.cli.render import print_analysis, print_defence
from mitremap.deadline import DEFAULT_TIME_LIMIT_S, Deadline
from mitremap.errors import MitreMapError
from mitremap.export import export_format, render
from mitremap.files import atomic_writer, check_writable_folder, write_text
from mitremap.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from mitremap.analysis import Analysis, MitreMap
    from mitremap.export import ExportOptions

# `table` and every export format (a test checks it against the export registry); a choice, so
# an unknown format is a usage error before any work
AnalyzeFormat = Literal[
    "table", "json", "csv", "navigator", "stix", "misp", "markdown", "html", "docx"
]


class _Settings(TypedDict):
    """What `MitreMap.analyze` is asked, the same for every report of a run."""

    threshold: float
    window: int
    stride: int
    include_parents: bool
    explain: bool
    iocs: bool
    defend: bool


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
    keep_path: KeepPathOption = False,
    refang: RefangOption = False,
    benign: BenignOption = "context",
    tlp: TlpOption = None,
    misp_distribution: MispDistributionOption = 0,
    misp_threat_level: MispThreatOption = 4,
    time_limit: TimeLimitOption = DEFAULT_TIME_LIMIT_S,
) -> None:
    """Find the ATT&CK techniques a report (or every report in a folder) describes."""
    from mitremap.documents import read_document

    chosen = export_options(
        keep_path=keep_path,
        refang=refang,
        benign=benign,
        tlp=tlp,
        misp_distribution=misp_distribution,
        misp_threat_level=misp_threat_level,
    )

    if stride > window:
        raise MitreMapError(
            f"--stride {stride} is larger than --window {window}: sentences would be skipped"
        )
    # an unknown format, or a binary one without a file to go to, fails before any work
    if fmt != "table" and export_format(fmt).binary and output is None:
        raise MitreMapError(f"--format {fmt} makes a binary file: add --output FILE")
    settings = _Settings(
        threshold=threshold,
        window=window,
        stride=stride,
        include_parents=parents,
        explain=explain,
        iocs=iocs,
        defend=defend,
    )
    if Path(source).is_dir():
        _analyze_folder(Path(source), settings, fmt, output, model, chosen, time_limit)
        return
    deadline = Deadline.after(time_limit, TIME_LIMIT_ADVICE)
    document = read_document(source, deadline=deadline)
    if not document.text.strip():
        raise MitreMapError(f"{source}: the input is empty")
    mm = _model(model, defend)
    result = mm.analyze(document, deadline=deadline, **settings)
    for warning in result.document.warnings:
        note = f"note: {source}: {warning}"
        err_console.print(note, highlight=False, markup=False, soft_wrap=True)
    if fmt == "table":
        if output is not None:
            raise MitreMapError("--output needs a file format (json, csv, …), not table")
        _print_result(result, iocs)
        return
    text = _render(result, fmt, iocs, _with_attack(chosen, mm, fmt))
    if output is not None:
        _write(output, text)
        err_console.print(f"wrote {output}", highlight=False)
    else:
        typer.echo(text)


def _print_result(result: Analysis, iocs: bool) -> None:
    """One analysis as tables: its techniques (and indicators), then its defence if asked."""
    print_analysis(result, iocs)
    if result.defence is not None:
        print_defence(result.defence)


def _model(model: Path | None, defend: bool) -> MitreMap:
    """The model; with --defend, ATT&CK loaded first from where --data says."""
    mm = load_mitremap(model)
    if defend:
        mm.attack(data_dir=options.data_dir)
    return mm


def _with_attack(chosen: ExportOptions, mm: MitreMap, fmt: str) -> ExportOptions:
    """The options, with the ATT&CK STIX takes ATT&CK's own objects from: the model's (a local
    bundle, else the knowledge the model carries)."""
    if fmt != "stix":
        return chosen
    return replace(chosen, kb=mm.attack(data_dir=options.data_dir))


def _render(result: Analysis, fmt: str, iocs: bool, chosen: ExportOptions) -> str | bytes:
    return render(result, fmt, iocs=iocs, options=chosen)


def _write(path: Path, content: str | bytes) -> None:
    """An export into its file: bytes as they are, text ending with a newline."""
    if isinstance(content, bytes):
        with atomic_writer(path, binary=True) as handle:
            handle.write(content)
    else:
        write_text(path, content if content.endswith("\n") else content + "\n")


def _analyze_folder(
    folder: Path,
    settings: _Settings,
    fmt: str,
    output: Path | None,
    model: Path | None,
    chosen: ExportOptions,
    time_limit: float,
) -> None:
    """Every supported file of a folder: a table each, one JSON document, or one file each
    in the --output folder; then what was skipped and why. The time limit holds for reading
    each file, and again for analysing it."""
    if fmt not in ("table", "json") and output is None:
        raise MitreMapError(
            f"for a folder, --format {fmt} writes one file per report: add --output DIR"
        )
    if fmt == "table" and output is not None:
        raise MitreMapError("--output needs a file format (json, csv, …), not table")
    mm = _model(model, settings["defend"])
    chosen = _with_attack(chosen, mm, fmt)
    results, skipped = _analyze_each(folder, mm, settings, time_limit)
    if fmt == "table":
        for result in results:
            _print_result(result, settings["iocs"])
    elif fmt == "json" and output is None:
        typer.echo(_folder_json(results, skipped))
    elif output is not None:
        _write_each(folder, output, results, fmt, settings["iocs"], chosen)
    _report_skipped(len(results), skipped)


def _analyze_each(
    folder: Path, mm: MitreMap, settings: _Settings, time_limit: float
) -> tuple[list[Analysis], list[tuple[Path, str]]]:
    """The folder's analyses and the files skipped with their reasons, with the progress
    shown; each report read, then analysed, within its own time limit."""
    from mitremap.documents import read_folder

    with StageProgress() as progress:
        found = read_folder(
            folder,
            progress=lambda done, total, _: progress.update("reading", done, total),
            time_limit=time_limit,
        )
        results = []
        for document in found.documents:
            deadline = Deadline.after(time_limit, TIME_LIMIT_ADVICE)
            results.append(mm.analyze(document, deadline=deadline, **settings))
            progress.update("analyzing", len(results), len(found.documents))
    return results, found.skipped


def _folder_json(results: list[Analysis], skipped: list[tuple[Path, str]]) -> str:
    """A folder's analyses as one JSON document, with what was skipped."""
    return json.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "documents": [r.to_dict() for r in results],
            "skipped": [{"path": str(p), "reason": reason} for p, reason in skipped],
        },
        indent=2,
        ensure_ascii=False,
    )


def _write_each(
    folder: Path,
    output: Path,
    results: list[Analysis],
    fmt: str,
    iocs: bool,
    chosen: ExportOptions,
) -> None:
    """One export file per report in the `output` folder (see `_output_names`)."""
    check_writable_folder(output)
    names = _output_names(
        folder, [r.document.origin for r in results], export_format(fmt).extension
    )
    for result, name in zip(results, names, strict=True):
        _write(output / name, _render(result, fmt, iocs, chosen))
    err_console.print(f"wrote {len(set(names))} files to {output}", highlight=False)


def _report_skipped(analyzed: int, skipped: list[tuple[Path, str]]) -> None:
    """The count of reports analysed and skipped, then each skipped file and why, on stderr."""
    err_console.print(f"{analyzed} reports analyzed, {len(skipped)} skipped", highlight=False)
    for path, reason in skipped:
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


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("analyze")(analyze)
