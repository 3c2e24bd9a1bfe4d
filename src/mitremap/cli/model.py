"""`mitremap train | analyze | evaluate | model ensure | model info`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mitremap.cli.common import console, err_console, options, resolver
from mitremap.errors import MitreMapError, ModelError
from mitremap.files import check_writable_folder, write_text

ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model", "-m", help="Model folder (default: the cached default model).", metavar="DIR"
    ),
]


def _progress():
    """A rich progress display with one bar per training stage (nothing when --quiet); plain
    progress lines when the output is not a terminal (CI, logs, nohup), where bars are silent."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    if options.quiet:
        return None, None
    if not err_console.is_terminal:
        started = time.monotonic()
        last: dict[str, int] = {}

        def line(stage: str, done: int, total: int) -> None:
            # a line at the start and end of a stage, and at every tenth of it
            step = max(total // 10, 1)
            new_step = done in (0, total) or done // step != last.get(stage, -1) // step
            if new_step and last.get(stage) != done:
                err_console.print(
                    f"{stage}: {done}/{total} ({time.monotonic() - started:.0f} s)",
                    highlight=False,
                    markup=False,
                )
            last[stage] = done

        return None, line
    display = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    )
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = display.add_task(stage, total=total)
        display.update(tasks[stage], completed=done, total=total)

    return display, update


def _train(
    sources: list[str] | None,
    add: list[Path] | None,
    drop: list[str] | None,
    include: list[str] | None,
    out: Path | None,
    calibrate: bool = True,
) -> Path:
    from mitremap.analysis import default_model_path
    from mitremap.attack import load_attack
    from mitremap.classify.train import train_model

    target = check_writable_folder(out or default_model_path())  # before minutes of work
    for path in add or []:
        if not path.exists():
            raise MitreMapError(f"--add {path}: no such file or folder")
    res = resolver()
    kb = load_attack(data_dir=options.data_dir)
    display, update = _progress()
    if display is not None:
        display.start()
    try:
        model = train_model(
            kb,
            sources=sources or None,
            add=add or (),
            drop=drop or (),
            include=include or (),
            resolver=res,
            calibrate=calibrate,
            progress=update,
        )
    finally:
        if display is not None:
            display.stop()
    model.save(target)
    err_console.print(
        f"trained {len(model.labels)} techniques on {model.card.training_texts} texts in "
        f"{model.card.train_seconds:.0f} s → {target}",
        highlight=False,
    )
    return target


def train(
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            help="Train on only these sources (repeat); default: the default recipe.",
            metavar="NAME",
        ),
    ] = None,
    add: Annotated[
        list[Path] | None,
        typer.Option(
            "--add",
            help="Add your own labelled file (JSONL, CSV, Sigma/Atomic folder, STIX).",
            metavar="FILE",
        ),
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option("--drop", help="Leave out a source of the recipe (repeat).", metavar="NAME"),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include", help="Opt-in sources, e.g. elastic or capec (repeat).", metavar="NAME"
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Model folder (default: the cached default model).", metavar="DIR"
        ),
    ] = None,
    no_calibrate: Annotated[
        bool,
        typer.Option(
            "--no-calibrate", help="Skip report-level calibration (faster, less accurate)."
        ),
    ] = False,
) -> None:
    """Train a technique model (about 6 minutes on 2 cores) and save it."""
    _train(source, add, drop, include, out, calibrate=not no_calibrate)


def _load(model: Path | None):
    from mitremap.analysis import MitreMap

    return MitreMap.load(model)


def analyze(
    source: Annotated[str, typer.Argument(help="A report: file, folder, URL, or - for stdin.")],
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold", "-t", min=0.0, max=1.0, help="Report techniques at or above this."
        ),
    ] = 0.6,
    window: Annotated[int, typer.Option("--window", "-w", min=1, help="Sentences per window.")] = 3,
    stride: Annotated[
        int, typer.Option("--stride", min=1, help="Sentences between window starts.")
    ] = 1,
    parents: Annotated[
        bool,
        typer.Option(
            "--parents", help="Also list each found sub-technique's parent (at its confidence)."
        ),
    ] = False,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="table, json, csv, navigator, stix, markdown or html."),
    ] = "table",
    iocs: Annotated[
        bool, typer.Option("--iocs", help="Also list indicators of compromise.")
    ] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Add per-word attributions.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
    model: ModelOption = None,
) -> None:
    """Find the ATT&CK techniques a report (or every report in a folder) describes."""
    from mitremap.documents import read_document

    if stride > window:
        raise MitreMapError(
            f"--stride {stride} is larger than --window {window}: sentences would be skipped"
        )
    settings = dict(
        threshold=threshold,
        window=window,
        stride=stride,
        include_parents=parents,
        explain=explain,
        iocs=iocs,
    )
    if Path(source).is_dir():
        _analyze_folder(Path(source), settings, fmt, output, model)
        return
    document = read_document(source)
    if not document.text.strip():
        raise MitreMapError(f"{source}: the input is empty")
    for warning in document.warnings:
        err_console.print(f"note: {source}: {warning}", highlight=False, markup=False)
    result = _load(model).analyze(document, **settings)
    if fmt == "table":
        if output is not None:
            raise MitreMapError("--output needs a file format (json, csv, …), not table")
        _print_table(result, iocs)
        return
    text = _render(result, fmt, iocs)
    if output is not None:
        write_text(output, text if text.endswith("\n") else text + "\n")
        err_console.print(f"wrote {output}", highlight=False)
    else:
        typer.echo(text)


_EXTENSIONS = {
    "json": ".json",
    "csv": ".csv",
    "navigator": ".layer.json",
    "stix": ".stix.json",
    "markdown": ".md",
    "html": ".html",
}


def _render(result, fmt: str, iocs: bool) -> str:
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
    from mitremap.export import render

    return render(result, fmt, iocs=iocs)


def _analyze_folder(
    folder: Path,
    settings: dict,
    fmt: str,
    output: Path | None,
    model: Path | None,
) -> None:
    """Every supported file of a folder: a table each, one JSON document, or one file each
    in the --output folder; then what was skipped and why."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from mitremap.documents import read_folder

    if fmt not in ("table", "json") and output is None:
        raise MitreMapError(
            f"for a folder, --format {fmt} writes one file per report: add --output DIR"
        )
    if fmt == "table" and output is not None:
        raise MitreMapError("--output needs a file format (json, csv, …), not table")
    mm = _load(model)
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
            folder, progress=lambda done, total, _: bar.update(task, completed=done, total=total)
        )
        bar.update(task, description="analyzing", completed=0, total=len(found.documents))
        results = []
        for document in found.documents:
            results.append(mm.analyze(document, **settings))
            bar.advance(task)
    if fmt == "table":
        for result in results:
            _print_table(result, settings["iocs"])
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
        names = _output_names(folder, [r.document.origin for r in results], _EXTENSIONS[fmt])
        for result, name in zip(results, names, strict=True):
            write_text(output / name, _render(result, fmt, settings["iocs"]) + "\n")
        err_console.print(f"wrote {len(set(names))} files to {output}", highlight=False)
    err_console.print(
        f"{len(results)} reports analyzed, {len(found.skipped)} skipped", highlight=False
    )
    for path, reason in found.skipped:
        err_console.print(f"  skipped {path}: {reason}", highlight=False, markup=False)


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


def evaluate(
    file: Annotated[Path, typer.Argument(help='Labelled JSONL: {"text", "labels"} a line.')],
    level: Annotated[str, typer.Option("--level", help="sentence or report.")] = "sentence",
    threshold: Annotated[float, typer.Option("--threshold", "-t", min=0.0, max=1.0)] = 0.6,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    model: ModelOption = None,
) -> None:
    """Measure a model on labelled text (labels normalised like training labels)."""
    from mitremap.attack import load_attack
    from mitremap.evaluate import evaluate_reports, evaluate_sentences, read_labelled

    if level not in ("sentence", "report"):
        raise typer.BadParameter("choose sentence or report", param_hint="--level")
    if fmt not in ("table", "json"):
        raise typer.BadParameter("choose table or json", param_hint="--format")
    if not file.is_file():
        raise MitreMapError(f"{file}: no such file")
    mm = _load(model)
    items = [
        i
        for i in read_labelled(str(file), load_attack(data_dir=options.data_dir))
        if level == "report" or i.labels
    ]
    if not items:
        raise MitreMapError(f"{file}: no labelled text to evaluate")
    if level == "sentence":
        metrics = evaluate_sentences(mm, items).to_dict()
    else:
        metrics = evaluate_reports(mm, items, threshold=threshold).to_dict()
    metrics = {"file": str(file), "level": level, **metrics}
    if fmt == "json":
        typer.echo(json.dumps(metrics, indent=2))
        return
    _print_metrics(metrics)


def _print_metrics(metrics: dict) -> None:
    from rich.table import Table

    table = Table(
        "metric",
        "value",
        title=f"{metrics['file']} ({metrics['level']} level)",
        title_justify="left",
    )
    for key, value in metrics.items():
        if key in ("file", "level"):
            continue
        if isinstance(value, dict):
            value = "  ".join(f"{k[0].upper()} {v:.3f}" for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:.3f}"
        table.add_row(key, str(value))
    console.print(table)


def ensure(
    force: Annotated[bool, typer.Option("--force", help="Retrain even if a model exists.")] = False,
) -> None:
    """Train the default model unless one is cached (what `make setup` runs)."""
    from mitremap.analysis import default_model_path
    from mitremap.classify import load_model

    target = default_model_path()
    if not force:
        try:
            load_model(target)  # a model that does not load whole is not "present"
            console.print(f"default model present: {target}", highlight=False)
            return
        except ModelError as exc:
            if (target / "manifest.json").is_file():
                err_console.print(f"note: retraining: {exc}", highlight=False, markup=False)
    _train(None, None, None, None, None)


def info(
    model: ModelOption = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Show a model's card: ATT&CK version, recipe, sources, settings, metrics."""
    from mitremap.analysis import default_model_path
    from mitremap.classify.base import read_manifest

    path = model or default_model_path()
    manifest = read_manifest(path)
    card = dict(manifest.get("card", {}))
    card.pop("techniques", None)
    card.pop("names", None)
    card = {"path": str(path), **card, "report_confidence": _report_model(manifest)}
    if fmt == "json":
        typer.echo(json.dumps(card, indent=2))
        return
    from rich.table import Table

    table = Table("field", "value", title="model", title_justify="left")
    for key, value in card.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    console.print(table)


def _report_model(manifest: dict) -> str:
    """How the model turns window scores into a report-level confidence."""
    calibration = manifest.get("calibration") or {}
    trees = (calibration.get("report_trees") or {}).get("trees") or []
    evidence = calibration.get("evidence") or {}
    fitted = ", ".join(f"{n} {kind}" for kind, n in evidence.items()) or "nothing"
    if trees:
        features = ", ".join(calibration.get("report_features") or [])
        return f"boosted trees ({len(trees)}) over {features}; fitted out-of-fold on {fitted}"
    return f"best window, Platt-scaled (too little held-out evidence for trees: {fitted})"


def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="The archive to write (.tar.gz).")],
    model: ModelOption = None,
) -> None:
    """Pack a model into one file to share (prints its SHA-256)."""
    from mitremap.analysis import default_model_path
    from mitremap.classify.package import export_model

    digest = export_model(model or default_model_path(), output)
    console.print(f"wrote {output}\nsha256 {digest}", highlight=False)


def install(
    package: Annotated[str, typer.Argument(help="A model archive: a file or an https URL.")],
    sha256: Annotated[
        str | None, typer.Option("--sha256", help="Refuse the archive unless it has this hash.")
    ] = None,
    target: Annotated[
        Path | None,
        typer.Option("--target", help="Install here (default: as the cached default model)."),
    ] = None,
) -> None:
    """Install a shared model archive (checked like any model before it replaces one)."""
    from mitremap.analysis import default_model_path
    from mitremap.classify.package import install_model

    destination = target or default_model_path()
    digest = install_model(package, destination, sha256)
    console.print(f"installed {destination}\nsha256 {digest}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("train")(train)
    app.command("analyze")(analyze)
    app.command("evaluate")(evaluate)
    group = typer.Typer(help="The cached default model.", no_args_is_help=True)
    group.command("ensure")(ensure)
    group.command("info")(info)
    group.command("export")(export)
    group.command("install")(install)
    app.add_typer(group, name="model")
