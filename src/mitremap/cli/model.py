"""`mitremap train | analyze | evaluate | model ensure | model info`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape

from mitremap.cli.common import (
    FormatOption,
    ModelOption,
    StageProgress,
    ThresholdOption,
    console,
    err_console,
    options,
    resolver,
)
from mitremap.errors import MitreMapError, ModelError
from mitremap.files import check_writable_folder

if TYPE_CHECKING:
    from mitremap.web.workspace.learning import ReviewSet

OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "--out",
        "-o",
        help="Model folder (default: the cached default model; with --add-reviews a new "
        "folder beside it).",
        metavar="DIR",
    ),
]


def _train(
    sources: list[str] | None,
    add: list[Path] | None,
    drop: list[str] | None,
    include: list[str] | None,
    out: Path | None,
    calibrate: bool = True,
    reviews: ReviewSet | None = None,
) -> Path:
    from mitremap.analysis import default_model_path
    from mitremap.attack import load_attack
    from mitremap.cli.learn import beside_default
    from mitremap.training.train import train_model

    # a model learned from reviews goes beside the default model, never over it
    default = beside_default("reviewed") if reviews is not None else default_model_path()
    target = check_writable_folder(out or default)  # before minutes of work
    for path in add or []:
        if not path.exists():
            raise MitreMapError(f"--add {path}: no such file or folder")
    res = resolver()
    kb = load_attack(data_dir=options.data_dir)
    with StageProgress() as progress, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = train_model(
            kb,
            sources=sources or None,
            add=add or (),
            drop=drop or (),
            include=include or (),
            resolver=res,
            calibrate=calibrate,
            progress=progress.update,
            reviewed=reviews.passages if reviews else (),
            reviewed_reports=reviews.reports if reviews else (),
        )
    model.save(target)
    err_console.print(
        f"trained {len(model.labels)} techniques on {model.card.training_texts} texts in "
        f"{model.card.train_seconds:.0f} s → {target}",
        highlight=False,
    )
    # one line each, not Python's file:line form; the calibration warning stays in the card too
    for message in dict.fromkeys(str(w.message) for w in caught):
        err_console.print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False)
    return target


def _warnings(card: dict[str, Any]) -> list[str]:
    """What a model's card says is wrong with it (e.g. calibration sources that were missing)."""
    calibration = (card.get("recipe") or {}).get("calibration") or {}
    return [calibration["warning"]] if calibration.get("warning") else []


def _summary(path: Path) -> dict[str, Any]:
    """A model's card without its long tables, for `train`, `model ensure` and `model info`."""
    from mitremap.classify.base import read_manifest

    manifest = read_manifest(path)
    card = dict(manifest.get("card", {}))
    card.pop("techniques", None)
    card.pop("names", None)
    return {
        "path": str(path),
        **card,
        "report_confidence": _report_model(manifest),
        "warnings": _warnings(card),
    }


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
    out: OutputOption = None,
    no_calibrate: Annotated[
        bool,
        typer.Option(
            "--no-calibrate", help="Skip report-level calibration (faster, less accurate)."
        ),
    ] = False,
    add_reviews: Annotated[
        bool,
        typer.Option(
            "--add-reviews",
            help="Learn from what analysts reviewed in `mitremap serve` (from --db): a new "
            "model beside the default one, which is left as it is.",
        ),
    ] = False,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="With --add-reviews: correct the model (--model, default: the default "
            "model) by the reviewed passages in seconds instead of retraining.",
        ),
    ] = False,
    model: ModelOption = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="MITREMAP_DB",
            metavar="URL",
            help="The workspace database for --add-reviews (default: serve's SQLite file).",
        ),
    ] = None,
    fmt: FormatOption = "table",
) -> None:
    """Train a technique model (about 6 minutes on 2 cores) and save it."""
    from mitremap.cli.learn import how_to_use, quick_update, reviews_from

    if quick and not add_reviews:
        raise MitreMapError("--quick updates a model from reviews: add --add-reviews")
    reviews = reviews_from(db) if add_reviews else None
    if reviews is not None and quick:
        path = quick_update(reviews, model, out)
    else:
        path = _train(source, add, drop, include, out, calibrate=not no_calibrate, reviews=reviews)
    if fmt == "json":
        typer.echo(json.dumps(_summary(path), indent=2))
    elif reviews is not None:
        how_to_use(path, replaced_default=False)


def _load(model: Path | None):
    from mitremap.analysis import MitreMap

    return MitreMap.load(model)


def evaluate(
    file: Annotated[
        Path, typer.Argument(help='Labelled JSONL: {"text", "labels"} a line.', metavar="FILE")
    ],
    level: Annotated[
        Literal["sentence", "report"],
        typer.Option("--level", help="sentence or report.", metavar="LEVEL"),
    ] = "sentence",
    threshold: ThresholdOption = 0.6,
    fmt: FormatOption = "table",
    model: ModelOption = None,
) -> None:
    """Measure a model on labelled text (labels normalised like training labels)."""
    from mitremap.attack import load_attack
    from mitremap.training.evaluate import evaluate_reports, evaluate_sentences, read_labelled

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
    fmt: FormatOption = "table",
) -> None:
    """Train the default model unless one is cached or installed (what `make setup` runs)."""
    from mitremap.analysis import default_model_path
    from mitremap.classify import load_model

    target = default_model_path()
    status = "trained"
    try:
        if force:
            raise ModelError("retraining (--force)")
        load_model(target)  # a model that does not load whole is not "present"
        status = "present"
    except ModelError as exc:
        if (target / "manifest.json").is_file():
            err_console.print(f"note: retraining: {exc}", highlight=False, markup=False)
        _train(None, None, None, None, None)
    if fmt == "json":
        typer.echo(json.dumps({"status": status, **_summary(target)}, indent=2))
    elif status == "present":
        console.print(f"default model present: {target}", highlight=False)


def info(model: ModelOption = None, fmt: FormatOption = "table") -> None:
    """Show a model's card: ATT&CK version, recipe, sources, settings, metrics, warnings."""
    from rich.table import Table

    from mitremap.analysis import default_model_path

    card = _summary(model or default_model_path())
    if fmt == "json":
        typer.echo(json.dumps(card, indent=2))
        return
    warnings = card.pop("warnings")
    table = Table("field", "value", title="model", title_justify="left")
    for key, value in card.items():
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        table.add_row(key, escape(text))
    for warning in warnings:
        table.add_row("[bold yellow]warning[/]", f"[yellow]{escape(warning)}[/]")
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
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The archive to write (.tar.gz).", metavar="FILE"),
    ],
    model: ModelOption = None,
    fmt: FormatOption = "table",
) -> None:
    """Pack a model into one file to share (prints its SHA-256)."""
    from mitremap.analysis import default_model_path
    from mitremap.classify.package import export_model

    digest = export_model(model or default_model_path(), output)
    if fmt == "json":
        typer.echo(json.dumps({"archive": str(output), "sha256": digest}, indent=2))
        return
    console.print(f"wrote {output}\nsha256 {digest}", highlight=False)


def install(
    package: Annotated[
        str, typer.Argument(help="A model archive: a file or an https URL.", metavar="FILE|URL")
    ],
    sha256: Annotated[
        str | None,
        typer.Option("--sha256", help="Refuse the archive unless it has this hash.", metavar="HEX"),
    ] = None,
    target: Annotated[
        Path | None,
        typer.Option(
            "--target", help="Install here (default: as the cached default model).", metavar="DIR"
        ),
    ] = None,
    fmt: FormatOption = "table",
) -> None:
    """Install a shared model archive (checked like any model before it replaces one)."""
    from mitremap.analysis import default_model_path
    from mitremap.classify.package import install_model

    destination = target or default_model_path()
    digest = install_model(package, destination, sha256)
    if fmt == "json":
        typer.echo(json.dumps({"installed": str(destination), "sha256": digest}, indent=2))
        return
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
