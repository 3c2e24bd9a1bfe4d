"""Checks every registered export format must pass (as scikit-learn's estimator checks): it
renders an ordinary analysis, a hostile and non-ASCII one, and an empty one, and what it writes
is loaded by its consumer's own library. A format added to `EXPORT_FORMATS` without a consumer
here fails `test_every_format_has_a_consumer_check`."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

import pytest

from mitremap import export
from mitremap.documents import Document
from mitremap.errors import MitreMapError
from tests.export_kb import make_mirror
from tests.fakes import FakeAnalysis, make_analysis

TITLE = "Ünïcødé ☃ تقرير 🦊"


def _json(content):
    return json.dumps(json.loads(content), ensure_ascii=False)


def _csv(content):
    rows = list(csv.DictReader(io.StringIO(content, newline="")))
    assert all(len(r) == len(export.CSV_COLUMNS) for r in rows)
    return json.dumps(rows, ensure_ascii=False)


def _navigator(content):
    navlayers = pytest.importorskip("mitreattack.navlayers")
    layer = navlayers.Layer()
    layer.from_dict(json.loads(content))
    return layer.layer.name


def _stix(content):
    validator = pytest.importorskip("stix2validator")
    options = validator.ValidationOptions(strict=True, version="2.1")
    assert validator.validate_string(content, options).errors == []
    return _json(content)


def _misp(content):
    pymisp = pytest.importorskip("pymisp")
    event = pymisp.MISPEvent()
    event.load(content)
    return event.info


def _markdown(content):
    assert "<script>" not in content
    return content


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _html(content):
    parser = _Tags()
    parser.feed(content)
    assert "script" not in parser.tags
    return "".join(parser.text)


def _docx(content):
    docx = pytest.importorskip("docx")
    document = docx.Document(io.BytesIO(content))
    return "\n".join(p.text for p in document.paragraphs)


CONSUMERS = {
    "json": _json,
    "csv": _csv,
    "navigator": _navigator,
    "stix": _stix,
    "misp": _misp,
    "markdown": _markdown,
    "html": _html,
    "docx": _docx,
}
NEEDS = {"stix": "stix2", "misp": "pymisp", "docx": "docx"}


@pytest.fixture(autouse=True)
def tiny_attack(monkeypatch, tmp_path):
    """ATT&CK for the STIX export: a tiny mirror, never a download."""
    monkeypatch.setenv("MITREMAP_DATA", str(make_mirror(tmp_path / "data")))
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MITREMAP_OFFLINE", "1")


def _hostile() -> FakeAnalysis:
    analysis = make_analysis()
    data = analysis.to_dict()
    data["document"]["title"] = TITLE
    data["techniques"][0]["evidence"][0]["text"] = '=HYPERLINK("http://evil.example","ü")'

    class Hostile:
        document = analysis.document

        def to_dict(self):
            return data

    return Hostile()  # type: ignore[return-value]


def _render(analysis, fmt):
    if fmt in NEEDS:
        pytest.importorskip(NEEDS[fmt])
    content = export.render(analysis, fmt, iocs=True)
    assert isinstance(content, bytes) is export.EXPORT_FORMATS[fmt].binary
    return content


def test_every_format_has_a_consumer_check():
    assert set(CONSUMERS) == set(export.EXPORT_FORMATS) == set(export.FORMATS)


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_an_ordinary_analysis_loads_in_its_consumer(fmt):
    read = CONSUMERS[fmt](_render(make_analysis(), fmt))
    if fmt != "csv":  # the CSV is the technique table: it carries no title
        assert "one" in read


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_a_hostile_non_ascii_analysis_loads_in_its_consumer(fmt):
    read = CONSUMERS[fmt](_render(_hostile(), fmt))
    if fmt != "csv":
        assert TITLE in read
    else:
        assert "'=HYPERLINK" in read


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_an_empty_analysis(fmt):
    empty = FakeAnalysis(Document("nothing here", title="quiet"), techniques=[], indicators=[])
    if fmt == "stix":  # a STIX report must refer to something
        pytest.importorskip("stix2")
        with pytest.raises(MitreMapError, match="Nothing to export"):
            export.render(empty, fmt)
        return
    CONSUMERS[fmt](_render(empty, fmt))


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_content_types(fmt):
    exporter = export.EXPORT_FORMATS[fmt]
    assert exporter.extension.startswith(".")
    if exporter.binary:
        assert "charset" not in exporter.content_type
    else:
        assert exporter.content_type == exporter.media_type + "; charset=utf-8"
