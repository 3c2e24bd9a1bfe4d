"""Exports, each checked by its consumer's rules: Navigator layer format 4.5, STIX 2.1, CSV,
Markdown, and HTML that escapes everything from the document."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser

import pytest

from mitremap import export
from mitremap.documents import Document
from mitremap.errors import MitreMapError
from tests.fakes import FakeAnalysis, make_analysis

# ---- Navigator layer, checked against the layer format 4.5 rules ------------------------------

LAYER_SCHEMA = {
    "type": "object",
    "required": ["name", "domain", "versions"],
    "properties": {
        "name": {"type": "string"},
        "domain": {"enum": ["enterprise-attack", "mobile-attack", "ics-attack"]},
        "versions": {
            "type": "object",
            "required": ["navigator", "layer"],
            "properties": {
                "layer": {"const": "4.5"},
                "attack": {"type": "string"},
                "navigator": {"type": "string"},
            },
        },
        "sorting": {"enum": [0, 1, 2, 3]},
        "hideDisabled": {"type": "boolean"},
        "techniques": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["techniqueID"],
                "additionalProperties": False,
                "properties": {
                    "techniqueID": {"type": "string", "pattern": r"^T\d{4}(\.\d{3})?$"},
                    "tactic": {"type": "string"},
                    "comment": {"type": "string"},
                    "enabled": {"type": "boolean"},
                    "score": {"type": "number"},
                    "color": {"type": "string"},
                    "showSubtechniques": {"type": "boolean"},
                    "metadata": {
                        "type": "array",
                        "items": {"type": "object", "required": ["name", "value"]},
                    },
                    "links": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["label", "url"],
                            "properties": {"url": {"type": "string", "pattern": "^https?://"}},
                        },
                    },
                },
            },
        },
        "gradient": {
            "type": "object",
            "required": ["colors", "minValue", "maxValue"],
            "properties": {"colors": {"type": "array", "minItems": 2}},
        },
        "legendItems": {"type": "array"},
        "metadata": {"type": "array", "items": {"type": "object", "required": ["name", "value"]}},
        "links": {"type": "array", "items": {"type": "object", "required": ["label", "url"]}},
        "layout": {
            "type": "object",
            "properties": {
                "layout": {"enum": ["side", "flat", "mini"]},
                "expandedSubtechniques": {"enum": ["none", "all", "annotated"]},
            },
        },
    },
}


def test_navigator_layer_follows_the_layer_format():
    jsonschema = pytest.importorskip("jsonschema")
    layer = export.to_navigator(make_analysis())
    jsonschema.validate(layer, LAYER_SCHEMA)
    navigator = tuple(int(x) for x in layer["versions"]["navigator"].split("."))
    assert navigator >= (4, 9, 0)  # the format requires at least 4.9.0
    assert layer["versions"]["attack"] == "18"
    assert layer["gradient"]["maxValue"] > layer["gradient"]["minValue"]
    task = layer["techniques"][0]
    assert task["techniqueID"] == "T1053.005" and task["score"] == 91  # percent: whole steps
    assert [t["tactic"] for t in layer["techniques"] if t["techniqueID"] == "T1053.005"] == [
        "execution",
        "persistence",
        "privilege-escalation",
    ]  # one entry per tactic: mitreattack-python expands a parent only for a named tactic
    assert layer["gradient"] == {**layer["gradient"], "minValue": 0, "maxValue": 100}
    parents = [t for t in layer["techniques"] if t["techniqueID"] == "T1053"]
    assert len(parents) == 3 and all(p["showSubtechniques"] for p in parents)  # else hidden
    assert all("score" not in p for p in parents)  # listed, not found
    assert ":" not in layer["name"] and len(layer["name"]) <= 31  # an Excel sheet title
    assert task["comment"] == "It created a scheduled task named Updater for persistence."
    assert layer["links"] == [{"label": "report", "url": "https://example.org/report"}]
    json.dumps(layer)  # serialisable as is


def test_csv_cells_never_run_as_formulas():
    analysis = make_analysis()
    data = analysis.to_dict()
    data["techniques"][0]["evidence"][0]["text"] = '=HYPERLINK("http://evil.example","x")'
    data["techniques"][0]["technique_name"] = "+cmd|' /C calc'!A0"

    class Rows:
        def to_dict(self):
            return data

        document = analysis.document

    rows = list(csv.DictReader(io.StringIO(export.to_csv(Rows()))))
    assert rows[0]["evidence"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[0]["technique_name"].startswith("'+cmd")
    assert rows[1]["technique"] == "T1566"  # ordinary cells untouched
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert _one_cell(start + "1+1") == "'" + start + "1+1"
    assert _one_cell("1+1") == "1+1"


def _one_cell(value: str) -> str:
    out = io.StringIO()
    writer = export.SafeWriter(out, ("cell",))
    writer.writerow({"cell": value})
    return next(csv.reader(io.StringIO(out.getvalue(), newline="")))[0]


def test_csv_offsets_stay_integers_in_pandas():
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(io.StringIO(export.to_csv(make_analysis(), iocs=True)))
    assert list(frame["kind"]) == ["technique", "technique", "indicator"]
    assert str(frame["start"].dtype) == "int64" and str(frame["end"].dtype) == "int64"
    assert str(frame["confidence_score"].dtype) == "float64"
    task, _, ip = frame.to_dict("records")
    text = make_analysis().document.text
    assert text[task["start"] : task["end"]].startswith("It created a scheduled task")
    assert text[ip["start"] : ip["end"]] == ip["value"] == "185.220.101.47"
    indicators = frame[frame["kind"] == "indicator"]
    assert str(indicators["start"].dtype) == "int64"


def test_navigator_layer_without_url_has_no_report_link():
    layer = export.to_navigator(make_analysis(origin="/tmp/report.txt"))
    assert layer["links"] == []


# ---- STIX 2.1 --------------------------------------------------------------------------------


def test_stix_bundle_parses_and_validates():
    stix2 = pytest.importorskip("stix2")
    from tests.export_kb import make_kb

    kb = make_kb()
    bundle = export.to_stix(make_analysis(), kb=kb)
    parsed = stix2.parse(json.dumps(bundle), allow_custom=False)
    types = [o.type for o in parsed.objects]
    assert types.count("attack-pattern") == 2 and types.count("report") == 1
    assert "indicator" in types and "note" in types
    report = next(o for o in parsed.objects if o.type == "report")
    ids = {o.id for o in parsed.objects}
    assert set(report.object_refs) <= ids
    pattern = next(
        o for o in parsed.objects if o.type == "attack-pattern" and o.name == "Scheduled Task"
    )
    assert pattern.external_references[0].external_id == "T1053.005"
    assert pattern.id == kb["T1053.005"].stix_id
    note = next(o for o in parsed.objects if o.type == "note" and pattern.id in o.object_refs)
    assert note.confidence == 91
    indicator = next(o for o in parsed.objects if o.type == "indicator")
    assert indicator.pattern == "[ipv4-addr:value = '185.220.101.47']"
    validator = pytest.importorskip("stix2validator")
    results = validator.validate_string(
        json.dumps(bundle), validator.ValidationOptions(strict=True)
    )
    assert results.is_valid, [str(e) for e in results.errors]


def test_stix_with_nothing_to_export_is_an_error():
    pytest.importorskip("stix2")
    empty = FakeAnalysis(Document("nothing here"), techniques=[], indicators=[])
    with pytest.raises(MitreMapError, match="Nothing to export"):
        export.to_stix(empty)


# ---- CSV, JSON, Markdown -----------------------------------------------------------------------


def test_csv_has_one_row_per_technique_and_indicator():
    rows = list(csv.DictReader(io.StringIO(export.to_csv(make_analysis(), iocs=True))))
    assert [r["kind"] for r in rows] == ["technique", "technique", "indicator"]
    assert rows[0]["tactics"] == "Execution; Persistence; Privilege Escalation"
    assert float(rows[0]["confidence_score"]) == pytest.approx(0.91)
    assert rows[2]["value"] == "185.220.101.47" and rows[2]["type"] == "ipv4"
    no_iocs = list(csv.DictReader(io.StringIO(export.to_csv(make_analysis()))))
    assert [r["kind"] for r in no_iocs] == ["technique", "technique"]


def test_json_is_the_analysis_dict():
    analysis = make_analysis()
    assert json.loads(export.render(analysis, "json")) == analysis.to_dict()


def test_markdown_tables_escape_the_document():
    text = export.to_markdown(make_analysis())
    assert (
        "| [T1053.005](https://attack.mitre.org/techniques/T1053/005/) | Scheduled Task |" in text
    )
    assert "<script>" not in text and "<b>" not in text
    assert "## Indicators of compromise" in text and "185\\[.\\]220\\[.\\]101\\[.\\]47" in text
    assert "185.220.101.47" not in text  # defanged in a document for people
    live = export.to_markdown(make_analysis(), export.ExportOptions(refang=True))
    assert "| ipv4 | 185.220.101.47 |" in live


def test_unknown_format():
    with pytest.raises(MitreMapError, match="Unknown format"):
        export.render(make_analysis(), "pdf")


# ---- HTML --------------------------------------------------------------------------------------


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and tag != "a":
                self.external.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_escapes_script_and_is_standalone():
    page = export.to_html(make_analysis())
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags and "b" not in parser.tags  # <script> and <b> stayed text
    assert "<script>alert('x')</script>" in "".join(parser.text)  # …and are shown as text
    assert parser.external == []  # no external resources: no src, no stylesheet links
    assert "&lt;script&gt;" in page


def test_html_highlights_evidence_attributions_and_indicators():
    page = export.to_html(make_analysis())
    assert 'class="ev pos"' in page  # "scheduled task": evidence and a positive attribution
    assert 'title="evidence: T1053.005; attribution +1.300"' in page
    assert 'class="ev neg"' in page
    assert 'class="ioc"' in page and "indicator: ipv4" in page
    assert '<a href="https://attack.mitre.org/techniques/T1566/"' in page


def test_html_matrix_shows_techniques_by_tactic_coloured_by_confidence():
    analysis = make_analysis()
    data = analysis.to_dict()
    data["techniques"][1]["tactics"] = ["<img src=x onerror=alert(1)>", "Initial Access"]

    class Hostile:
        document = analysis.document

        def to_dict(self):
            return data

    page = export.to_html(Hostile())
    matrix = page[page.index('<table class="matrix">') :]
    matrix = matrix[: matrix.index("</table>")]
    header = re.findall(r"<th>(.*?)</th>", matrix)
    assert header == [
        "Initial Access",
        "Execution",
        "Persistence",
        "Privilege Escalation",
        "&lt;img src=x onerror=alert(1)&gt;",  # escaped, and after ATT&CK's own tactics
    ]
    task = re.findall(
        r'<td style="background:(#[0-9a-f]{6});color:#fff" title="confidence 0.91">'
        r'<span class="id">T1053.005</span>Scheduled Task</td>',
        matrix,
    )
    assert len(task) == 3  # in each of its three tactics, dark red for 0.91
    # 0.91 sits 82% of the way from #fdbb84 to #d7301f; 0.70 sits 40% of the way
    assert task[0] == "#de4931"
    phish = re.search(r'background:(#[0-9a-f]{6});color:#1d1d1f" title="confidence 0.70"', matrix)
    assert phish and phish.group(1) == "#ee835c"
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags and "img" not in parser.tags and parser.external == []


def test_html_with_no_hits_says_so():
    page = export.to_html(FakeAnalysis(Document("plain text"), techniques=[], indicators=[]))
    assert "No technique reached the threshold of 0.6" in page and "No indicator found" in page


def test_markdown_and_html_carry_the_defence_when_asked_for():
    analysis = make_analysis()
    data = analysis.to_dict()
    data["defend"] = {
        "attack_version": "18.1",
        "mitigations": [
            {
                "id": "M1028",
                "name": "Operating System <Configuration>",
                "score": 0.91,
                "webpage_link": "https://attack.mitre.org/mitigations/M1028/",
                "techniques": [{"technique": "T1053.005", "confidence": 0.91}],
            }
        ],
    }

    class Defended:
        document = analysis.document

        def to_dict(self):
            return data

    markdown = export.to_markdown(Defended())
    assert "## How to defend (ATT&CK 18.1)" in markdown and "<Configuration>" not in markdown
    page = export.to_html(Defended())
    assert "Operating System &lt;Configuration&gt;" in page
    assert "How to defend" not in export.to_html(make_analysis())  # only when asked for


def test_html_marks_attck_names_in_the_text_escaped():
    from mitremap.export._html import _highlight
    from mitremap.schema import EntityJSON

    text = "They ran Mimikatz <b>."
    entity: EntityJSON = {
        "start": 9,
        "end": 17,
        "kind": "software",
        "name": "Mimi<katz>",
        "id": "S0002",
        "webpage_link": "https://attack.mitre.org/software/S0002/",
    }
    marked = _highlight(text, [], [], [entity])
    assert '<span class="ent" title="ATT&amp;CK software: Mimi&lt;katz&gt; (S0002)">' in marked
    assert "&lt;b&gt;" in marked and "<b>" not in marked
