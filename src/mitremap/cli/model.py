"""`mitremap train | analyze | evaluate | model ensure | model info`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mitremap.cli.common import console, err_console, options, resolver
from mitremap.errors import MitreMapError, ModelError
from mitremap.files import check_writable_folder

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
    app.command("evaluate")(evaluate)
    group = typer.Typer(help="The cached default model.", no_args_is_help=True)
    group.command("ensure")(ensure)
    group.command("info")(info)
    group.command("export")(export)
    group.command("install")(install)
    app.add_typer(group, name="model")
