"""The `mitremap` command line. Each command group lives in its own module with a `register(app)`.

Errors a user can fix (`MitreMapError`) print one line and exit 1; `--debug` shows the traceback.
Output is for people on a terminal and for programs anywhere else (`cli.render`): tables and bars
on a terminal, tab-separated lines when piped; every JSON output names its `schema_version`
(`mitremap schema NAME` prints the schema). `--install-completion` sets up shell completion.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mitremap import __version__
from mitremap.cli.common import err_console, options, printable
from mitremap.errors import MitreMapError

app = typer.Typer(
    name="mitremap",
    help="Map threat reports to MITRE ATT&CK techniques and extract indicators of compromise.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

COMMAND_MODULES = (
    "attack", "data", "model", "analyze", "diff", "similar", "iocs", "batch", "serve", "schema",
)  # fmt: skip


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mitremap {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Data mirror folder (overrides $MITREMAP_DATA).", metavar="DIR"
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    options.data_dir = data
    options.debug = debug
    options.quiet = quiet


for _name in COMMAND_MODULES:
    importlib.import_module(f"mitremap.cli.{_name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn user-fixable errors into one line and exit code 1."""
    args = sys.argv[1:] if argv is None else argv
    try:
        app(args=args, prog_name="mitremap")  # standalone: usage errors exit 2, success exits 0
    except MitreMapError as exc:
        if options.debug or "--debug" in args:
            raise
        err_console.print(
            f"[bold red]error:[/] {escape(printable(str(exc)))}", highlight=False, soft_wrap=True
        )
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
