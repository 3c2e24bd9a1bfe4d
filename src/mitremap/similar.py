"""Who else works like this: ATT&CK groups, campaigns and software ranked by the techniques
they have in common with a report.

Why this way: a report's techniques are compared with each candidate's known technique profile
(what ATT&CK says it uses, plus at `SOFTWARE_CREDIT` what the software it uses does).
Techniques nearly everyone uses (T1059, T1105 …) say little about who is alike, so every
technique is weighted by how rare it is among all profiles (an IDF weight, as in text
retrieval); a sub-technique and its parent match each other at `PARENT_CREDIT`, since
"Scheduled Task" and "Scheduled Task/Job" describe one behaviour at two levels of detail. The
sum is divided by the report's weight and by the square root of the profile's: a candidate
that uses everything does not match everything, yet a well-documented group is not punished
for being documented as much as a full cosine would punish it (measured while building this:
a full cosine found the attributed group in the top 5 for 0.22 of the held-out campaigns, this
score for 0.61).

It is a list of *techniques in common*, never an attribution: ATT&CK's profiles are incomplete,
and actors share tools and tradecraft. `benchmarks/bench_similar.py` measures it on ATT&CK's
own campaigns attributed to a group.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mitremap.attack._objects import ATTACK_URL

if TYPE_CHECKING:
    from mitremap.attack import AttackKB
    from mitremap.schema import OverlapJSON, SimilarAdversaryJSON

PARENT_CREDIT = 0.5
"""A sub-technique matched by its parent (or the other way round) counts this much."""
SOFTWARE_CREDIT = 0.5
"""A technique a group or campaign is known to use only through its software counts this much."""
WORDING = "techniques in common with"
"""How every front end introduces the list: shared techniques, never attribution."""
NOTE = (
    "Techniques in common with ATT&CK groups, campaigns and software: similarity of tradecraft, "
    "not attribution."
)
KINDS = ("group", "campaign", "software")


def _url(kind: str, ident: str) -> str:
    section = {"group": "groups", "campaign": "campaigns"}.get(kind, "software")
    return f"{ATTACK_URL}/{section}/{ident}/"


@dataclass(frozen=True)
class Profile:
    """A candidate: an ATT&CK group, campaign or software and the techniques it is known to use
    (`through_software`: technique → the software that brings it, for techniques not in
    `techniques`)."""

    id: str
    name: str
    kind: str  # "group" | "campaign" | "malware" | "tool"
    techniques: frozenset[str]
    through_software: Mapping[str, str] = field(default_factory=dict)

    def weight(self, technique: str) -> float:
        if technique in self.techniques:
            return 1.0
        return SOFTWARE_CREDIT if technique in self.through_software else 0.0

    @property
    def known(self) -> set[str]:
        return set(self.techniques) | set(self.through_software)

    @property
    def url(self) -> str:
        return _url(self.kind, self.id)


@dataclass(frozen=True)
class Overlap:
    """One report technique matched in a candidate's profile: the same id, or (partial credit)
    its parent or one of its sub-techniques; `software` when the candidate uses it through it."""

    technique: str  # the report's
    matched: str  # the candidate's
    weight: float  # this match's share of the score (before normalisation)
    credit: float = 1.0  # 1 for its own technique; less for partial or through-software matches
    software: str = ""

    @property
    def exact(self) -> bool:
        return self.technique == self.matched

    def to_dict(self) -> OverlapJSON:
        out: OverlapJSON = {"technique": self.technique, "matched": self.matched}
        if not self.exact:
            out["partial"] = "parent" if "." in self.technique else "sub-technique"
        if self.software:
            out["through_software"] = self.software
        return out

    @property
    def label(self) -> str:
        return overlap_label(self.to_dict())


def overlap_label(overlap: Mapping[str, Any]) -> str:
    """How a match reads in a table: `T1003.001`, `T1566 ≈ T1566.001` (partial credit),
    `T1547.001 (through S0196)` (known through the software it uses)."""
    label = str(overlap.get("technique", ""))
    if overlap.get("matched") and overlap["matched"] != label:
        label += f" ≈ {overlap['matched']}"
    if overlap.get("through_software"):
        label += f" (through {overlap['through_software']})"
    return label


@dataclass(frozen=True)
class SimilarAdversary:
    """A candidate with techniques in common with the report, and which ones."""

    id: str
    name: str
    kind: str
    score: float  # for ranking: higher is more in common (not a probability)
    coverage: float  # 0–1: the report's techniques (weighted by confidence × credit) it shares
    in_common: tuple[Overlap, ...]
    techniques_known: int

    @property
    def url(self) -> str:
        return _url(self.kind, self.id)

    def to_dict(self) -> SimilarAdversaryJSON:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "webpage_link": self.url,
            "score": round(self.score, 4),
            "coverage": round(self.coverage, 4),
            "techniques_known": self.techniques_known,
            "techniques_in_common": [o.to_dict() for o in self.in_common],
        }


def profiles_from_attack(kb: AttackKB, kinds: Iterable[str] = KINDS) -> list[Profile]:
    """Every group, campaign and software of `kb` known to use a technique."""
    uses: dict[str, set[str]] = defaultdict(set)
    for procedure in kb.procedures:
        uses[procedure.source_id].add(procedure.technique)
    wanted = set(kinds)
    entities = [
        *(kb.groups if "group" in wanted else ()),
        *(kb.campaigns if "campaign" in wanted else ()),
        *(kb.software if "software" in wanted else ()),
    ]
    return build_profiles(
        [(e.id, e.name, e.kind) for e in entities], uses, kb.software_used, kb.attributed_to
    )


def build_profiles(
    entities: Iterable[tuple[str, str, str]],
    uses: Mapping[str, Iterable[str]],
    software_used: Mapping[str, Iterable[str]],
    attributed_to: Mapping[str, Iterable[str]],
) -> list[Profile]:
    """Profiles of `entities` (id, name, kind) from ATT&CK's tables: who uses which technique,
    which software, and which campaigns are attributed to which group. A group's profile
    includes its campaigns; groups and campaigns also know what their software does."""
    techniques = {k: set(v) for k, v in uses.items()}
    software = {k: set(v) for k, v in software_used.items()}
    for campaign, groups in attributed_to.items():
        for group in groups:
            techniques.setdefault(group, set()).update(techniques.get(campaign, ()))
            software.setdefault(group, set()).update(software.get(campaign, ()))
    out = []
    for ident, name, kind in entities:
        own = techniques.get(ident, set())
        through = _through_software(uses, software.get(ident, ()), own)
        if own or through:
            out.append(Profile(ident, name, kind, frozenset(own), through))
    return out


def _through_software(
    uses: Mapping[str, Iterable[str]], tools: Iterable[str], own: set[str]
) -> dict[str, str]:
    through: dict[str, str] = {}
    for tool in sorted(tools):
        for technique in sorted(uses.get(tool, ())):
            if technique not in own:
                through.setdefault(technique, tool)
    return through


class Similarity:
    """Ranks profiles against a report's techniques (the score: see the module docstring)."""

    def __init__(
        self,
        profiles: Iterable[Profile],
        *,
        rarity: bool = True,
        parent_credit: float = PARENT_CREDIT,
    ) -> None:
        """`rarity=False` weighs every technique 1 (an ablation the benchmark measures)."""
        self.profiles = [p for p in profiles if p.techniques or p.through_software]
        self.parent_credit = parent_credit
        counts = Counter(t for p in self.profiles for t in p.known)
        total = len(self.profiles)
        self._rarest = math.log(1 + total) if rarity else 1.0
        self._idf = {
            t: math.log((1 + total) / (1 + n)) if rarity else 1.0 for t, n in counts.items()
        }
        self._sizes = {
            p.id: math.sqrt(_norm(p.weight(t) * self.idf(t) for t in p.known)) or 1.0
            for p in self.profiles
        }
        self._children: dict[str, dict[str, list[str]]] = {}
        for p in self.profiles:
            children: dict[str, list[str]] = defaultdict(list)
            for t in sorted(p.known):
                if "." in t:
                    children[t.split(".")[0]].append(t)
            self._children[p.id] = dict(children)

    @classmethod
    def from_attack(cls, kb: AttackKB) -> Similarity:
        return cls(profiles_from_attack(kb))

    def idf(self, technique: str) -> float:
        """How rare a technique is among all profiles (one that none uses: the rarest)."""
        return self._idf.get(technique, self._rarest)

    def rank(
        self, techniques: Mapping[str, float], *, kinds: Iterable[str] = KINDS, top: int = 10
    ) -> list[SimilarAdversary]:
        """The `top` candidates of the given kinds with the most in common with `techniques`
        (id → confidence, which weights each technique), best first; none with nothing."""
        kinds = set(kinds)
        wanted = kinds | ({"malware", "tool"} if "software" in kinds else set())
        query = {t: float(c) for t, c in techniques.items() if c > 0}
        total = sum(query.values())
        if not total:
            return []
        found = []
        for profile in self.profiles:
            if profile.kind not in wanted:
                continue
            overlaps = self._overlaps(query, profile)
            if not overlaps:
                continue
            found.append(
                SimilarAdversary(
                    profile.id,
                    profile.name,
                    profile.kind,
                    sum(o.weight for o in overlaps) / (total * self._sizes[profile.id]),
                    sum(query[o.technique] * o.credit for o in overlaps) / total,
                    tuple(sorted(overlaps, key=lambda o: (-o.weight, o.technique))),
                    len(profile.known),
                )
            )
        found.sort(key=lambda s: (-s.score, s.id))
        return found[:top]

    def _overlaps(self, query: Mapping[str, float], profile: Profile) -> list[Overlap]:
        """Each report technique's best match in the profile: itself, else its parent or its
        best sub-technique at `PARENT_CREDIT`; worth confidence × credit × rarity."""
        out = []
        children = self._children[profile.id]
        for technique, confidence in query.items():
            options = [(technique, 1.0)]
            options += [(t, self.parent_credit) for t in children.get(technique, ())]
            parent = technique.split(".")[0]
            if parent != technique:
                options.append((parent, self.parent_credit))
            scored = [(c * profile.weight(t), self.idf(t), t) for t, c in options]
            credit, idf, matched = max(scored, key=lambda o: (o[0] * o[1], o[2]))
            if credit > 0:
                software = profile.through_software.get(matched, "")
                out.append(Overlap(technique, matched, confidence * credit * idf, credit, software))
        return out


def frequency_rank(
    techniques: Iterable[str], profiles: Iterable[Profile], top: int = 10
) -> list[str]:
    """The baseline: candidates by how many of the techniques they use (raw counts of their own
    techniques: no rarity weight, no partial credit, no software, no normalisation)."""
    wanted = set(techniques)
    counts = [(len(wanted & p.techniques), p.id) for p in profiles]
    return [ident for n, ident in sorted(counts, key=lambda c: (-c[0], c[1])) if n][:top]


def _norm(values: Iterable[float]) -> float:
    return math.sqrt(sum(v * v for v in values))
