"""Named software, groups and campaigns in a report, found with ATT&CK's own names and aliases.

Why: tool names are the evidence analysts weigh first ("a renamed copy of Mimikatz", "PsExec").
ATT&CK records what each named software, group and campaign is known to use, so a named tool
is a second, clearly labelled kind of evidence for a technique: "named software known to use
it". It never decides a technique by itself: a hit's confidence comes from the text model.

Aliases that are ordinary words ("Page", "Net", "Royal", "at") are the classic false hits of a
gazetteer. Such a name counts only written as ATT&CK writes it and next to a word that says
what it is ("the Royal ransomware", "net user", "at.exe").
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice, pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mitremap.attack import AttackKB

ATTACK_URL = "https://attack.mitre.org/"
# ATT&CK names and aliases that are ordinary English words (measured: each occurs in lowercase
# in TRAM's "no technique" sentences), plus short words that read as English
ORDINARY_WORDS = frozenset(
    {
        "at",
        "play",
        "net",
        "page",
        "route",
        "expand",
        "calendar",
        "ruler",
        "emissary",
        "wiper",
        "soldier",
        "inception",
        "carbon",
        "solar",
        "royal",
        "flame",
        "snake",
        "epic",
        "photo",
        "nightclub",
        "cobalt",
        "tor",
        "reg",
        "ftp",
        "arp",
        "dok",
        "zox",
        "orz",
        "rtm",
        "abk",
        "bbk",
        "yty",
        "lv",
        "tvt",
        "frp",
        "ps1",
        "ryuk",
        "hi",
        "sys",
        "ping",
        "whoami",
        "power",
        "pony",
        "shark",
        "mosquito",
        "turla",
        "equation",
        "machete",
        "sunspot",
        "komplex",
        "hammer",
        "explosive",
        "gold",
        "dust",
        "lucky",
        "maze",
        "sombrero",
    }
)
# words that say "this is software / an actor" next to an ordinary-word name
_CUE = re.compile(
    r"\b(?:malware|backdoor|trojan|ransomware|loader|dropper|implant|rat|tool|utility|"
    r"variant|family|botnet|worm|wiper|stealer|spyware|rootkit|framework|group|actor|apt|"
    r"campaign|operators?|gang|commands?(?![\s-]*(?:and[\s-]*)?control)|binary|executable|"
    r"payload)\b",
    re.IGNORECASE,
)
# a command line: a switch, a UNC path or a sub-command after the name (`net user`, `reg add`)
_COMMAND_ARGS = re.compile(
    r"^\s+(?:(?:/|-{1,2})[a-z?]|\\\\|(?:user|group|localgroup|view|use|share|start|stop|"
    r"accounts|session|time|config|add|query|delete|save|export|print)\b)",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w(?:[\w\-.]*\w)?")


def _key(name: str) -> str:
    """A name as looked up: its words, lower-cased, single-spaced."""
    return " ".join(m.group(0) for m in _WORD.finditer(name)).lower()


def _gap(text: str, a: re.Match[str], b: re.Match[str]) -> bool:
    """Two words are not one name across a sentence or line break."""
    between = text[a.end() : b.start()]
    return len(between) > 2 or any(c in between for c in ".\n;:,()[]")


@dataclass(frozen=True)
class NamedEntity:
    """A mention of ATT&CK software, a group or a campaign, with what ATT&CK says it uses."""

    id: str  # S0002, G0016, C0024
    name: str  # ATT&CK's name (the text may use an alias)
    kind: str  # "malware" | "tool" | "group" | "campaign"
    start: int
    end: int
    techniques: tuple[str, ...] = ()  # techniques ATT&CK says it uses

    @property
    def url(self) -> str:
        section = {"group": "groups", "campaign": "campaigns"}.get(self.kind, "software")
        return f"{ATTACK_URL}{section}/{self.id}/"

    def to_dict(self, text: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "webpage_link": self.url,
        }
        if text:
            out["text"] = text[self.start : self.end]
        return out


@dataclass(frozen=True)
class _Entry:
    id: str
    name: str
    kind: str
    ordinary: bool


class Gazetteer:
    """Finds ATT&CK names and aliases in text: runs of up to `MAX_WORDS` words looked up in a
    table of normalised names, longest first."""

    MAX_WORDS = 4

    def __init__(self, entries: dict[str, list[_Entry]], uses: dict[str, tuple[str, ...]]) -> None:
        self._entries = entries  # normalised name → entries
        self._uses = uses
        self._first = {key.split(" ")[0] for key in entries}

    @classmethod
    def from_attack(cls, kb: AttackKB) -> Gazetteer:
        uses: dict[str, set[str]] = defaultdict(set)
        for proc in kb.procedures:
            uses[proc.source_id].add(proc.technique)
        entries: dict[str, list[_Entry]] = defaultdict(list)
        for entity in (*kb.software, *kb.groups, *kb.campaigns):
            for name in dict.fromkeys((entity.name, *entity.aliases)):
                key = _key(name)
                if len(key) < 2 or not re.search(r"[a-z]", key) or key.count(" ") >= cls.MAX_WORDS:
                    continue
                ordinary = key in ORDINARY_WORDS or len(key) <= 2
                entries[key].append(_Entry(entity.id, entity.name, entity.kind, ordinary))
        return cls(dict(entries), {k: tuple(sorted(v)) for k, v in uses.items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a model's manifest (no knowledge base needed to analyze)."""
        return {
            "entries": [
                [key, e.id, e.name, e.kind, e.ordinary]
                for key, entries in self._entries.items()
                for e in entries
            ],
            "uses": {k: list(v) for k, v in self._uses.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Gazetteer:
        entries: dict[str, list[_Entry]] = defaultdict(list)
        for key, ident, name, kind, ordinary in data.get("entries", ()):
            entries[str(key)].append(_Entry(str(ident), str(name), str(kind), bool(ordinary)))
        uses = {str(k): tuple(str(t) for t in v) for k, v in data.get("uses", {}).items()}
        return cls(dict(entries), uses)

    def find(self, text: str) -> list[NamedEntity]:
        """Every mention, left to right; a longer name wins over the names inside it. Words
        are read as a stream with a few words of look-ahead, so memory does not grow with
        the text."""
        words = _WORD.finditer(text)
        ahead: deque[re.Match[str]] = deque(islice(words, self.MAX_WORDS))
        out = []
        while ahead:
            first = ahead[0].group(0).lower()
            used = 1
            if first in self._first or first.removesuffix(".exe") in self._entries:
                for n in range(len(ahead), 0, -1):
                    span = list(islice(ahead, n))
                    if n > 1 and any(_gap(text, a, b) for a, b in pairwise(span)):
                        continue
                    start, end = span[0].start(), span[-1].end()
                    written = text[start:end]
                    exe = written.lower().endswith(".exe")
                    found = self._entity(text, start, end, written[:-4] if exe else written, exe)
                    if found is not None:
                        out.append(found)
                        used = n
                        break
            for _ in range(used):
                ahead.popleft()
            ahead.extend(islice(words, self.MAX_WORDS - len(ahead)))
        return out

    def _entity(
        self, text: str, start: int, end: int, written: str, exe: bool
    ) -> NamedEntity | None:
        for entry in self._entries.get(_key(written), ()):
            if entry.ordinary and not exe and not self._confirmed(text, start, end, written, entry):
                continue
            # the first listed wins: software before groups before campaigns
            return NamedEntity(
                entry.id, entry.name, entry.kind, start, end, self._uses.get(entry.id, ())
            )
        return None

    @staticmethod
    def _confirmed(text: str, start: int, end: int, written: str, entry: _Entry) -> bool:
        """An ordinary-word name: written as ATT&CK writes one of its names, and said to be
        software or an actor by a word beside it (or, for a command, followed by arguments)."""
        if written != entry.name and written not in _aliases_like(written, entry):
            return False
        before = re.split(r"[.!?\n]\s", text[max(0, start - 40) : start])[-1]
        after = re.split(r"[.!?\n]\s", text[end : end + 40])[0]
        near = " ".join(before.split()[-3:] + after.split()[:3])
        if _CUE.search(near):
            return True
        return entry.kind == "tool" and written.islower() and bool(_COMMAND_ARGS.match(after))

    def label_evidence(self, entities: Iterable[NamedEntity], labels: Sequence[str]) -> np.ndarray:
        """Per label: 1 / (number of techniques it uses) of the most specific entity named in
        the report that ATT&CK says uses the label, else 0. A feature of report confidence."""
        index = {label: j for j, label in enumerate(labels)}
        out = np.zeros(len(labels), dtype=np.float32)
        for entity in {e.id: e for e in entities}.values():
            if not entity.techniques:
                continue
            weight = 1.0 / len(entity.techniques)
            for technique in entity.techniques:
                j = index.get(technique)
                if j is not None and weight > out[j]:
                    out[j] = weight
        return out

    def known_users(self, entities: Iterable[NamedEntity], technique: str) -> list[NamedEntity]:
        """The entities named in a report that ATT&CK says use `technique` (or a sub-technique
        of it, or its parent)."""
        parent = technique.split(".")[0]
        out = []
        for entity in entities:
            if any(
                t in (technique, parent) or t.startswith(technique + ".") for t in entity.techniques
            ):
                out.append(entity)
        return out


def _aliases_like(written: str, entry: _Entry) -> tuple[str, ...]:
    """The written form counts as ATT&CK's spelling when it differs only by case in a command
    (tools are typed in lowercase: `net user`, `at 13:00`)."""
    return (written,) if entry.kind == "tool" and written.islower() else ()
