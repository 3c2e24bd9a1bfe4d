"""A standalone HTML report, and the same report as a fragment for notebooks.

Inline CSS only, no script and no external resource, under a Content-Security-Policy that
forbids both; everything that comes from the document is escaped: a report is data, never
markup, and every URL, domain, IP and e-mail address in it is defanged (`hxxps://evil[.]com`)
unless `refang`. The ATT&CK matrix is a table of the found techniques by tactic, coloured by
confidence.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from mitremap import __version__
from mitremap.export._base import (
    DEFAULT_OPTIONS,
    Exportable,
    ExportOptions,
    best_evidence_text,
    colour,
    dark,
    for_people,
    matrix,
    read,
    tactic_names,
    title,
    value_for_people,
)
from mitremap.schema import EntityJSON, IndicatorJSON, TechniqueJSON

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
.mitremap .ent{border-bottom:2px dotted #2a6f97}
.mitremap .muted{color:#666;font-size:.85rem}
.mitremap .legend span{margin-right:1rem}
.mitremap .matrix{table-layout:fixed;font-size:.78rem}
.mitremap .matrix th{font-size:.75rem;border-bottom:2px solid #999}
.mitremap .matrix td{border:2px solid #fff;border-radius:4px}
.mitremap .matrix td.none{background:transparent}
.mitremap .matrix .id{display:block;font-weight:600}
"""
"""Every rule is scoped under `.mitremap`, so the fragment can sit inside a notebook page."""


def to_html(analysis: Exportable, options: ExportOptions = DEFAULT_OPTIONS) -> str:
    """A standalone HTML report (inline CSS, no scripts, no external resources)."""
    data, _ = read(analysis, options)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
            f"<title>MitreMap: {html.escape(title(data))}</title></head>",
            '<body style="margin:2rem auto;max-width:70rem;padding:0 1rem">',
            html_fragment(analysis, options),
            "</body></html>",
        ]
    )


def html_fragment(analysis: Exportable, options: ExportOptions = DEFAULT_OPTIONS) -> str:
    """The report as one `<div class="mitremap">` with its own scoped styles (for notebooks)."""
    data, text = read(analysis, options)
    esc = html.escape
    hits = data.get("techniques", ())
    threshold = data.get("threshold", 0.6)
    parts = [
        f'<div class="mitremap"><style>{_CSS}</style>',
        f"<h1>MitreMap: {esc(title(data))}</h1>",
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
                f"<td>{esc(', '.join(tactic_names(t)))}</td>"
                f'<td class="conf">{float(t.get("confidence_score", 0)):.2f}</td>'
                f"<td>{esc(for_people(best_evidence_text(t)[:300], options))}</td></tr>"
            )
        parts.append("</table>")
        parts += ["<h2>ATT&amp;CK matrix</h2>", matrix_table(hits)]
    else:
        parts.append(f"<p>No technique reached the threshold of {esc(str(threshold))}.</p>")
    indicators = data.get("indicators") or []
    if text:
        parts += [
            "<h2>Report</h2>",
            '<p class="legend muted"><span class="ev">evidence</span>'
            '<span class="pos" style="--w:.5">pushes a technique up</span>'
            '<span class="neg" style="--w:.5">pushes it down</span>'
            '<span class="ioc">indicator</span>'
            '<span class="ent">ATT&amp;CK software, group or campaign</span></p>',
            '<div class="doc">'
            + _highlight(text, hits, indicators, data.get("entities", ()), _marks(text, options))
            + "</div>",
        ]
    if data.get("indicators") is not None:
        parts.append("<h2>Indicators of compromise</h2>")
        if indicators:
            parts.append(
                "<table><tr><th>type</th><th>value</th><th>as written</th><th>offset</th></tr>"
            )
            parts += [
                f"<tr><td>{esc(i['type'])}</td>"
                f"<td>{esc(value_for_people(i['type'], i['value'], options))}</td>"
                f"<td>{esc(value_for_people(i['type'], i['raw'], options))}</td>"
                f"<td>{int(i['start'])}</td></tr>"
                for i in indicators
            ]
            parts.append("</table>")
        else:
            parts.append("<p>No indicator found.</p>")
    if data.get("defend"):  # `analyze(…, defend=True)`: mitigations and detections
        from mitremap.export._defend import html_section

        parts.append(html_section(data["defend"]))
    parts.append("</div>")
    return "\n".join(parts)


def matrix_table(hits: Any) -> str:
    """The found techniques as an ATT&CK matrix: a column per tactic (in the matrix's order),
    each technique coloured by its confidence, best first."""
    esc = html.escape
    columns = matrix(list(hits))
    depth = max(len(found) for _, found in columns)
    rows = ["<tr>" + "".join(f"<th>{esc(tactic)}</th>" for tactic, _ in columns) + "</tr>"]
    for r in range(depth):
        cells = []
        for _, found in columns:
            if r >= len(found):
                cells.append('<td class="none"></td>')
                continue
            t = found[r]
            confidence = float(t.get("confidence_score", 0))
            ink = "#fff" if dark(confidence) else "#1d1d1f"
            cells.append(
                f'<td style="background:{colour(confidence)};color:{ink}" '
                f'title="confidence {confidence:.2f}"><span class="id">{esc(t["technique"])}</span>'
                f"{esc(t.get('technique_name', ''))}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return '<table class="matrix">' + "".join(rows) + "</table>"


def _safe_url(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def _marks(text: str, options: ExportOptions) -> dict[int, str]:
    """Where the report's text changes to defang its indicators (offset → replacement)."""
    if options.refang:
        return {}
    from mitremap.iocs import extract_iocs
    from mitremap.iocs.defang import defang_marks

    return {
        found.start + i: replacement
        for found in extract_iocs(text)
        for i, replacement in defang_marks(found.type, found.raw).items()
    }


@dataclass(frozen=True)
class _Span:
    """A marked stretch [start, end) of the report: evidence ("ev", `label` the technique), an
    attribution ("attr", its `weight`), an indicator ("ioc", `label` its type) or an ATT&CK
    name ("ent", `label` what it names)."""

    start: int
    end: int
    kind: str
    label: str = ""
    weight: float = 0.0


def _highlight(
    text: str,
    hits: Iterable[TechniqueJSON],
    indicators: Iterable[IndicatorJSON],
    entities: Iterable[EntityJSON] = (),
    marks: dict[int, str] | None = None,
) -> str:
    """The text with evidence, attributions, indicators and ATT&CK names marked; all escaped,
    indicators defanged where `marks` say.

    Spans may overlap, so the text is cut at every span boundary and each piece gets the
    classes of everything covering it.
    """
    from mitremap.iocs.defang import apply_marks

    marks = marks or {}
    spans = _spans(len(text), hits, indicators, entities)
    cuts = sorted({0, len(text), *(s.start for s in spans), *(s.end for s in spans)})
    top = max((abs(s.weight) for s in spans if s.kind == "attr"), default=0.0) or 1.0
    starts: dict[int, list[_Span]] = {}
    for span in spans:
        starts.setdefault(span.start, []).append(span)
    active: list[_Span] = []
    out = []
    for left, right in pairwise(cuts):
        active = [s for s in active if s.end > left] + starts.get(left, [])
        piece = html.escape(apply_marks(text[left:right], marks, left))
        out.append(_wrap(piece, active, top) if active else piece)
    return "".join(out)


def _spans(
    n: int,
    hits: Iterable[TechniqueJSON],
    indicators: Iterable[IndicatorJSON],
    entities: Iterable[EntityJSON],
) -> list[_Span]:
    """Everything to mark, each cut to the text's `n` characters (an empty or negative span is
    dropped: it would mark nothing)."""
    spans: list[_Span] = []
    for t in hits:
        spans += [_Span(e["start"], e["end"], "ev", t["technique"]) for e in t.get("evidence", ())]
        spans += [
            _Span(a["start"], a["end"], "attr", weight=float(a.get("weight", 0)))
            for a in t.get("attributions", ())
        ]
    spans += [_Span(i["start"], i["end"], "ioc", i["type"]) for i in indicators]
    spans += [
        _Span(e["start"], e["end"], "ent", f"{e['kind']}: {e['name']} ({e['id']})")
        for e in entities
    ]
    return [replace(s, end=min(n, s.end)) for s in spans if 0 <= s.start < s.end]


def _wrap(piece: str, active: list[_Span], top: float) -> str:
    """An escaped piece of text in a `<span>` whose classes and title say what covers it; an
    attribution's shade is its weight against the report's strongest (`top`)."""
    classes, titles = [], []
    techniques = _labels(active, "ev")
    if techniques:
        classes.append("ev")
        titles.append("evidence: " + ", ".join(techniques))
    weight = sum(s.weight for s in active if s.kind == "attr")
    style = ""
    if weight:
        classes.append("pos" if weight > 0 else "neg")
        style = f' style="--w:{min(0.9, 0.15 + 0.75 * abs(weight) / top):.2f}"'
        titles.append(f"attribution {weight:+.3f}")
    iocs = _labels(active, "ioc")
    if iocs:
        classes.append("ioc")
        titles.append("indicator: " + ", ".join(iocs))
    names = _labels(active, "ent")
    if names:
        classes.append("ent")
        titles.append("ATT&CK " + ", ".join(names))
    return (
        f'<span class="{" ".join(classes)}"{style} title="{html.escape("; ".join(titles))}">'
        f"{piece}</span>"
    )


def _labels(spans: list[_Span], kind: str) -> list[str]:
    """The distinct labels of the spans of one kind, sorted."""
    return sorted({s.label for s in spans if s.kind == kind})
