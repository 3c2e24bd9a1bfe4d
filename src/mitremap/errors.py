"""Errors a user can act on.

Every failure that a user can fix is a `MitreMapError` whose message says what is wrong and
what to do. Front ends print the message on one line and exit with status 1; anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations


class MitreMapError(Exception):
    """Base class: a problem the user can fix; `str(error)` is the one-line message."""


class DataError(MitreMapError):
    """A data file is missing, unreadable, or not what it should be."""


class DataNotFoundError(DataError):
    """No mirror, cache or download could provide a data file."""


class DownloadError(DataError):
    """A download failed or did not verify."""


class UnknownTechniqueError(MitreMapError, KeyError):
    """An ATT&CK id that the loaded knowledge base does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelError(MitreMapError):
    """A model folder is missing, corrupt, or incompatible."""


class OutputError(MitreMapError):
    """An output file or folder cannot be written (missing folder, read-only, disk full)."""


class InputError(MitreMapError):
    """An input document cannot be read (empty, binary, too large, corrupt, unreachable)."""


class TooLargeInputError(InputError):
    """An input larger than the limit it is read under (the web app answers 413 for it)."""


class TimeLimitError(MitreMapError):
    """Work ran past its time limit and was stopped there (see `mitremap.deadline`)."""


class MissingExtraError(MitreMapError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'mitremap[{extra}]'"
        )
        self.package = package
        self.extra = extra
