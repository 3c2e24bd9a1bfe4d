"""How `mitremap analyze --defend` shows a defence as a table (not a command of its own): rich
tables on a terminal, tab-separated lines when piped, so every id can be copied whole."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from mitremap.cli.common import console
from mitremap.similar import NOTE

if TYPE_CHECKING:
    from mitremap.defend import Defence

LIMIT = 10


def _covers(defence: Defence, index: int) -> str:
    return ", ".join(
        f"{c.technique} (via {c.from_parent})" if c.from_parent else c.technique
        for c in defence.mitigations[index].covers
    )


def rows(defence: Defence) -> dict[str, list[tuple[str, ...]]]:
    """The three tables' rows: prioritised mitigations, detections, similar adversaries."""
    mitigations: list[tuple[str, ...]] = [
        (m.mitigation.id, m.mitigation.name, f"{m.score:.2f}", _covers(defence, i))
        for i, m in enumerate(defence.mitigations[:LIMIT])
    ]
    detections: list[tuple[str, ...]] = []
    for t in defence.techniques:
        for d in t.detections:
            platforms = ", ".join(sorted({p for a in d.analytics for p in a.platforms}))
            detections.append((t.technique, d.id, d.name, platforms))
        detections += [(t.technique, c.id, c.name, "") for c in t.data_components]
    similar: list[tuple[str, ...]] = [
        (s.id, s.name, s.kind, f"{s.coverage:.2f}", ", ".join(o.label for o in s.in_common))
        for s in defence.similar
    ]
    return {"mitigation": mitigations, "detection": detections, "similar": similar}


def print_defence(defence: Defence) -> None:
    found = rows(defence)
    if not console.is_terminal:
        for kind, lines in found.items():
            for line in lines:
                typer.echo("\t".join((kind, *line)))
        return
    headers = {
        "mitigation": (
            f"mitigations, by the techniques they cover × confidence (ATT&CK {defence.attack_version})",
            ("mitigation", "name", "score", "techniques covered"),
        ),
        "detection": ("detections", ("technique", "detection", "name", "platforms")),
        "similar": (
            "techniques in common with (not attribution)",
            ("id", "name", "kind", "share", "techniques in common"),
        ),
    }
    for kind, (title, columns) in headers.items():
        table = Table(title=escape(title), title_justify="left")
        for column in columns:
            table.add_column(column, no_wrap=column in ("mitigation", "id", "technique"))
        for line in found[kind]:
            table.add_row(*(escape(cell) for cell in line))
        console.print(table if found[kind] else f"{title}: none", highlight=False)
    console.print(NOTE, highlight=False)
