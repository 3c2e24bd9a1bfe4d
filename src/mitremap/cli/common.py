"""What every CLI command shares: consoles, global options, the option types every command
spells the same way, progress, and how errors are shown."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from mitremap.analysis import MitreMap
    from mitremap.data import DataResolver
    from mitremap.export import ExportOptions
    from mitremap.export._base import TLP, Benign

console = Console()
err_console = Console(stderr=True)


def _hide_argument_types() -> None:
    """Typer prints every argument's Python type beside its name in --help ("PATH...
    <list[Path]>", "ID <str>") and has no setting to hide it; options show their metavar alone
    once one is set. Arguments do the same here: the metavar and the help say what to give."""
    from typer.core import TyperArgument

    if hasattr(TyperArgument, "display_type_rich"):
        TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]


_hide_argument_types()


@dataclass
class Options:
    """Global options, set by the app callback before any command runs."""

    data_dir: Path | None = None
    debug: bool = False
    quiet: bool = False


options = Options()


def resolver() -> DataResolver:
    """The data resolver for this run (honours --data)."""
    from mitremap.data import DataResolver

    return DataResolver(data_dir=options.data_dir)


def load_mitremap(model: Path | None = None) -> MitreMap:
    """The model every command analyses with: `--model DIR`, else the default model."""
    from mitremap.analysis import MitreMap

    return MitreMap.load(model)


MAX_ANALYSIS_BYTES = 64 * 2**20


def read_analysis(
    source: str,
    *,
    threshold: float = 0.6,
    model: Path | None = None,
    loaded: list[Any] | None = None,
) -> dict[str, Any]:
    """An analysis' JSON form from `source`: an analysis JSON file (`analyze -f json`) as it
    is; anything else is read as a report and analysed (the model loaded once into `loaded`)."""
    from mitremap.errors import InputError

    path = Path(source)
    if not source.startswith(("http://", "https://")):
        data = _json_analysis(path)
        if data is not None:
            return data
    from mitremap.documents import read_document

    document = read_document(source)
    if not document.text.strip():
        raise InputError(f"{source}: the input is empty")
    cache = loaded if loaded is not None else []
    if not cache:
        cache.append(load_mitremap(model))
    return dict(cache[0].analyze(document, threshold=threshold).to_dict())


def _json_analysis(path: Path) -> dict[str, Any] | None:
    """The analysis in a JSON file; None when the file is not JSON (then it is a report)."""
    import json

    from mitremap.errors import InputError

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


# ---- options every command spells the same way ---------------------------------------------
# Short forms: -f format, -o output, -m model, -t threshold, -w window. A format is a choice:
# an unknown one is a usage error (exit 2) before any work.

ReportFormat = Literal["table", "json"]

FormatOption = Annotated[
    ReportFormat,
    typer.Option("--format", "-f", help="table, or json for scripts.", metavar="FORMAT"),
]
ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model", "-m", help="Model folder (default: the cached default model).", metavar="DIR"
    ),
]
ThresholdOption = Annotated[
    float,
    typer.Option(
        "--threshold",
        "-t",
        min=0.0,
        max=1.0,
        help="Report techniques at or above this confidence.",
        metavar="SCORE",
    ),
]
WindowOption = Annotated[
    int, typer.Option("--window", "-w", min=1, help="Sentences per window.", metavar="N")
]
TimeLimitOption = Annotated[
    float,
    typer.Option(
        "--time-limit",
        min=0.1,
        help="Stop reading and analysing a report after this many seconds.",
        metavar="SECONDS",
    ),
]
TIME_LIMIT_ADVICE = "give it more time with --time-limit, or split the report"

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with control characters shown as escapes (`\\x1b`): a file name from a folder
    can hold terminal escape sequences, and printing them raw would run them."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)


# ---- export options (analyze, iocs) --------------------------------------------------------------

KeepPathOption = Annotated[
    bool,
    typer.Option(
        "--keep-path", help="Keep the report's local path in exports (default: its name only)."
    ),
]
RefangOption = Annotated[
    bool,
    typer.Option(
        "--refang", help="Live indicators in HTML, Markdown and Word (default: defanged)."
    ),
]
BenignOption = Annotated[
    Literal["context", "omit"],
    typer.Option(
        "--benign",
        help="Known-benign values (system programs, vendor domains, the report's own URL …) in "
        "STIX and MISP: context (observed, never an indicator) or omit.",
        metavar="context|omit",
    ),
]
TlpOption = Annotated[
    Literal["clear", "green", "amber", "amber+strict", "red"] | None,
    typer.Option("--tlp", help="Mark STIX and MISP exports with a TLP 2.0 level.", metavar="LEVEL"),
]
MispDistributionOption = Annotated[
    int,
    typer.Option(
        "--misp-distribution",
        help="MISP event distribution: 0 your organisation, 1 this community, 2 connected "
        "communities, 3 all, 5 inherit.",
        metavar="N",
    ),
]
MispThreatOption = Annotated[
    int,
    typer.Option(
        "--misp-threat-level",
        min=1,
        max=4,
        help="MISP threat level: 1 high, 2 medium, 3 low, 4 undefined.",
        metavar="N",
    ),
]


def export_options(
    *,
    keep_path: bool = False,
    refang: bool = False,
    benign: Benign = "context",
    tlp: TLP | None = None,
    misp_distribution: int = 0,
    misp_threat_level: int = 4,
) -> ExportOptions:
    """The `ExportOptions` of a command's options (checked: a bad value is a usage error)."""
    from mitremap.export import ExportOptions
    from mitremap.export._misp import DISTRIBUTIONS

    if misp_distribution not in DISTRIBUTIONS:
        raise typer.BadParameter(
            f"{misp_distribution}: choose 0, 1, 2, 3 or 5 (4, a sharing group, is set in MISP)",
            param_hint="--misp-distribution",
        )
    return ExportOptions(
        keep_path=keep_path,
        refang=refang,
        benign=benign,
        tlp=tlp,
        misp_distribution=misp_distribution,
        misp_threat_level=misp_threat_level,
    )


# ---- progress --------------------------------------------------------------------------------


class StageProgress:
    """Progress of named stages (training steps, downloads): rich bars on a terminal, plain
    lines otherwise (CI, logs, nohup: where a bar would be silent for the whole run), nothing
    with --quiet. `update(stage, done, total)` is the callback the library takes."""

    def __init__(self, *, in_bytes: bool = False) -> None:
        self.in_bytes = in_bytes
        self.quiet = options.quiet
        self.plain = not err_console.is_terminal
        self._started = time.monotonic()
        self._last: dict[str, int] = {}
        self._printed: dict[str, str] = {}
        self._tasks: dict[str, TaskID] = {}
        self._display: Progress | None = None
        if not self.quiet and not self.plain:
            self._display = _bars(in_bytes)

    def __enter__(self) -> StageProgress:
        if self._display is not None:
            self._display.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._display is not None:
            self._display.stop()

    def update(self, stage: str, done: int, total: int | None) -> None:
        if self.quiet:
            return
        if self._display is not None:
            if stage not in self._tasks:
                self._tasks[stage] = self._display.add_task(stage, total=total)
            self._display.update(self._tasks[stage], completed=done, total=total)
            return
        # plain: a line when a stage starts, at every tenth of it, and when it ends
        previous = self._last.get(stage)
        self._last[stage] = done
        step = max((total or 0) // 10, 1)
        new_step = previous is None or done == total or done // step != previous // step
        if new_step and previous != done and (total is not None or previous is None):
            message = f"{stage}: {self._amount(done, total)}"
            if message != self._printed.get(stage):
                self._printed[stage] = message
                self.line(message)

    def line(self, message: str) -> None:
        """A line of its own (above the bars on a terminal), unless --quiet."""
        if self.quiet:
            return
        from rich.markup import escape

        elapsed = f" ({time.monotonic() - self._started:.0f} s)" if self.plain else ""
        # escaped, not markup=False: that would also turn markup off for the bars drawn with it
        err_console.print(escape(f"{message}{elapsed}"), highlight=False, soft_wrap=True)

    def _amount(self, done: int, total: int | None) -> str:
        if not self.in_bytes:
            return f"{done}/{total}"
        size = f"{done / 2**20:.1f}"
        return f"{size}/{total / 2**20:.1f} MB" if total else f"{size} MB"


def _bars(in_bytes: bool) -> Progress:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    amounts = (DownloadColumn(), TransferSpeedColumn()) if in_bytes else (MofNCompleteColumn(),)
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        *amounts,
        TimeElapsedColumn(),
        console=err_console,
    )
