"""Exports an analysis in the formats analysts' tools read as they are.

JSON (the CLI schema), CSV, an ATT&CK Navigator layer (format 4.5), a STIX 2.1 bundle, Markdown
and a standalone HTML report. Every exporter reads the analysis through its stable JSON form
(`Analysis.to_dict()`) plus the document text, so they stay independent of the model's classes.
Everything that comes from the document is escaped: a report is data, never markup.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, Protocol

from mitremap import __version__
from mitremap.errors import MissingExtraError, MitreMapError

NAVIGATOR_VERSION = "5.2.0"
LAYER_FORMAT = "4.5"
MAX_COMMENT = 500


class Exportable(Protocol):
    """What an exporter needs: the analysis' JSON form and the document text offsets point into."""

    def to_dict(self) -> dict[str, Any]: ...

    @property
    def document(self) -> Any: ...


def _data(analysis: Exportable) -> tuple[dict[str, Any], str]:
    return analysis.to_dict(), getattr(analysis.document, "text", "")


def _tactic_names(technique: dict[str, Any]) -> list[str]:
    return [t["name"] if isinstance(t, dict) else str(t) for t in technique.get("tactics", ())]


def _title(data: dict[str, Any]) -> str:
    document = data.get("document", {})
    return document.get("title") or document.get("origin") or "report"


def _best_evidence(technique: dict[str, Any]) -> str:
    evidence = sorted(technique.get("evidence", ()), key=lambda e: -e.get("confidence", 0))
    return " ".join(evidence[0].get("text", "").split()) if evidence else ""


# ---- JSON and CSV ---------------------------------------------------------------------------


def to_json(analysis: Exportable, indent: int | None = 2) -> str:
    data, _ = _data(analysis)
    return json.dumps(data, indent=indent, ensure_ascii=False)


CSV_COLUMNS = (
    "record",
    "technique",
    "technique_name",
    "tactics",
    "webpage_link",
    "confidence_score",
    "evidence",
    "type",
    "value",
    "raw",
    "start",
    "end",
)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (`=HYPERLINK(…)` in an evidence
    sentence: CWE-1236) is written with a leading apostrophe, which shows it as text."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class _SafeWriter(csv.DictWriter):
    def writerow(self, rowdict: Any) -> Any:
        return super().writerow({k: _cell(v) for k, v in rowdict.items()})


def to_csv(analysis: Exportable, iocs: bool = False) -> str:
    """One row per technique (record=technique); with `iocs`, one more per indicator."""
    data, _ = _data(analysis)
    out = io.StringIO()
    writer = _SafeWriter(out, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for t in data.get("techniques", ()):
        writer.writerow(
            {
                "record": "technique",
                "technique": t["technique"],
                "technique_name": t.get("technique_name", ""),
                "tactics": "; ".join(_tactic_names(t)),
                "webpage_link": t.get("webpage_link", ""),
                "confidence_score": f"{t.get('confidence_score', 0):.4f}",
                "evidence": " | ".join(
                    " ".join(e.get("text", "").split()) for e in t.get("evidence", ())
                ),
            }
        )
    if iocs:
        for i in data.get("indicators", ()):
            writer.writerow(
                {
                    "record": "indicator",
                    **{k: i.get(k, "") for k in ("type", "value", "raw", "start", "end")},
                }
            )
    return out.getvalue()


# ---- ATT&CK Navigator -----------------------------------------------------------------------


def to_navigator(analysis: Exportable, name: str | None = None) -> dict[str, Any]:
    """An ATT&CK Navigator layer (format 4.5): score = confidence, comment = best evidence."""
    data, _ = _data(analysis)
    model = data.get("model", {})
    attack_version = str(model.get("attack_version", "")).split(".")[0] or None
    document = data.get("document", {})
    origin = document.get("origin", "")
    threshold = data.get("threshold", 0.6)
    hits = data.get("techniques", ())
    parents_with_subs = {t["technique"].split(".")[0] for t in hits if "." in t["technique"]}
    techniques = []
    for t in hits:
        comment = _best_evidence(t)
        techniques.append(
            {
                "techniqueID": t["technique"],
                # 0–100: Navigator's gradient (and mitreattack-python's) needs whole-number steps
                "score": round(100 * float(t.get("confidence_score", 0))),
                "comment": comment[:MAX_COMMENT],
                "enabled": True,
                "metadata": [
                    {"name": "confidence", "value": f"{t.get('confidence_score', 0):.2f}"},
                    {"name": "evidence spans", "value": str(len(t.get("evidence", ())))},
                ],
                "links": [{"label": "ATT&CK", "url": t["webpage_link"]}]
                if t.get("webpage_link")
                else [],
                "showSubtechniques": t["technique"] in parents_with_subs,
            }
        )
    found = {t["technique"] for t in hits}
    for parent in sorted(parents_with_subs - found):
        # a sub-technique shows only under an expanded parent: list the parent, unscored
        techniques.append({"techniqueID": parent, "enabled": True, "showSubtechniques": True})
    layer: dict[str, Any] = {
        # no ':' and at most 31 characters: the name becomes an Excel sheet title in exports
        "name": _sheet_safe(name or f"MitreMap - {_title(data)}"),
        "versions": {"navigator": NAVIGATOR_VERSION, "layer": LAYER_FORMAT},
        "domain": "enterprise-attack",
        "description": f"ATT&CK techniques found by MitreMap {__version__} in {origin or 'a report'} "
        f"(confidence ≥ {threshold}).",
        "sorting": 3,
        "layout": {
            "layout": "side",
            "showID": True,
            "showName": True,
            "expandedSubtechniques": "annotated",
        },
        "hideDisabled": False,
        "techniques": techniques,
        "gradient": {"colors": ["#fff7ec", "#fdbb84", "#d7301f"], "minValue": 0, "maxValue": 100},
        "legendItems": [],
        "metadata": [
            {"name": "generated by", "value": f"MitreMap {__version__}"},
            {"name": "source", "value": origin or "text"},
            {"name": "threshold", "value": str(threshold)},
        ],
        "links": [{"label": "report", "url": origin}]
        if origin.startswith(("http://", "https://"))
        else [],
    }
    if attack_version:
        layer["versions"]["attack"] = attack_version
    return layer


def _sheet_safe(name: str) -> str:
    return re.sub(r"[:\\/?*\[\]]", "-", " ".join(name.split()))[:31].strip() or "MitreMap"


# ---- STIX 2.1 -------------------------------------------------------------------------------


def to_stix(analysis: Exportable) -> dict[str, Any]:
    """A STIX 2.1 bundle: a report referencing attack-patterns (with ATT&CK ids), a note with
    each technique's evidence, and indicators with STIX patterns for the IoCs."""
    try:
        import stix2
    except ImportError as exc:
        raise MissingExtraError("stix2", "stix", "STIX export") from exc
    from mitremap.iocs import Indicator
    from mitremap.iocs.stix import stix_pattern

    data, _ = _data(analysis)
    now = datetime.now(UTC)
    tool = stix2.Identity(
        name="MitreMap",
        identity_class="system",
        description=f"MitreMap {__version__} automated ATT&CK mapping",
    )
    objects: list[Any] = []
    for t in data.get("techniques", ()):
        pattern = stix2.AttackPattern(
            name=t.get("technique_name") or t["technique"],
            created_by_ref=tool,
            confidence=max(0, min(100, round(100 * float(t.get("confidence_score", 0))))),
            external_references=[
                {
                    "source_name": "mitre-attack",
                    "external_id": t["technique"],
                    "url": t.get("webpage_link") or None,
                }
            ],
        )
        objects.append(pattern)
        evidence = [" ".join(e.get("text", "").split()) for e in t.get("evidence", ())]
        if evidence:
            objects.append(
                stix2.Note(
                    abstract=f"Evidence for {t['technique']}",
                    content="\n\n".join(evidence),
                    object_refs=[pattern],
                    created_by_ref=tool,
                )
            )
    for item in data.get("indicators", ()):
        indicator = Indicator(**{k: item[k] for k in ("type", "value", "raw", "start", "end")})
        pattern = stix_pattern(indicator)
        if pattern is not None:
            objects.append(
                stix2.Indicator(
                    name=f"{indicator.type}: {indicator.value}"[:250],
                    pattern=pattern,
                    pattern_type="stix",
                    valid_from=now,
                    created_by_ref=tool,
                )
            )
    if not objects:
        raise MitreMapError("Nothing to export as STIX: no technique or indicator was found")
    report = stix2.Report(
        name=_title(data)[:250],
        published=now,
        report_types=["threat-report"],
        object_refs=[o.id for o in objects],
        created_by_ref=tool,
        description=f"Generated by MitreMap {__version__} from {data.get('document', {}).get('origin', 'text')}",
    )
    bundle = stix2.Bundle(tool, *objects, report)
    return json.loads(bundle.serialize())


# ---- Markdown --------------------------------------------------------------------------------


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell (and free of raw HTML)."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    for char in "\\|`*_[]<>":
        text = text.replace(char, "\\" + char)
    return text


def to_markdown(analysis: Exportable) -> str:
    data, _ = _data(analysis)
    lines = [f"# MitreMap: {_md(_title(data))}", ""]
    origin = data.get("document", {}).get("origin")
    if origin:
        lines += [f"Source: {_md(origin)}  ", ""]
    threshold = data.get("threshold", 0.6)
    hits = data.get("techniques", ())
    lines += [f"## ATT&CK techniques (confidence ≥ {threshold})", ""]
    if hits:
        lines += ["| technique | name | tactics | confidence | evidence |", "|---|---|---|---|---|"]
        for t in hits:
            link = (
                f"[{t['technique']}]({t['webpage_link']})"
                if t.get("webpage_link")
                else t["technique"]
            )
            lines.append(
                f"| {link} | {_md(t.get('technique_name', ''))} | "
                f"{_md(', '.join(_tactic_names(t)))} | {t.get('confidence_score', 0):.2f} | "
                f"{_md(_best_evidence(t)[:300])} |"
            )
    else:
        lines.append(f"No technique reached the threshold of {threshold}.")
    indicators = data.get("indicators")
    if indicators is not None:
        lines += ["", "## Indicators of compromise", ""]
        if indicators:
            lines += ["| type | value | as written |", "|---|---|---|"]
            lines += [
                f"| {_md(i['type'])} | {_md(i['value'])} | {_md(i['raw'])} |" for i in indicators
            ]
        else:
            lines.append("No indicator found.")
    return "\n".join(lines) + "\n"


# ---- HTML ------------------------------------------------------------------------------------

_CSS = """
.mitremap{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d1d1f;line-height:1.5}
.mitremap h1{font-size:1.5rem}.mitremap h2{font-size:1.2rem;margin-top:2rem}
.mitremap table{border-collapse:collapse;width:100%;font-size:.9rem}
.mitremap th,.mitremap td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
.mitremap th{background:#f5f5f7}
.mitremap .conf{font-variant-numeric:tabular-nums}
.mitremap .doc{white-space:pre-wrap;border:1px solid #ddd;border-radius:6px;padding:1rem;background:#fcfcfc}
.mitremap .ev{background:#fff3b0;border-bottom:2px solid #e0a800}
.mitremap .pos{box-shadow:inset 0 -0.6em rgba(215,48,31,var(--w))}
.mitremap .neg{box-shadow:inset 0 -0.6em rgba(49,130,189,var(--w))}
.mitremap .ioc{outline:1px dashed #6a3d9a}
.mitremap .muted{color:#666;font-size:.85rem}
.mitremap .legend span{margin-right:1rem}
"""
"""Every rule is scoped under `.mitremap`, so the fragment can sit inside a notebook page."""


def to_html(analysis: Exportable) -> str:
    """A standalone HTML report (inline CSS, no scripts, no external resources)."""
    data, _ = _data(analysis)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
            f"<title>MitreMap: {html.escape(_title(data))}</title></head>",
            '<body style="margin:2rem auto;max-width:70rem;padding:0 1rem">',
            html_fragment(analysis),
            "</body></html>",
        ]
    )


def html_fragment(analysis: Exportable) -> str:
    """The report as one `<div class="mitremap">` with its own scoped styles (for notebooks)."""
    data, text = _data(analysis)
    esc = html.escape
    title = _title(data)
    hits = data.get("techniques", ())
    threshold = data.get("threshold", 0.6)
    parts = [
        f'<div class="mitremap"><style>{_CSS}</style>',
        f"<h1>MitreMap: {esc(title)}</h1>",
        f'<p class="muted">Source: {esc(str(data.get("document", {}).get("origin", "text")))} · '
        f"MitreMap {esc(__version__)} · confidence ≥ {esc(str(threshold))}</p>",
        "<h2>ATT&amp;CK techniques</h2>",
    ]
    if hits:
        parts.append(
            "<table><tr><th>technique</th><th>name</th><th>tactics</th><th>confidence</th>"
            "<th>evidence</th></tr>"
        )
        for t in hits:
            link = t.get("webpage_link", "")
            ident = esc(t["technique"])
            cell = (
                f'<a href="{esc(link)}" target="_blank" rel="noopener noreferrer">{ident}</a>'
                if _safe_url(link)
                else ident
            )
            parts.append(
                f"<tr><td>{cell}</td><td>{esc(t.get('technique_name', ''))}</td>"
                f"<td>{esc(', '.join(_tactic_names(t)))}</td>"
                f'<td class="conf">{float(t.get("confidence_score", 0)):.2f}</td>'
                f"<td>{esc(_best_evidence(t)[:300])}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append(f"<p>No technique reached the threshold of {esc(str(threshold))}.</p>")
    indicators = data.get("indicators") or []
    if text:
        parts += [
            "<h2>Report</h2>",
            '<p class="legend muted"><span class="ev">evidence</span>'
            '<span class="pos" style="--w:.5">pushes a technique up</span>'
            '<span class="neg" style="--w:.5">pushes it down</span>'
            '<span class="ioc">indicator</span></p>',
            f'<div class="doc">{_highlight(text, hits, indicators)}</div>',
        ]
    if data.get("indicators") is not None:
        parts.append("<h2>Indicators of compromise</h2>")
        if indicators:
            parts.append(
                "<table><tr><th>type</th><th>value</th><th>as written</th><th>offset</th></tr>"
            )
            parts += [
                f"<tr><td>{esc(i['type'])}</td><td>{esc(i['value'])}</td><td>{esc(i['raw'])}</td>"
                f"<td>{int(i['start'])}</td></tr>"
                for i in indicators
            ]
            parts.append("</table>")
        else:
            parts.append("<p>No indicator found.</p>")
    parts.append("</div>")
    return "\n".join(parts)


def _safe_url(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def _highlight(text: str, hits: Any, indicators: Any) -> str:
    """The text with evidence, attributions and indicators marked; all of it escaped.

    Spans may overlap, so the text is cut at every span boundary and each piece gets the
    classes of everything covering it.
    """
    spans: list[tuple[int, int, str, Any]] = []
    for t in hits:
        for e in t.get("evidence", ()):
            spans.append((e["start"], e["end"], "ev", t["technique"]))
        for a in t.get("attributions", ()):
            spans.append((a["start"], a["end"], "attr", float(a.get("weight", 0))))
    for i in indicators:
        spans.append((i["start"], i["end"], "ioc", i["type"]))
    n = len(text)
    spans = [(max(0, s), min(n, e), k, v) for s, e, k, v in spans if 0 <= s < e]
    cuts = sorted({0, n, *(s for s, _, _, _ in spans), *(e for _, e, _, _ in spans)})
    top = max((abs(v) for _, _, k, v in spans if k == "attr"), default=0.0) or 1.0
    starts: dict[int, list[tuple[int, int, str, Any]]] = {}
    for span in spans:
        starts.setdefault(span[0], []).append(span)
    active: list[tuple[int, int, str, Any]] = []
    out = []
    for left, right in pairwise(cuts):
        active = [s for s in active if s[1] > left] + starts.get(left, [])
        piece = html.escape(text[left:right])
        if not active:
            out.append(piece)
            continue
        classes, titles = [], []
        techniques = sorted({v for _, _, k, v in active if k == "ev"})
        if techniques:
            classes.append("ev")
            titles.append("evidence: " + ", ".join(techniques))
        weight = sum(v for _, _, k, v in active if k == "attr")
        style = ""
        if weight:
            classes.append("pos" if weight > 0 else "neg")
            style = f' style="--w:{min(0.9, 0.15 + 0.75 * abs(weight) / top):.2f}"'
            titles.append(f"attribution {weight:+.3f}")
        iocs = sorted({v for _, _, k, v in active if k == "ioc"})
        if iocs:
            classes.append("ioc")
            titles.append("indicator: " + ", ".join(iocs))
        out.append(
            f'<span class="{" ".join(classes)}"{style} title="{html.escape("; ".join(titles))}">'
            f"{piece}</span>"
        )
    return "".join(out)


@dataclass(frozen=True)
class ExportFormat:
    """One export format, as the CLI and the server both offer it."""

    name: str
    extension: str  # for files written per report, e.g. ``.layer.json``
    media_type: str  # for HTTP answers
    render: Callable[[Exportable, bool], str]  # (analysis, with indicators) -> text


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("json", ".json", "application/json", lambda a, _: to_json(a)),
        ExportFormat("csv", ".csv", "text/csv", lambda a, iocs: to_csv(a, iocs=iocs)),
        ExportFormat(
            "navigator", ".layer.json", "application/json", lambda a, _: _json_text(to_navigator(a))
        ),
        ExportFormat("stix", ".stix.json", "application/json", lambda a, _: _json_text(to_stix(a))),
        ExportFormat("markdown", ".md", "text/markdown", lambda a, _: to_markdown(a)),
        ExportFormat("html", ".html", "text/html", lambda a, _: to_html(a)),
    )
}
FORMATS = tuple(EXPORT_FORMATS)


def export_format(name: str) -> ExportFormat:
    """The registered format called `name`, or a user error listing the known ones."""
    try:
        return EXPORT_FORMATS[name]
    except KeyError:
        raise MitreMapError(f"Unknown format {name!r}; use one of: {', '.join(FORMATS)}") from None


def render(analysis: Exportable, fmt: str, iocs: bool = False) -> str:
    """The analysis in one of `FORMATS`, as text."""
    return export_format(fmt).render(analysis, iocs)
