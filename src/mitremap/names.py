"""Named software, groups and campaigns in a report, found with ATT&CK's own names and aliases.

Why: tool names are the evidence analysts weigh first ("a renamed copy of Mimikatz", "PsExec").
ATT&CK records what each named software, group and campaign is known to use, so a named tool
is a second, clearly labelled kind of evidence for a technique: "named software known to use
it". It never decides a technique by itself: a hit's confidence comes from the text model.

Aliases that are ordinary words ("Page", "Net", "Royal", "at") are the classic false hits of a
gazetteer. Such a name counts only written as ATT&CK writes it and with something that says it
is a name: a word beside it ("the Royal ransomware"), command-line arguments ("net user"), an
executable's extension ("at.exe"), capitals as ATT&CK writes them ("SUNSPOT"), or a place in a
list of names ("Uroburos, Carbon and Mosquito"). Never right after a dot (".Net Framework").

Names are compared case-insensitively (but a name ATT&CK writes in capitals, like "NICKEL", not
when written in lower case), with hyphens read as spaces and letters and digits apart
("APT-29", "Cobalt-Strike"); a group called "X Group" or "X Team" is also found as "X"
("Lazarus", "Sandworm"). A name two entries share ("Carbanak", "Snake") goes to the one ATT&CK
names so, then to the kind a word beside it says ("the Carbanak group"), then software first.

`benchmarks/bench_entities.py` measures it on a labelled set with traps.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice, pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from mitremap.attack._objects import ATTACK_URL

if TYPE_CHECKING:
    from mitremap.attack import AttackKB
    from mitremap.schema import EntityJSON

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
        "equation",
        "machete",
        "sunspot",
        "hammer",
        "explosive",
        "gold",
        "dust",
        "lucky",
        "maze",
        "sombrero",
        "empire",
        "cuba",
    }
)
# words that say "this is software" or "this is an actor" next to a name
_SOFTWARE_CUE = re.compile(
    r"\b(?:malware|backdoors?|trojans?|ransomware|loaders?|droppers?|implants?|rats?|tools?|"
    r"utility|variants?|family|botnet|worms?|wipers?|stealers?|spyware|rootkits?|framework|"
    r"commands?(?![\s-]*(?:and[\s-]*)?control)|binary|executables?|payloads?|stagers?|"
    r"beacons?)\b",
    re.IGNORECASE,
)
_GROUP_CUE = re.compile(
    r"\b(?:group|actors?|apt|campaign|operators?|gang|crew|affiliates?)\b", re.IGNORECASE
)
# between two names of one list: "Conti, REvil and Maze"
_LIST_GAP = re.compile(r"\s*(?:,|/|&|and|or)(?:\s*(?:and|or))?\s*", re.IGNORECASE)
_GROUP_SUFFIX = re.compile(r"\s+(?:Group|Team)$")
# a command line: a switch, a UNC path or a sub-command after the name (`net user`, `reg add`)
_COMMAND_ARGS = re.compile(
    r"^\s+(?:(?:/|-{1,2})[a-z?]|\\\\|(?:user|group|localgroup|view|use|share|start|stop|"
    r"accounts|session|time|config|add|query|delete|save|export|print)\b)",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w(?:[\w\-.]*\w)?\$?")
_KEY_BREAK = re.compile(r"-|(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")


@lru_cache(maxsize=65536)
def _key(name: str) -> str:
    """A name as looked up: its words, lower-cased, hyphens read as spaces, letters apart from
    digits ("APT-29", "APT29" and "apt 29" are one key), single-spaced."""
    words = (_KEY_BREAK.sub(" ", m.group(0)) for m in _WORD.finditer(name))
    return " ".join(" ".join(words).split()).lower()


def _is_ordinary(key: str) -> bool:
    return key in ORDINARY_WORDS or len(key) <= 2


def _near(text: str, start: int, end: int) -> str:
    """Three words either side of a span, within its sentence."""
    before = re.split(r"[.!?\n]\s", text[max(0, start - 60) : start])[-1]
    after = re.split(r"[.!?\n]\s", text[end : end + 60])[0]
    words = _WORD.findall(before)[-3:] + _WORD.findall(after)[:3]
    return " ".join(words)


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
        return f"{ATTACK_URL}/{section}/{self.id}/"

    def to_dict(self, text: str = "") -> EntityJSON:
        out: EntityJSON = {
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
    written: str  # this name or alias as ATT&CK writes it

    @property
    def group_like(self) -> bool:
        return self.kind in ("group", "campaign")


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
                if len(key) < 2 or not re.search(r"[a-z]", key):
                    continue
                if len(_WORD.findall(name)) > cls.MAX_WORDS:
                    continue
                entry = _Entry(entity.id, entity.name, entity.kind, _is_ordinary(key), name)
                if all(e.id != entity.id for e in entries[key]):
                    entries[key].append(entry)
        for found in list(entries.values()):  # "Lazarus Group" is also "Lazarus"
            for e in found:
                short = _GROUP_SUFFIX.sub("", e.written) if e.kind == "group" else e.written
                if short != e.written and _key(short) not in entries:
                    entries[_key(short)] = [
                        _Entry(e.id, e.name, e.kind, _is_ordinary(_key(short)), short)
                    ]
        return cls(dict(entries), {k: tuple(sorted(v)) for k, v in uses.items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a model's manifest (no knowledge base needed to analyze)."""
        return {
            "entries": [
                [key, e.id, e.name, e.kind, e.ordinary, e.written]
                for key, entries in self._entries.items()
                for e in entries
            ],
            "uses": {k: list(v) for k, v in self._uses.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Gazetteer:
        """Also reads a model saved before the written forms were kept (its keys are read
        again the way they are looked up today)."""
        entries: dict[str, list[_Entry]] = defaultdict(list)
        for row in data.get("entries", ()):
            key, ident, name, kind = (str(x) for x in row[:4])
            written = str(row[5]) if len(row) > 5 else name
            key = _key(key)
            entries[key].append(_Entry(ident, name, kind, _is_ordinary(key), written))
        uses = {str(k): tuple(str(t) for t in v) for k, v in data.get("uses", {}).items()}
        return cls(dict(entries), uses)

    def find(self, text: str, limit: int | None = None) -> list[NamedEntity]:
        """Every mention (the first `limit`), left to right; a longer name wins over the names
        inside it. Words are read as a stream with a few words of look-ahead, so memory does
        not grow with the text."""
        words = _WORD.finditer(text)
        ahead: deque[re.Match[str]] = deque(islice(words, self.MAX_WORDS))
        out: list[NamedEntity] = []
        while ahead and (limit is None or len(out) < limit):
            used = 1
            if self._may_start(text, ahead[0]):
                found = self._longest(text, list(ahead), out[-1].end if out else -1)
                if found is not None:
                    out.append(found[0])
                    used = found[1]
            for _ in range(used):
                ahead.popleft()
            ahead.extend(islice(words, self.MAX_WORDS - len(ahead)))
        return out

    def _may_start(self, text: str, word: re.Match[str]) -> bool:
        """A name can start at this word: some name starts so, and no dot is glued before it
        (".Net Framework", "report.Page")."""
        token = word.group(0).lower()
        token = token[:-4] if token.endswith(".exe") else token
        if token not in self._first and (
            token.isalpha() or _key(token).split(" ", 1)[0] not in self._first
        ):
            return False
        return word.start() == 0 or text[word.start() - 1] != "."

    def _longest(
        self, text: str, ahead: list[re.Match[str]], previous_end: int
    ) -> tuple[NamedEntity, int] | None:
        for n in range(len(ahead), 0, -1):
            span = ahead[:n]
            if n > 1 and any(_gap(text, a, b) for a, b in pairwise(span)):
                continue
            start, end = span[0].start(), span[-1].end()
            written = text[start:end]
            exe = written.lower().endswith(".exe")
            found = self._entity(
                text, start, end, written[:-4] if exe else written, exe, previous_end
            )
            if found is not None:
                return found, n
        return None

    def _entity(
        self, text: str, start: int, end: int, written: str, exe: bool, previous_end: int
    ) -> NamedEntity | None:
        entries = self._entries.get(_key(written))
        if not entries:
            return None
        near = _near(text, start, end)
        candidates = [
            entry
            for entry in entries
            if not _shouted(entry, written)
            and (
                not entry.ordinary
                or exe
                or _confirmed(text, start, end, written, entry, near, previous_end)
            )
        ]
        if not candidates:
            return None
        entry = _choose(candidates, written, near)
        return NamedEntity(
            entry.id, entry.name, entry.kind, start, end, self._uses.get(entry.id, ())
        )

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


def _confirmed(
    text: str, start: int, end: int, written: str, entry: _Entry, near: str, previous_end: int
) -> bool:
    """An ordinary-word name counts written as ATT&CK writes it (a tool also in lowercase, as
    commands are typed) and with something that says it is a name: a word beside it, capitals
    as ATT&CK writes them, a place in a list after another name, or command-line arguments."""
    typed = entry.kind == "tool" and written.islower() and written == entry.written.lower()
    if written != entry.written and not typed:
        return False
    if _SOFTWARE_CUE.search(near) or _GROUP_CUE.search(near):
        return True
    if written.isupper() and len(written) > 3:
        return True
    if previous_end >= 0 and _LIST_GAP.fullmatch(text[previous_end:start]):
        return True
    return typed and bool(_COMMAND_ARGS.match(text[end : end + 40]))


def _shouted(entry: _Entry, written: str) -> bool:
    """A name ATT&CK writes in capitals ("NICKEL", "SUNBURST") is no mention written in lower
    case ("cobalt and nickel", "a sunburst chart"); a tool's command still is ("netsh")."""
    return (
        entry.written.isupper()
        and len(entry.written) > 3
        and written.islower()
        and (entry.kind != "tool")
    )


def _choose(candidates: list[_Entry], written: str, near: str) -> _Entry:
    """One entry for a name several share: the one ATT&CK calls so, then the kind a word
    beside it says (software or actor), then ATT&CK's order (software first)."""
    named = [e for e in candidates if _key(e.name) == _key(written)]
    candidates = named or candidates
    software, actor = bool(_SOFTWARE_CUE.search(near)), bool(_GROUP_CUE.search(near))
    if len(candidates) > 1 and software != actor:
        candidates = [e for e in candidates if e.group_like == actor] or candidates
    return candidates[0]
