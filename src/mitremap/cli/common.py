"""What every CLI command shares: consoles, global options, and how errors are shown."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


@dataclass
class Options:
    """Global options, set by the app callback before any command runs."""

    data_dir: Path | None = None
    debug: bool = False
    quiet: bool = False


options = Options()


def resolver():
    """The data resolver for this run (honours --data)."""
    from mitremap.data import DataResolver

    return DataResolver(data_dir=options.data_dir)
