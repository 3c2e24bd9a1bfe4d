"""ATT&CK's objects as MitreMap keeps them: frozen dataclasses with their ATT&CK pages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ATTACK_URL = "https://attack.mitre.org"

_CITATION = re.compile(r"\s*\(Citation:[^)]*\)")
_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\((?:https?://[^)\s]+)\)")


@dataclass(frozen=True)
class Tactic:
    """An ATT&CK tactic (the "why" of a technique), e.g. TA0002 Execution."""

    id: str
    name: str
    shortname: str

    @property
    def url(self) -> str:
        return f"{ATTACK_URL}/tactics/{self.id}/"


@dataclass(frozen=True)
class Technique:
    """An ATT&CK technique or sub-technique."""

    id: str
    name: str
    tactics: tuple[Tactic, ...]
    url: str
    is_subtechnique: bool
    parent: str | None
    description: str
    platforms: tuple[str, ...]
    deprecated: bool = False
    revoked: bool = False
    stix_id: str = ""

    @property
    def active(self) -> bool:
        return not (self.deprecated or self.revoked)

    @property
    def tactic_names(self) -> list[str]:
        return [t.name for t in self.tactics]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "tactics": [{"id": t.id, "name": t.name} for t in self.tactics],
            "url": self.url,
            "is_subtechnique": self.is_subtechnique,
            "parent": self.parent,
            "platforms": list(self.platforms),
            "deprecated": self.deprecated,
            "revoked": self.revoked,
            "description": self.description,
        }


@dataclass(frozen=True)
class Entity:
    """A group, software (malware or tool) or campaign, with its aliases."""

    id: str
    name: str
    kind: str  # "group" | "malware" | "tool" | "campaign"
    aliases: tuple[str, ...] = ()
    description: str = ""
    stix_id: str = ""

    @property
    def url(self) -> str:
        path = {"group": "groups", "campaign": "campaigns"}.get(self.kind, "software")
        return f"{ATTACK_URL}/{path}/{self.id}/"


@dataclass(frozen=True)
class Procedure:
    """A procedure example: how one group, software or campaign used one technique."""

    technique: str
    text: str
    source_id: str
    source_name: str


@dataclass(frozen=True)
class SearchResult:
    """One `AttackKB.search` match: a technique, tactic or entity, and the name that matched."""

    id: str
    name: str
    kind: str
    matched: str
    score: float


@dataclass(frozen=True)
class Mitigation:
    """An ATT&CK mitigation (a `course-of-action`), e.g. M1043 Credential Access Protection."""

    id: str
    name: str
    description: str = ""

    @property
    def url(self) -> str:
        return f"{ATTACK_URL}/mitigations/{self.id}/"


@dataclass(frozen=True)
class LogSource:
    """Where an analytic looks: a log (`WinEventLog:Sysmon`) and what in it (`EventCode=10`)."""

    name: str
    channel: str
    data_component: str = ""  # the data component's id (DC0039) when the bundle names one


@dataclass(frozen=True)
class Analytic:
    """One platform's way to carry out a detection strategy (ATT&CK 18+), e.g. AN1030."""

    id: str
    platforms: tuple[str, ...]
    description: str
    log_sources: tuple[LogSource, ...] = ()


@dataclass(frozen=True)
class DetectionStrategy:
    """How to detect a technique (ATT&CK 18+), e.g. DET0363, with its analytics."""

    id: str
    name: str
    analytics: tuple[Analytic, ...] = ()

    @property
    def url(self) -> str:
        return f"{ATTACK_URL}/detectionstrategies/{self.id}/"


@dataclass(frozen=True)
class DataComponent:
    """What to collect (e.g. DC0039 "Process Access"): before ATT&CK 18, the detection guidance
    of a technique; from 18 on, what the analytics' log sources belong to."""

    id: str
    name: str
    description: str = ""
    log_sources: tuple[LogSource, ...] = ()

    @property
    def url(self) -> str:
        return f"{ATTACK_URL}/datacomponents/{self.id}/"


def technique_url(technique_id: str) -> str:
    """The ATT&CK page of a technique: T1053.005 → https://attack.mitre.org/techniques/T1053/005/."""
    return f"{ATTACK_URL}/techniques/{technique_id.replace('.', '/')}/"


def clean_attack_text(text: str) -> str:
    """Strip `(Citation: …)` markers and turn ATT&CK's markdown links into their names."""
    text = _CITATION.sub("", text)
    text = _MARKDOWN_LINK.sub(r"\1", text)
    return re.sub(r"[ \t]+", " ", text).strip()
