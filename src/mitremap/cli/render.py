"""How the commands show results in a terminal, and as plain lines when piped.

One rule for every command: on a terminal, rich tables (ids, hashes and URLs never wrap; long
text folds); anywhere else — a pipe, a file, CI, `nohup` — tab-separated lines, one record a
line, no box-drawing characters and no colour, so every value can be copied, `cut` and `grep`ped
whole. Progress follows the same rule (`cli.common.StageProgress`: bars on a terminal, plain
lines otherwise). The commands hand their rows here; nothing else in `cli` draws a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from mitremap.cli.common import console
from mitremap.similar import NOTE

if TYPE_CHECKING:
    from mitremap.analysis import Analysis
    from mitremap.defend import Defence
    from mitremap.diff import AnalysisDiff

Row = Sequence[str]
LIMIT = 10  # prioritised mitigations shown in a terminal
EVIDENCE_CHARS = 160


def plain() -> bool:
    """Whether standard output is anything but a terminal (then: plain lines)."""
    return not console.is_terminal


def tsv(rows: Iterable[Row], prefix: Row = ()) -> None:
    """Rows as tab-separated lines on standard output (tabs and line breaks inside a value
    become spaces, so a record is always one line)."""
    for row in rows:
        typer.echo("\t".join(" ".join(str(cell).split()) for cell in (*prefix, *row)))


def table(
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    title: str | None = None,
    no_wrap: Iterable[str] = (),
    empty: str | None = None,
    prefix: Row = (),
) -> None:
    """A table on a terminal; tab-separated lines (after `prefix`, e.g. the table's kind)
    when piped. `empty`: what a terminal shows instead of an empty table."""
    if plain():
        tsv(rows, prefix)
        return
    if not rows and empty is not None:
        console.print(empty, highlight=False)
        return
    keep = set(no_wrap)
    shown = Table(title=escape(title) if title else None, title_justify="left")
    for column in columns:
        if column in keep:
            shown.add_column(column, no_wrap=True, overflow="ignore")
        else:
            shown.add_column(column, overflow="fold", ratio=1 if column == columns[-1] else None)
    for row in rows:
        shown.add_row(*(escape(str(cell)) for cell in row))
    console.print(shown, highlight=False)


def fields(items: Iterable[tuple[str, str]], *, title: str | None = None) -> None:
    """Name–value pairs: a two-column table on a terminal, `name<TAB>value` lines when piped."""
    table(("field", "value"), [(k, v) for k, v in items], title=title, no_wrap=("field",))


def line(text: str) -> None:
    """One line on standard output, never wrapped or styled (a path stays whole)."""
    if plain():
        typer.echo(text)
    else:
        console.print(text, highlight=False, markup=False, soft_wrap=True)


# ---- an analysis -------------------------------------------------------------------------------


def analysis_rows(result: Analysis) -> list[Row]:
    """Technique rows: id, name, tactics, confidence, first evidence passage (cut)."""
    text = result.document.text
    rows: list[Row] = []
    for hit in result.techniques:
        evidence = hit.evidence[0] if hit.evidence else None
        snippet = " ".join(text[evidence.start : evidence.end].split()) if evidence else ""
        if len(snippet) > EVIDENCE_CHARS:
            snippet = snippet[: EVIDENCE_CHARS - 3] + "…"
        tactics = ", ".join(hit.technique.tactics)
        rows.append(
            (hit.technique.id, hit.technique.name, tactics, f"{hit.confidence:.2f}", snippet)
        )
    return rows


def print_analysis(result: Analysis, iocs: bool) -> None:
    """The techniques (and with `iocs` the indicators) of one analysis."""
    rows = analysis_rows(result)
    indicators: list[Row] = [(i.type, i.value, i.raw) for i in result.indicators]
    if plain():
        tsv(rows or [("#", result.message)])
        if iocs:
            tsv(indicators or [("#", "no indicators found")])
        return
    title = result.document.title or result.document.origin
    table(
        ("technique", "name", "tactics", "confidence", "evidence"),
        rows,
        title=f"{title} — techniques at or above {result.threshold}",
        no_wrap=("technique", "confidence"),
        empty=result.message,
    )
    if iocs:
        table(
            ("type", "value", "as written"),
            indicators,
            title="indicators",
            no_wrap=("type", "value", "as written"),
            empty="no indicators found",
        )


# ---- a defence (analyze --defend) and similar adversaries --------------------------------------


def defence_rows(defence: Defence) -> dict[str, list[Row]]:
    """The three tables' rows: prioritised mitigations, detections, similar adversaries."""
    mitigations: list[Row] = [
        (
            m.mitigation.id,
            m.mitigation.name,
            f"{m.score:.2f}",
            ", ".join(
                f"{c.technique} (via {c.from_parent})" if c.from_parent else c.technique
                for c in m.covers
            ),
        )
        for m in defence.mitigations[:LIMIT]
    ]
    detections: list[Row] = []
    for t in defence.techniques:
        for d in t.detections:
            platforms = ", ".join(sorted({p for a in d.analytics for p in a.platforms}))
            detections.append((t.technique, d.id, d.name, platforms))
        detections += [(t.technique, c.id, c.name, "") for c in t.data_components]
    return {
        "mitigation": mitigations,
        "detection": detections,
        "similar": similar_rows(defence.similar),
    }


def similar_rows(similar: Iterable[Any]) -> list[Row]:
    """Similar adversaries: id, name, kind, share of the report's techniques, in common."""
    return [
        (s.id, s.name, s.kind, f"{s.coverage:.2f}", ", ".join(o.label for o in s.in_common))
        for s in similar
    ]


SIMILAR_COLUMNS = ("id", "name", "kind", "share", "techniques in common")
SIMILAR_TITLE = "techniques in common with (not attribution)"


def print_defence(defence: Defence) -> None:
    """Mitigations, detections and similar adversaries; piped, each line starts with its kind."""
    found = defence_rows(defence)
    headers = {
        "mitigation": (
            "mitigations, by the techniques they cover × confidence "
            f"(ATT&CK {defence.attack_version})",
            ("mitigation", "name", "score", "techniques covered"),
        ),
        "detection": ("detections", ("technique", "detection", "name", "platforms")),
        "similar": (SIMILAR_TITLE, SIMILAR_COLUMNS),
    }
    for kind, (title, columns) in headers.items():
        table(
            columns,
            found[kind],
            title=title,
            no_wrap=("mitigation", "id", "technique"),
            empty=f"{title}: none",
            prefix=(kind,),
        )
    if not plain():
        console.print(NOTE, highlight=False)


def print_similar(similar: Sequence[Any]) -> None:
    table(
        SIMILAR_COLUMNS,
        similar_rows(similar),
        title=SIMILAR_TITLE,
        no_wrap=("id",),
        empty=f"{SIMILAR_TITLE}: none",
    )
    if not plain():
        console.print(NOTE, highlight=False)


# ---- a diff --------------------------------------------------------------------------------------


def print_diff(result: AnalysisDiff) -> None:
    """Three tables on a terminal; tab-separated lines (set, id, name, A, B) when piped."""
    titles = {"only_a": f"only in A ({result.a_name})", "only_b": f"only in B ({result.b_name})"}
    titles["both"] = "in both"

    def conf(value: float | None) -> str:
        return f"{value:.2f}" if value is not None else ""

    for side, title in titles.items():
        rows = [(t.technique, t.name, conf(t.a), conf(t.b)) for t in result.of(side)]
        table(
            ("technique", "name", "A", "B"),
            rows,
            title=title,
            no_wrap=("technique", "A", "B"),
            empty=f"{title}: none",
            prefix=(side,),
        )
    changes = [(c.analysis, c.was, c.now or "", c.why) for c in result.changes]
    if plain():
        tsv(changes, prefix=("changed",))
        return
    for analysis, was, now, why in changes:
        to = f" → {now}" if now else ""
        line(f"{analysis}: {was} {why}{to} in ATT&CK {result.attack_version}")
