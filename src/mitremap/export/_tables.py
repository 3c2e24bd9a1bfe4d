"""JSON (the CLI schema) and CSV.

The CSV is one table for two kinds of row, told apart by `kind`: a technique (its offsets are
those of its best evidence passage) or an indicator. Both kinds carry integer `start`/`end`, so
pandas reads the offsets as integers. A cell that a spreadsheet would run as a formula is
neutralised (CWE-1236).
"""

from __future__ import annotations

import csv
import io
import json
from typing import IO, TYPE_CHECKING, Any

from mitremap.export._base import (
    DEFAULT_OPTIONS,
    Exportable,
    ExportOptions,
    best_evidence,
    read,
    tactic_names,
)

CSV_COLUMNS = (
    "kind",
    "technique",
    "technique_name",
    "tactics",
    "webpage_link",
    "confidence_score",
    "type",
    "value",
    "raw",
    "start",
    "end",
    "evidence",
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (`=HYPERLINK(…)` in an evidence
    sentence: CWE-1236) gets a leading apostrophe, which shows it as text."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


if TYPE_CHECKING:  # generic in the stubs; not subscriptable at run time on Python 3.11
    _DictWriter = csv.DictWriter[str]
else:
    _DictWriter = csv.DictWriter


class SafeWriter(_DictWriter):
    """A `csv.DictWriter` whose cells never run as spreadsheet formulas."""

    def __init__(self, out: IO[str], columns: tuple[str, ...]) -> None:
        # CRLF (RFC 4180): the writer then also quotes a bare CR inside a cell
        super().__init__(out, columns, extrasaction="ignore", lineterminator="\r\n")

    def writerow(self, rowdict: Any) -> Any:
        return super().writerow({k: safe_cell(v) for k, v in rowdict.items()})


def to_json(
    analysis: Exportable, indent: int | None = 2, options: ExportOptions = DEFAULT_OPTIONS
) -> str:
    data, _ = read(analysis, options)
    return json.dumps(data, indent=indent, ensure_ascii=False)


def to_csv(
    analysis: Exportable, iocs: bool = False, options: ExportOptions = DEFAULT_OPTIONS
) -> str:
    """One row per technique (kind=technique); with `iocs`, one more per indicator."""
    data, _ = read(analysis, options)
    out = io.StringIO()
    writer = SafeWriter(out, CSV_COLUMNS)
    writer.writeheader()
    for t in data.get("techniques", ()):
        best = best_evidence(t) or {"start": 0, "end": 0}  # no passage: an empty span
        writer.writerow(
            {
                "kind": "technique",
                "technique": t["technique"],
                "technique_name": t.get("technique_name", ""),
                "tactics": "; ".join(tactic_names(t)),
                "webpage_link": t.get("webpage_link", ""),
                "confidence_score": f"{t.get('confidence_score', 0):.4f}",
                "start": int(best["start"]),
                "end": int(best["end"]),
                "evidence": " | ".join(
                    " ".join(e.get("text", "").split()) for e in t.get("evidence", ())
                ),
            }
        )
    if iocs:
        for i in data.get("indicators") or ():
            writer.writerow(
                {
                    "kind": "indicator",
                    "type": i["type"],
                    "value": i["value"],
                    "raw": i["raw"],
                    "start": int(i["start"]),
                    "end": int(i["end"]),
                }
            )
    return out.getvalue()
