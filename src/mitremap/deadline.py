"""A time limit that stops the work, not only the wait for it.

A `Deadline` is made once, where the work is asked for (a CLI command, a server request, a
batch job), and passed down through reading and analysis; every loop that can run long calls
`check()`, which raises `TimeLimitError` once the time is up. So the work itself ends at its
deadline: a server thread is free again when it answers 504, instead of running on unseen.
Work that cannot be stopped from inside (a third-party parser) runs in a child process that is
killed at `left()` (see `documents.pdf`).

`Deadline.none()` never expires; every function that takes a deadline defaults to it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from mitremap.errors import TimeLimitError

DEFAULT_TIME_LIMIT_S = 300.0
"""The CLI's default time limit per document (`--time-limit`)."""


@dataclass(frozen=True)
class Deadline:
    """The moment (on the monotonic clock) by which the work must be done.

    `seconds` is the limit it was made with and `advice` what the user can do about it, both
    for the message; `math.inf` means no limit.
    """

    at: float
    seconds: float
    advice: str = "allow more time, or split the report"

    @classmethod
    def after(cls, seconds: float | None, advice: str = "") -> Deadline:
        """A deadline `seconds` from now (None or infinity: no limit)."""
        if seconds is None or math.isinf(seconds):
            return cls.none()
        if not seconds > 0:
            raise ValueError("a time limit must be a positive number of seconds")
        if advice:
            return cls(time.monotonic() + seconds, float(seconds), advice)
        return cls(time.monotonic() + seconds, float(seconds))

    @classmethod
    def none(cls) -> Deadline:
        """No time limit."""
        return cls(math.inf, math.inf)

    @property
    def limited(self) -> bool:
        return not math.isinf(self.at)

    def left(self) -> float:
        """Seconds left (never below 0; infinity without a limit)."""
        return max(0.0, self.at - time.monotonic()) if self.limited else math.inf

    def expired(self) -> bool:
        return self.limited and time.monotonic() >= self.at

    def check(self, doing: str = "") -> None:
        """Raise `TimeLimitError` if the time is up; `doing` names the work in the message."""
        if self.expired():
            raise self.error(doing)

    def error(self, doing: str = "") -> TimeLimitError:
        """The error for this deadline having passed while `doing`."""
        what = f" while {doing}" if doing else ""
        return TimeLimitError(
            f"stopped at the time limit of {self.seconds:g} s{what}: {self.advice}"
        )
