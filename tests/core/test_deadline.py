"""The deadline that stops the work: made once, checked in every loop that can run long."""

from __future__ import annotations

import math
import time

import pytest

from mitremap.deadline import Deadline
from mitremap.errors import MitreMapError, TimeLimitError


def test_a_deadline_passes_and_says_so_in_one_line():
    deadline = Deadline.after(0.05, "give it more time with --time-limit")
    deadline.check("reading")  # not yet
    assert 0 < deadline.left() <= 0.05
    time.sleep(0.06)
    assert deadline.expired() and deadline.left() == 0
    with pytest.raises(TimeLimitError) as raised:
        deadline.check("reading the PDF")
    assert isinstance(raised.value, MitreMapError)
    assert str(raised.value) == (
        "stopped at the time limit of 0.05 s while reading the PDF: "
        "give it more time with --time-limit"
    )


def test_no_limit_never_passes():
    for deadline in (Deadline.none(), Deadline.after(None), Deadline.after(math.inf)):
        assert not deadline.limited and not deadline.expired()
        assert deadline.left() == math.inf
        deadline.check()


def test_a_limit_must_be_positive():
    with pytest.raises(ValueError):
        Deadline.after(0)
