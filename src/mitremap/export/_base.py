"""What every exporter shares: the analysis read through its JSON form, the options every
format takes, and a few views of the analysis.

Exporters read `Analysis.to_dict()` (`mitremap.schema.AnalysisJSON`) plus the document text,
never the model's classes, so any object with those two things can be exported (the `iocs`
command hands in a document and its indicators only; the workspace a reviewed result).

Two rules hold for every format, in `read`: the document's local path is cut to its file name
(an analyst's home folder is nobody's business; `ExportOptions.keep_path` keeps it), and what
is unknown about the report is never made up: its date is the one it states, else the time of
the analysis — never a file's modification time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath, PureWindowsPath
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

if TYPE_CHECKING:
    from mitremap.attack import AttackKB
    from mitremap.schema import AnalysisJSON, DocumentJSON, TechniqueJSON

TLP = Literal["clear", "green", "amber", "amber+strict", "red"]
Benign = Literal["context", "omit"]


@dataclass(frozen=True)
class ExportOptions:
    """What a user chooses about an export (the CLI's options; defaults are the safe choice).

    `kb`: the ATT&CK knowledge base STIX takes ATT&CK's own ids from (default: as a model's
    results are read, `classify.knowledge.attack_for_model`). `keep_path`: keep the document's
    local path (default: its file name only). `refang`: show indicators live in documents meant
    for people (HTML, Markdown, Word; default: defanged, `hxxps://evil[.]com`). `benign`: known-
    benign values (`iocs.benign`) go out as observed context, never as indicators, or are left
    out (`omit`). `tlp`: a TLP 2.0 marking (STIX marking, MISP tag). `misp_distribution` and
    `misp_threat_level`: MISP's own numbers (0 your organisation only … 3 all communities, 5
    inherit; 1 high … 4 undefined).
    """

    kb: AttackKB | None = None
    keep_path: bool = False
    refang: bool = False
    benign: Benign = "context"
    tlp: TLP | None = None
    misp_distribution: int = 0
    misp_threat_level: int = 4


DEFAULT_OPTIONS = ExportOptions()

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The time MitreMap stamps on what it makes that is not about the report (its identity, its
copies of ATT&CK's objects, its indicators' `valid_from`): never `now()`, so the same report
gives the same objects, and a consumer that already holds a newer copy of an object (ATT&CK's
own attack-patterns) keeps it."""

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
    """What an exporter needs: the analysis' JSON form (`AnalysisJSON`) and the document text
    offsets point into (an `Analysis`, the workspace's reviewed result, `iocs`' findings)."""

    def to_dict(self) -> Mapping[str, Any]: ...

    @property
    def document(self) -> Any: ...


def read(
    analysis: Exportable, options: ExportOptions = DEFAULT_OPTIONS
) -> tuple[AnalysisJSON, str]:
    """The analysis' JSON form (its local path cut to the file name unless `keep_path`) and
    its document's text."""
    data = cast("AnalysisJSON", dict(analysis.to_dict()))
    document = cast("DocumentJSON", dict(data.get("document") or {}))
    if not options.keep_path and document.get("origin"):
        document["origin"] = public_origin(document["origin"])
    data["document"] = document
    return data, getattr(analysis.document, "text", "")


def public_origin(origin: str) -> str:
    """Where a report came from, as an export says it: a URL or `<stdin>` as it is, a local
    file by its name alone (`/home/ana/cases/report.pdf` → `report.pdf`)."""
    if "://" in origin or (origin.startswith("<") and origin.endswith(">")):
        return origin
    path: PurePath = PureWindowsPath(origin) if "\\" in origin else PurePath(origin)
    return path.name or origin


def title(data: AnalysisJSON) -> str:
    document = data.get("document") or {}
    return document.get("title") or document.get("origin") or "report"


def origin(data: AnalysisJSON) -> str:
    return str((data.get("document") or {}).get("origin") or "")


def source_url(data: AnalysisJSON) -> str | None:
    """The report's own URL, when it was read from one (its indicators are benign context)."""
    where = origin(data)
    return where if where.startswith(("http://", "https://")) else None


def report_tags(data: AnalysisJSON | Mapping[str, Any]) -> list[str]:
    """The report's own tags, when its JSON carries them (`document.tags`: the review
    workspace's metadata): STIX `labels`, MISP event tags."""
    document: Mapping[str, Any] = data.get("document") or {}
    return [str(t) for t in document.get("tags") or () if str(t).strip()]


def tactic_names(technique: TechniqueJSON | Mapping[str, Any]) -> list[str]:
    return [t["name"] if isinstance(t, dict) else str(t) for t in technique.get("tactics", ())]


def tactic_shortname(name: str) -> str:
    """ATT&CK's short name of a tactic ("Command and Control" → "command-and-control")."""
    return "-".join(name.lower().split())


def best_evidence(technique: TechniqueJSON) -> Any:
    """The evidence passage (`EvidenceJSON`) with the highest confidence, if any."""
    evidence = technique.get("evidence") or ()
    return max(evidence, key=lambda e: e.get("confidence", 0)) if evidence else None


def best_evidence_text(technique: TechniqueJSON) -> str:
    best = best_evidence(technique)
    return " ".join(best.get("text", "").split()) if best else ""


def report_time(data: AnalysisJSON) -> datetime:
    """When the report was published: the `date` it states, else when it was analysed
    (`analyzed_at`), else now — never a file's modification time."""
    for stated in ((data.get("document") or {}).get("date"), data.get("analyzed_at")):
        if stated:
            try:
                when = datetime.fromisoformat(str(stated))
            except ValueError:
                continue
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime.now(UTC).replace(microsecond=0)


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


def matrix(techniques: list[TechniqueJSON]) -> list[tuple[str, list[TechniqueJSON]]]:
    """The found techniques as ATT&CK matrix columns: (tactic, techniques best first), in the
    matrix's order; a technique with several tactics sits in each of their columns."""
    columns: dict[str, list[TechniqueJSON]] = {}
    for t in techniques:
        for tactic in tactic_names(t) or ["Other"]:
            columns.setdefault(tactic, []).append(t)
    order = {name: i for i, name in enumerate(TACTIC_ORDER)}
    names = sorted(columns, key=lambda n: (order.get(n, len(order)), n))
    return [
        (n, sorted(columns[n], key=lambda t: -float(t.get("confidence_score", 0)))) for n in names
    ]


# ---- documents for people: indicators defanged unless asked otherwise ------------------------


def for_people(text: str, options: ExportOptions) -> str:
    """Text as a document for people shows it: URLs, domains, IPs and e-mail addresses in it
    defanged (`iocs.defang`), unless `options.refang`."""
    if options.refang or not text:
        return text
    from mitremap.iocs.defang import defang_text

    return defang_text(text)


def value_for_people(kind: str, value: str, options: ExportOptions) -> str:
    """One indicator value as a document for people shows it (defanged unless `refang`)."""
    if options.refang:
        return value
    from mitremap.iocs.defang import defang

    return defang(kind, value)
