"""Markdown: the techniques and indicators as tables, every cell escaped (no raw HTML), every
indicator defanged (a Markdown viewer links what looks like a URL) unless `refang`."""

from __future__ import annotations

import html

from mitremap.export._base import (
    DEFAULT_OPTIONS,
    Exportable,
    ExportOptions,
    best_evidence_text,
    for_people,
    read,
    tactic_names,
    title,
    value_for_people,
)


def md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell (and free of raw HTML)."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    for char in "\\|`*_[]<>":
        text = text.replace(char, "\\" + char)
    return text


def to_markdown(analysis: Exportable, options: ExportOptions = DEFAULT_OPTIONS) -> str:
    data, _ = read(analysis, options)
    lines = [f"# MitreMap: {md_cell(title(data))}", ""]
    origin = (data.get("document") or {}).get("origin")
    if origin:
        lines += [f"Source: {md_cell(origin)}  ", ""]
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
                f"| {link} | {md_cell(t.get('technique_name', ''))} | "
                f"{md_cell(', '.join(tactic_names(t)))} | {t.get('confidence_score', 0):.2f} | "
                f"{md_cell(for_people(best_evidence_text(t)[:300], options))} |"
            )
    else:
        lines.append(f"No technique reached the threshold of {threshold}.")
    indicators = data.get("indicators")
    if indicators is not None:
        lines += ["", "## Indicators of compromise", ""]
        if indicators:
            lines += ["| type | value | as written |", "|---|---|---|"]
            lines += [
                f"| {md_cell(i['type'])} | {md_cell(value_for_people(i['type'], i['value'], options))}"
                f" | {md_cell(value_for_people(i['type'], i['raw'], options))} |"
                for i in indicators
            ]
        else:
            lines.append("No indicator found.")
    if data.get("defend"):  # `analyze(…, defend=True)`: mitigations and detections
        from mitremap.export._defend import markdown_section

        lines += ["", markdown_section(data["defend"]).rstrip("\n")]
    return "\n".join(lines) + "\n"
