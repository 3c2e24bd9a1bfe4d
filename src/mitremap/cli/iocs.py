"""`mitremap iocs PATH|-`: extract indicators of compromise from a report."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import typer

from mitremap.cli import render
from mitremap.cli.common import (
    TIME_LIMIT_ADVICE,
    BenignOption,
    KeepPathOption,
    MispDistributionOption,
    MispThreatOption,
    TimeLimitOption,
    TlpOption,
    err_console,
    export_options,
)
from mitremap.deadline import DEFAULT_TIME_LIMIT_S, Deadline
from mitremap.files import write_text
from mitremap.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from mitremap.documents import Document
    from mitremap.export import ExportOptions
    from mitremap.iocs import Indicator

IocFormat = Literal["table", "json", "csv", "stix", "misp"]
FORMATS = get_args(IocFormat)
CSV_COLUMNS = ("type", "value", "raw", "start", "end", "private")


@dataclass(frozen=True)
class _Found:
    """A document and its indicators, in the shape the exporters read (no techniques)."""

    document: Document
    indicators: list[Indicator]

    def to_dict(self) -> dict[str, Any]:
        return {
            "document": self.document.to_dict(),
            "techniques": [],
            "indicators": [i.to_dict() for i in self.indicators],
        }


def _types(values: list[str] | None) -> list[str] | None:
    """`--type url --type domain` and `--type url,domain` both work."""
    from mitremap.iocs import IOC_TYPES

    if not values:
        return None
    chosen = [v.strip().lower() for value in values for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in IOC_TYPES]
    if unknown:
        raise typer.BadParameter(
            f"unknown type(s) {', '.join(unknown)}; choose from: {', '.join(IOC_TYPES)}",
            param_hint="--type",
        )
    return chosen


def _unique(indicators: list[Indicator]) -> list[Indicator]:
    """First occurrence of each (type, value)."""
    seen: set[tuple[str, str]] = set()
    result: list[Indicator] = []
    for indicator in indicators:
        key = (indicator.type, indicator.value)
        if key not in seen:
            seen.add(key)
            result.append(indicator)
    return result


def _render(
    document: Document, indicators: list[Indicator], fmt: str, chosen: ExportOptions
) -> str | None:
    """The indicators in `fmt`: text, or None for a table (shown by `cli.render`)."""
    if fmt == "json":
        data = {"schema_version": SCHEMA_VERSION, "indicators": [i.to_dict() for i in indicators]}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        from mitremap.export import SafeWriter

        buffer = io.StringIO()
        writer = SafeWriter(buffer, CSV_COLUMNS)
        writer.writeheader()
        for i in indicators:
            writer.writerow({**i.to_dict(), "private": str(i.private).lower()})
        return buffer.getvalue()
    if fmt in ("stix", "misp"):
        from mitremap.export import render

        found = _Found(document, indicators)
        return str(render(found, fmt, iocs=True, options=chosen)) + "\n"
    return None


def _rows(indicators: list[Indicator]) -> list[tuple[str, ...]]:
    return [
        (i.type, i.value + (" (private)" if i.private else ""), "" if i.raw == i.value else i.raw,
         f"{i.start}-{i.end}")
        for i in indicators
    ]  # fmt: skip


def iocs(
    source: Annotated[
        str, typer.Argument(help="Report file, http(s) URL, or - for stdin.", metavar="SOURCE")
    ],
    types: Annotated[
        list[str] | None,
        typer.Option(
            "--type", help="Only these types (repeat, or comma-separated).", metavar="TYPE"
        ),
    ] = None,
    fmt: Annotated[
        IocFormat,
        typer.Option("--format", "-f", help="table, json, csv, stix or misp.", metavar="FORMAT"),
    ] = "table",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file instead of stdout.", metavar="FILE"
        ),
    ] = None,
    unique: Annotated[
        bool, typer.Option("--unique", "-u", help="Each (type, value) once, at its first place.")
    ] = False,
    private: Annotated[
        bool,
        typer.Option(
            "--private/--no-private", help="Keep private, internal and documentation addresses."
        ),
    ] = True,
    allowlist: Annotated[
        bool,
        typer.Option("--allowlist", help="Drop well-known benign values (google.com, 8.8.8.8…)."),
    ] = False,
    keep_path: KeepPathOption = False,
    benign: BenignOption = "context",
    tlp: TlpOption = None,
    misp_distribution: MispDistributionOption = 0,
    misp_threat_level: MispThreatOption = 4,
    time_limit: TimeLimitOption = DEFAULT_TIME_LIMIT_S,
) -> None:
    """Extract indicators of compromise: refanged, validated, with offsets into the report."""
    from mitremap.documents import read_document
    from mitremap.iocs import IocExtractor
    from mitremap.iocs.extract import MAX_INDICATORS

    extractor = IocExtractor(_types(types), allowlist=allowlist, include_private=private)
    deadline = Deadline.after(time_limit, TIME_LIMIT_ADVICE)
    document = read_document(source, deadline=deadline)
    indicators = extractor.extract(document.text, deadline=deadline, limit=MAX_INDICATORS + 1)
    notes = list(document.warnings)
    if len(indicators) > MAX_INDICATORS:
        indicators = indicators[:MAX_INDICATORS]
        notes.append(f"only the first {MAX_INDICATORS:,} indicators are listed")
    for warning in notes:
        note = f"note: {source}: {warning}"
        err_console.print(note, highlight=False, markup=False, soft_wrap=True)
    if unique:
        indicators = _unique(indicators)
    chosen = export_options(
        keep_path=keep_path,
        benign=benign,
        tlp=tlp,
        misp_distribution=misp_distribution,
        misp_threat_level=misp_threat_level,
    )
    rendered = _render(document, indicators, fmt, chosen)
    if rendered is None:  # a table: on a terminal, or tab-separated lines anywhere else
        if output is None:
            render.table(
                ("type", "value", "raw", "offset"),
                _rows(indicators),
                title=f"{len(indicators)} indicators",
                no_wrap=("type",),
            )
            return
        rendered = "".join("\t".join(row) + "\n" for row in _rows(indicators))
    if output is None:
        typer.echo(rendered, nl=False)
        return
    write_text(output, rendered)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("iocs")(iocs)
