"""`mitremap train | evaluate | model ensure | info | export | install`.

Training the default model takes a lock beside it (`<cache>/models/.default.lock`): on a
machine where several processes set up at once (`make setup` in five shells), one trains and
the others wait, say so, and then use its model.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape

from mitremap.cli import render
from mitremap.cli.common import (
    FormatOption,
    ModelOption,
    StageProgress,
    ThresholdOption,
    err_console,
    load_mitremap,
    options,
    resolver,
)
from mitremap.errors import MitreMapError, ModelError
from mitremap.files import check_writable_folder
from mitremap.schema import SCHEMA_VERSION

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
    if reviews is not None:  # the workspace reads other text with the model it came from
        model.card.recipe["learned_from"] = {"model": default_model_path().name, "mode": "full"}
    model.save(target)
    from mitremap.classify.knowledge import write_knowledge

    write_knowledge(target, kb)  # so the model answers exports and --defend on its own
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
    knowledge = manifest.get("knowledge") or {}
    return {
        "schema_version": SCHEMA_VERSION,
        "path": str(path),
        **card,
        "report_confidence": _report_model(manifest),
        "attack_knowledge": f"ATT&CK {knowledge['attack_version']}"
        if knowledge.get("attack_version")
        else None,
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
        # the lock guards the default model; one learned from reviews goes beside it
        lock = _default_model_lock(out) if reviews is None else nullcontext()
        with lock:
            path = _train(
                source, add, drop, include, out, calibrate=not no_calibrate, reviews=reviews
            )
    if fmt == "json":
        typer.echo(json.dumps(_summary(path), indent=2))
    elif reviews is not None:
        how_to_use(path)


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
    from mitremap.training.evaluate import evaluate_reports, evaluate_sentences, read_labelled

    if not file.is_file():
        raise MitreMapError(f"{file}: no such file")
    mm = load_mitremap(model)
    items = [
        i
        for i in read_labelled(str(file), mm.attack(data_dir=options.data_dir))
        if level == "report" or i.labels
    ]
    if not items:
        raise MitreMapError(f"{file}: no labelled text to evaluate")
    if level == "sentence":
        metrics = evaluate_sentences(mm, items).to_dict()
    else:
        metrics = evaluate_reports(mm, items, threshold=threshold).to_dict()
    metrics = {"schema_version": SCHEMA_VERSION, "file": str(file), "level": level, **metrics}
    if fmt == "json":
        typer.echo(json.dumps(metrics, indent=2))
        return
    _print_metrics(metrics)


def _print_metrics(metrics: dict[str, Any]) -> None:
    rows = []
    for key, value in metrics.items():
        if key in ("schema_version", "file", "level"):
            continue
        if isinstance(value, dict):
            value = "  ".join(f"{k[0].upper()} {v:.3f}" for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:.3f}"
        rows.append((key, str(value)))
    render.fields(rows, title=f"{metrics['file']} ({metrics['level']} level)")


def ensure(
    force: Annotated[bool, typer.Option("--force", help="Retrain even if a model exists.")] = False,
    fmt: FormatOption = "table",
) -> None:
    """Train the default model unless one is cached or installed (what `make setup` runs); one
    process at a time trains it, the others wait and use its result."""
    from mitremap.analysis import default_model_path

    target = default_model_path()
    with _default_model_lock(None):
        status = "present" if not force and _present(target) else "trained"
        if status == "trained":
            _train(None, None, None, None, None)
    if fmt == "json":
        typer.echo(json.dumps({**_summary(target), "status": status}, indent=2))
    elif status == "present":
        render.line(f"default model present: {target}")


def _present(target: Path) -> bool:
    """Whether the default model loads whole (a truncated one is not "present"); one that
    carries no ATT&CK knowledge gets it, when a bundle is at hand."""
    from mitremap.classify import load_model
    from mitremap.classify.knowledge import knowledge_entry, write_knowledge

    try:
        load_model(target)
        if knowledge_entry(target) is None:
            from mitremap.attack import load_attack

            version = _summary(target).get("attack_version") or None
            write_knowledge(target, load_attack(version=version, data_dir=options.data_dir))
    except ModelError as exc:
        if (target / "manifest.json").is_file():
            err_console.print(f"note: retraining: {exc}", highlight=False, markup=False)
        return False
    except MitreMapError as exc:  # no bundle to add knowledge from: the model still works
        err_console.print(f"note: the model carries no ATT&CK knowledge ({exc})", markup=False)
    return True


@contextmanager
def _default_model_lock(out: Path | None) -> Iterator[None]:
    """The machine-wide lock on training the default model (none for another folder)."""
    from mitremap.analysis import default_model_path
    from mitremap.files import exclusive_lock

    target = default_model_path()
    if out is not None and Path(out).absolute() != target.absolute():
        yield
        return

    def waiting() -> None:
        err_console.print(
            "another mitremap process is training the default model: waiting for it",
            highlight=False,
        )

    with exclusive_lock(target.parent / f".{target.name}.lock", on_wait=waiting):
        yield


def info(model: ModelOption = None, fmt: FormatOption = "table") -> None:
    """Show a model's card: ATT&CK version, recipe, sources, settings, metrics, warnings."""
    from mitremap.analysis import default_model_path

    card = _summary(model or default_model_path())
    if fmt == "json":
        typer.echo(json.dumps(card, indent=2))
        return
    warnings = card.pop("warnings")
    card.pop("schema_version")
    rows = [
        (key, json.dumps(value) if isinstance(value, dict | list) else str(value))
        for key, value in card.items()
    ]
    render.fields([*rows, *(("warning", w) for w in warnings)], title="model")


def _report_model(manifest: dict[str, Any]) -> str:
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
        body = {"schema_version": SCHEMA_VERSION, "archive": str(output), "sha256": digest}
        typer.echo(json.dumps(body, indent=2))
        return
    render.line(f"wrote {output}")
    render.line(f"sha256 {digest}")


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
        body = {"schema_version": SCHEMA_VERSION, "installed": str(destination), "sha256": digest}
        typer.echo(json.dumps(body, indent=2))
        return
    render.line(f"installed {destination}")
    render.line(f"sha256 {digest}")


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
