"""What every exporter shares: the analysis read through its JSON form, and a few views of it.

Exporters read `Analysis.to_dict()` (the CLI's JSON schema) plus the document text, never the
model's classes, so any object with those two things can be exported (the `iocs` command hands
in a document and its indicators only).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Protocol

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The time MitreMap stamps on what it makes when the document gives none. Never `now()`:
exporting the same report twice gives the same bytes, and a consumer that already holds a
newer copy of an object (ATT&CK's own attack-patterns) keeps it."""

GRADIENT = ("#fff7ec", "#fdbb84", "#d7301f")
"""Low to high confidence, in the Navigator layer, the HTML matrix and the Word matrix alike."""

TACTIC_ORDER = (
    "Reconnaissance",
    "Resource Development",
    "Initial Access",
    "Execution",
    "Persistence",
    "Privilege Escalation",
    "Defense Evasion",
    "Stealth",  # ATT&CK 19 split Defense Evasion into Stealth and Defense Impairment
    "Defense Impairment",
    "Credential Access",
    "Discovery",
    "Lateral Movement",
    "Collection",
    "Command and Control",
    "Exfiltration",
    "Impact",
)
"""The Enterprise matrix's columns, left to right (the analysis carries tactic names only)."""

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class Exportable(Protocol):
    """What an exporter needs: the analysis' JSON form and the document text offsets point into."""

    def to_dict(self) -> dict[str, Any]: ...

    @property
    def document(self) -> Any: ...


def read(analysis: Exportable) -> tuple[dict[str, Any], str]:
    """The analysis' JSON form and its document's text."""
    return analysis.to_dict(), getattr(analysis.document, "text", "")


def title(data: dict[str, Any]) -> str:
    document = data.get("document", {})
    return document.get("title") or document.get("origin") or "report"


def origin(data: dict[str, Any]) -> str:
    return str(data.get("document", {}).get("origin") or "")


def tlp(data: dict[str, Any]) -> str | None:
    """The report's TLP 2.0 marking when its JSON carries one (`document.tlp`: the review
    workspace sets it), lower case: clear, green, amber, amber+strict or red."""
    marking = str(data.get("document", {}).get("tlp") or "").lower()
    return marking if marking in ("clear", "green", "amber", "amber+strict", "red") else None


def tags(data: dict[str, Any]) -> list[str]:
    """The report's tags when its JSON carries them (`document.tags`)."""
    return [str(t) for t in data.get("document", {}).get("tags") or () if str(t).strip()]


def tactic_names(technique: dict[str, Any]) -> list[str]:
    return [t["name"] if isinstance(t, dict) else str(t) for t in technique.get("tactics", ())]


def tactic_shortname(name: str) -> str:
    """ATT&CK's short name of a tactic ("Command and Control" → "command-and-control")."""
    return "-".join(name.lower().split())


def best_evidence(technique: dict[str, Any]) -> dict[str, Any] | None:
    """The evidence passage with the highest confidence, if any."""
    evidence = technique.get("evidence") or ()
    return max(evidence, key=lambda e: e.get("confidence", 0)) if evidence else None


def best_evidence_text(technique: dict[str, Any]) -> str:
    best = best_evidence(technique)
    return " ".join(best.get("text", "").split()) if best else ""


def report_time(data: dict[str, Any]) -> datetime:
    """When the report was written: its `date` when the reader found one, else `EPOCH`."""
    stated = data.get("document", {}).get("date")
    if stated:
        try:
            when = datetime.fromisoformat(str(stated))
        except ValueError:
            return EPOCH
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return EPOCH


def colour(confidence: float) -> str:
    """The `GRADIENT` colour of a confidence in [0, 1], as `#rrggbb`."""
    x = min(1.0, max(0.0, float(confidence))) * (len(GRADIENT) - 1)
    i = min(int(x), len(GRADIENT) - 2)
    low, high = (tuple(int(c[k : k + 2], 16) for k in (1, 3, 5)) for c in GRADIENT[i : i + 2])
    return "#" + "".join(
        f"{round(a + (b - a) * (x - i)):02x}" for a, b in zip(low, high, strict=True)
    )


def dark(confidence: float) -> bool:
    """Whether text on the `colour` of this confidence should be white."""
    return confidence >= 0.75


def xml_text(value: Any) -> str:
    """Text that XML (Word documents) can hold: control characters and lone surrogates out."""
    return _NOT_XML.sub("", str(value))


def matrix(techniques: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The found techniques as ATT&CK matrix columns: (tactic, techniques best first), in the
    matrix's order; a technique with several tactics sits in each of their columns."""
    columns: dict[str, list[dict[str, Any]]] = {}
    for t in techniques:
        for tactic in tactic_names(t) or ["Other"]:
            columns.setdefault(tactic, []).append(t)
    order = {name: i for i, name in enumerate(TACTIC_ORDER)}
    names = sorted(columns, key=lambda n: (order.get(n, len(order)), n))
    return [
        (n, sorted(columns[n], key=lambda t: -float(t.get("confidence_score", 0)))) for n in names
    ]
