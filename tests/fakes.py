"""Stand-ins shared by the tests: an analysis as exporters read it, and a model that records
what it was asked (no training, no extras needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from mitremap.documents import Document
from mitremap.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from mitremap.analysis import MitreMap

TEXT = (
    "The actor sent <script>alert('x')</script> phishing mails. "
    "It created a scheduled task named Updater for persistence. "
    "C2 traffic went to 185.220.101.47 over HTTPS."
)


ANALYZED_AT = "2026-04-01T09:30:00+00:00"


def _span(needle: str) -> tuple[int, int]:
    start = TEXT.index(needle)
    return start, start + len(needle)


@dataclass
class FakeAnalysis:
    """The two things exporters read: `to_dict()` (the CLI JSON schema) and `document.text`."""

    document: Document
    techniques: list[dict[str, Any]] = field(default_factory=list)
    indicators: list[dict[str, Any]] | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    analyzed_at: str = ANALYZED_AT

    def to_dict(self) -> dict[str, Any]:
        data = {
            "schema_version": SCHEMA_VERSION,
            "document": self.document.to_dict(),
            "model": {"backend": "linear", "attack_version": "18.1"},
            "threshold": 0.6,
            "analyzed_at": self.analyzed_at,
            "techniques": self.techniques,
            "entities": self.entities,
        }
        if self.indicators is not None:
            data["indicators"] = self.indicators
        return data


def make_analysis(
    indicators: bool = True, origin: str = "https://example.org/report"
) -> FakeAnalysis:
    task = _span("It created a scheduled task named Updater for persistence.")
    phish = _span("The actor sent <script>alert('x')</script> phishing mails.")
    ip = _span("185.220.101.47")
    word = _span("scheduled task")
    return FakeAnalysis(
        Document(TEXT, title="Report <b>one</b>", origin=origin),
        techniques=[
            {
                "technique": "T1053.005",
                "technique_name": "Scheduled Task",
                "tactics": ["Execution", "Persistence", "Privilege Escalation"],
                "webpage_link": "https://attack.mitre.org/techniques/T1053/005/",
                "confidence_score": 0.91,
                "evidence": [
                    {
                        "start": task[0],
                        "end": task[1],
                        "confidence": 0.91,
                        "text": TEXT[task[0] : task[1]],
                    }
                ],
                "attributions": [
                    {"start": word[0], "end": word[1], "weight": 1.3},
                    {"start": task[0], "end": task[0] + 2, "weight": -0.2},
                ],
            },
            {
                "technique": "T1566",
                "technique_name": "Phishing",
                "tactics": ["Initial Access"],
                "webpage_link": "https://attack.mitre.org/techniques/T1566/",
                "confidence_score": 0.7,
                "evidence": [
                    {
                        "start": phish[0],
                        "end": phish[1],
                        "confidence": 0.7,
                        "text": TEXT[phish[0] : phish[1]],
                    }
                ],
            },
        ],
        indicators=[
            {
                "type": "ipv4",
                "value": "185.220.101.47",
                "raw": "185.220.101.47",
                "start": ip[0],
                "end": ip[1],
            }
        ]
        if indicators
        else None,
    )


class StandIn:
    """Records what the widget asked for and answers with a fixed analysis."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail
        self.card = {"backend": "stand-in", "attack_version": "18.1"}

    def analyze(self, document: Any, **options: Any) -> Any:
        self.calls.append({"document": document, **options})
        if self.fail:
            raise self.fail
        return make_analysis()


def as_model(stand_in: StandIn) -> MitreMap:
    """A stand-in where a `MitreMap` is asked for: it has the little of one that is used."""
    return cast("MitreMap", stand_in)
