"""The Jupyter widget: the original MitreMap notebook's flow, without its install pain.

Paste a report or upload a file, pick the threshold (default 0.6), the window size and whether to
explain, press Analyze: the technique table with links, the text with evidence and attributions
highlighted, and the IoC table appear below. Errors show as one line in the widget.

The widget is a front end: it takes a loaded `MitreMap` (`widget(MitreMap.load())`); the core
never imports it.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING, Any

from mitremap.errors import MissingExtraError, MitreMapError

if TYPE_CHECKING:
    from mitremap.analysis import Analysis, MitreMap
    from mitremap.documents import Document

ACCEPTED = ".txt,.md,.markdown,.html,.htm,.pdf,.docx"


class MitreMapWidget:
    """The widget's controls and its `run()`; display it like any ipywidget."""

    def __init__(self, mitremap: MitreMap | None = None) -> None:
        try:
            import ipywidgets as w
        except ImportError as exc:
            raise MissingExtraError("ipywidgets", "notebook", "The notebook widget") from exc
        self._mitremap = mitremap
        self.text = w.Textarea(
            placeholder="Paste a threat report here, or upload a file…",
            layout=w.Layout(width="100%", height="12em"),
        )
        self.upload = w.FileUpload(accept=ACCEPTED, multiple=False, description="Upload")
        self.threshold = w.FloatSlider(
            value=0.6, min=0.0, max=1.0, step=0.05, description="Threshold", readout_format=".2f"
        )
        self.window = w.IntSlider(value=3, min=1, max=10, description="Window")
        self.explain = w.Checkbox(value=True, description="Explain (attributions)")
        self.button = w.Button(description="Analyze", button_style="primary", icon="search")
        self.status = w.HTML()
        self.output = w.HTML()
        self.result: Analysis | None = None
        self.button.on_click(lambda _: self.run())
        self.box = w.VBox(
            [
                self.text,
                w.HBox([self.upload, self.threshold, self.window, self.explain, self.button]),
                self.status,
                self.output,
            ]
        )

    def run(self) -> Analysis | None:
        """Analyze the uploaded file, else the pasted text; show the result or a one-line error."""
        from mitremap.export import html_fragment

        self.status.value = "Analyzing…"
        started = time.perf_counter()
        try:
            document = self._document()
            if self._mitremap is None:
                from mitremap.analysis import MitreMap

                self._mitremap = MitreMap.load()
            self.result = self._mitremap.analyze(
                document,
                threshold=self.threshold.value,
                window=self.window.value,
                explain=self.explain.value,
                iocs=True,
            )
        except MitreMapError as exc:
            self.result = None
            self.output.value = ""
            self.status.value = f'<span style="color:#b00020">Error: {html.escape(str(exc))}</span>'
            return None
        elapsed = (time.perf_counter() - started) * 1000
        indicators = getattr(self.result, "indicators", None) or []
        self.status.value = (
            f"{len(self.result.techniques)} techniques and {len(indicators)} indicators "
            f"in {elapsed:.0f} ms"
        )
        self.output.value = html_fragment(self.result)
        return self.result

    def _document(self) -> Document:
        from mitremap.documents import Document

        uploads = self.upload.value
        if uploads:
            from mitremap.documents import read_bytes

            upload = uploads[0]
            return read_bytes(
                bytes(upload["content"]),
                name=upload["name"],
                origin=upload["name"],
                title=upload["name"],
            )
        if not self.text.value.strip():
            raise MitreMapError("Paste a report or upload a file first")
        return Document(self.text.value, title="pasted text")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)


def widget(mitremap: MitreMap | None = None) -> MitreMapWidget:
    """A ready-to-display widget; `mitremap` is a loaded `MitreMap` (default: the cached model)."""
    return MitreMapWidget(mitremap)
