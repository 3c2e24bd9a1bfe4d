"""What every CLI command shares: consoles, global options, the option types every command
spells the same way, progress, and how errors are shown."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from mitremap.data import DataResolver

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
