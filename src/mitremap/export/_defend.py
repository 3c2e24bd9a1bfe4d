"""The defence of a report (`analyze --defend`) as Markdown and HTML sections, for the
Markdown and HTML exports: prioritised mitigations, detections per technique and techniques in
common with known adversaries. Read from its JSON form (`DefenceJSON`), like every exporter;
every value escaped, links only to ATT&CK's own pages."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from mitremap.attack import ATTACK_URL
from mitremap.export._markdown import md_cell as _md
from mitremap.similar import NOTE, WORDING, overlap_label


def _link_md(ident: str, url: str) -> str:
    return f"[{_md(ident)}]({url})" if url.startswith(ATTACK_URL + "/") else _md(ident)


def _techniques_label(m: dict[str, Any]) -> str:
    return ", ".join(
        t["technique"] + (f" (via {t['from_parent']})" if t.get("from_parent") else "")
        for t in m.get("techniques", ())
    )


def _log_sources(strategy: dict[str, Any]) -> list[str]:
    names = {
        f"{s.get('name', '')} {s.get('channel', '')}".strip()
        for a in strategy.get("analytics", ())
        for s in a.get("log_sources", ())
    }
    return sorted(names)


def markdown_section(data: Mapping[str, Any], limit: int = 15) -> str:
    """The `defend` object of an analysis' JSON as Markdown: prioritised mitigations,
    detections per technique and techniques in common with known adversaries."""
    lines = [f"## How to defend (ATT&CK {_md(data.get('attack_version', ''))})", ""]
    mitigations = list(data.get("mitigations", ()))
    if mitigations:
        lines += [
            "Mitigations ordered by how many of the report's techniques they cover, "
            "weighted by confidence (a parent's mitigation, marked *via*, counts half).",
            "",
            "| mitigation | name | score | techniques covered |",
            "|---|---|---|---|",
        ]
        for m in mitigations[:limit]:
            lines.append(
                f"| {_link_md(m['id'], m.get('webpage_link', ''))} | {_md(m.get('name', ''))} | "
                f"{float(m.get('score', 0)):.2f} | {_md(_techniques_label(m))} |"
            )
    else:
        lines.append("No ATT&CK mitigation covers the report's techniques.")
    if data.get("uncovered"):
        lines += ["", f"No ATT&CK mitigation for: {_md(', '.join(data['uncovered']))}."]
    detections = list(data.get("detections", ()))
    if detections:
        lines += [
            "",
            "### Detections",
            "",
            "| technique | detection | log sources |",
            "|---|---|---|",
        ]
        for d in detections:
            for s in d.get("strategies", ()) or d.get("data_components", ()):
                lines.append(
                    f"| {_md(d['technique'])} | {_link_md(s['id'], s.get('webpage_link', ''))} "
                    f"{_md(s.get('name', ''))} | {_md('; '.join(_log_sources(s)))} |"
                )
    similar = list(data.get("similar", ()))
    if similar:
        lines += ["", f"### {WORDING.capitalize()} …", "", _md(data.get("similar_note", NOTE)), ""]
        lines += ["| id | name | kind | in common |", "|---|---|---|---|"]
        for s in similar:
            common = ", ".join(overlap_label(o) for o in s.get("techniques_in_common", ()))
            lines.append(
                f"| {_link_md(s['id'], s.get('webpage_link', ''))} | {_md(s.get('name', ''))} | "
                f"{_md(s.get('kind', ''))} | {_md(common)} |"
            )
    return "\n".join(lines) + "\n"


def _link_html(ident: str, url: str) -> str:
    esc = html.escape
    if url.startswith(ATTACK_URL + "/"):
        return f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">{esc(ident)}</a>'
    return esc(ident)


def html_section(data: Mapping[str, Any], limit: int = 15) -> str:
    """The `defend` object as an HTML fragment (every value escaped; no scripts)."""
    esc = html.escape
    parts = [f"<h2>How to defend (ATT&amp;CK {esc(str(data.get('attack_version', '')))})</h2>"]
    mitigations = list(data.get("mitigations", ()))
    if mitigations:
        parts.append(
            '<p class="muted">Mitigations ordered by how many of the report\'s techniques they '
            "cover, weighted by confidence (a parent's mitigation, marked via, counts half).</p>"
            "<table><tr><th>mitigation</th><th>name</th><th>score</th>"
            "<th>techniques covered</th></tr>"
        )
        parts += [
            f"<tr><td>{_link_html(m['id'], m.get('webpage_link', ''))}</td>"
            f"<td>{esc(m.get('name', ''))}</td>"
            f'<td class="conf">{float(m.get("score", 0)):.2f}</td>'
            f"<td>{esc(_techniques_label(m))}</td></tr>"
            for m in mitigations[:limit]
        ]
        parts.append("</table>")
    else:
        parts.append("<p>No ATT&amp;CK mitigation covers the report's techniques.</p>")
    detections = [
        (d, s)
        for d in data.get("detections", ())
        for s in d.get("strategies", ()) or d.get("data_components", ())
    ]
    if detections:
        parts.append(
            "<h3>Detections</h3><table><tr><th>technique</th><th>detection</th>"
            "<th>log sources</th></tr>"
        )
        parts += [
            f"<tr><td>{esc(d['technique'])}</td>"
            f"<td>{_link_html(s['id'], s.get('webpage_link', ''))} {esc(s.get('name', ''))}</td>"
            f"<td>{esc('; '.join(_log_sources(s)))}</td></tr>"
            for d, s in detections
        ]
        parts.append("</table>")
    similar = list(data.get("similar", ()))
    if similar:
        parts.append(
            f"<h3>{esc(WORDING.capitalize())} …</h3>"
            f'<p class="muted">{esc(str(data.get("similar_note", NOTE)))}</p>'
            "<table><tr><th>id</th><th>name</th><th>kind</th><th>in common</th></tr>"
        )
        parts += [
            f"<tr><td>{_link_html(s['id'], s.get('webpage_link', ''))}</td>"
            f"<td>{esc(s.get('name', ''))}</td><td>{esc(s.get('kind', ''))}</td>"
            f"<td>{esc(', '.join(overlap_label(o) for o in s.get('techniques_in_common', ())))}</td>"
            "</tr>"
            for s in similar
        ]
        parts.append("</table>")
    return "\n".join(parts)
