"""The workspace's errors, each with the HTTP status and code the API answers with.

They are `MitreMapError`s: the CLI prints them on one line like any other user error.
"""

from __future__ import annotations

from typing import Any

from mitremap.errors import MitreMapError


class WorkspaceError(MitreMapError):
    status = 400
    code = "bad_request"


class BadRequestError(WorkspaceError):
    """A request that cannot be served as it is (nothing to analyse, a URL that is not http)."""


class DatabaseError(WorkspaceError):
    """The workspace database cannot be opened, brought up to date, or written."""

    status = 503
    code = "busy"


class UnauthorizedError(WorkspaceError):
    status = 401
    code = "unauthorized"


class ForbiddenError(WorkspaceError):
    status = 403
    code = "forbidden"


class NotFoundError(WorkspaceError):
    status = 404
    code = "not_found"


class ConflictError(WorkspaceError):
    status = 409
    code = "conflict"


class StaleError(ConflictError):
    """A change made on a version of the report that another one has overtaken: what it is
    about was changed meanwhile. `current` says how it stands now, and who changed it."""

    code = "stale"

    def __init__(self, message: str, current: dict[str, Any]) -> None:
        super().__init__(message)
        self.current = current


class NotAcceptableError(WorkspaceError):
    """The client accepts no media type this answer comes in (TAXII's 406)."""

    status = 406
    code = "not_acceptable"


class TooLargeError(WorkspaceError):
    status = 413
    code = "too_large"


class InvalidError(WorkspaceError):
    """A well-formed request that asks for something impossible (an unknown technique, a
    passage outside the text)."""

    status = 422
    code = "validation_error"


class TooManyAttemptsError(WorkspaceError):
    """Too many failed logins for one user name in a short time."""

    status = 429
    code = "too_many_requests"


class BusyError(WorkspaceError):
    """The worker pool is full."""

    status = 503
    code = "busy"


class TimeLimitError(WorkspaceError):
    """An analysis ran out of time."""

    status = 504
    code = "timeout"
