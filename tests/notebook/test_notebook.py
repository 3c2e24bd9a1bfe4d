"""The Jupyter widget's flow, with a stand-in model; the example notebook run is in
test_notebook_example.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytest.importorskip("ipywidgets")

from mitremap.errors import InputError
from mitremap.notebook import widget
from tests.fakes import StandIn, as_model


def test_run_passes_controls_and_shows_results():
    model = StandIn()
    w = widget(as_model(model))
    assert w.threshold.value == 0.6 and w.window.value == 3  # the original's defaults
    w.text.value = "It created a scheduled task."
    w.threshold.value = 0.75
    w.window.value = 2
    w.explain.value = False
    result = w.run()
    call = model.calls[0]
    assert call["document"].text == "It created a scheduled task."
    assert call["threshold"] == 0.75 and call["window"] == 2 and call["explain"] is False
    assert call["iocs"] is True
    assert result is w.result
    assert "2 techniques and 1 indicators" in w.status.value
    assert "T1053.005" in w.output.value and "185[.]220[.]101[.]47" in w.output.value  # defanged
    assert "<script>alert" not in w.output.value  # the document is escaped here too


def test_upload_takes_precedence_over_text():
    model = StandIn()
    w = widget(as_model(model))
    w.text.value = "pasted"
    w.upload.value = (
        {
            "name": "report.txt",
            "type": "text/plain",
            "size": 22,
            "content": memoryview(b"uploaded report text.\n"),
            "last_modified": datetime.now(UTC),
        },
    )
    w.run()
    document = model.calls[0]["document"]
    assert document.text.strip() == "uploaded report text." and document.title == "report.txt"


def test_errors_are_one_line_in_the_widget():
    w = widget(as_model(StandIn(fail=InputError("report.pdf is a damaged PDF <x>"))))
    w.text.value = "text"
    assert w.run() is None
    assert "Error: report.pdf is a damaged PDF &lt;x&gt;" in w.status.value and w.output.value == ""
    empty = widget(as_model(StandIn()))
    assert empty.run() is None and "Paste a report" in empty.status.value
