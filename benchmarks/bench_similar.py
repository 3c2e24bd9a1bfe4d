"""Similar adversaries, measured on ATT&CK itself with the answer held out.

1. Campaigns (the issue's measure): every ATT&CK campaign attributed to a group (`attributed-to`)
   and known to use techniques. The groups are ranked from the campaign's techniques after its
   contribution is removed: the campaign leaves the pool (its techniques neither join its
   group's profile nor count in the rarity weights), and so does every `uses` relationship of
   the group (technique or software) cited only by the campaign's own sources.
2. Single sources (a larger check, 150 cases, seeded): a group's techniques cited by one
   source with at least 5 of them, ranked after the relationships that only this source cites
   are removed from the group.

A case counts as found at k when one of its groups is among the first k.
Rows: the method (`mitremap.similar.Similarity`), its ablations, the frequency-only baseline
(raw count of techniques in common), and a popularity prior (largest groups, whatever the text).
Bar (issue 14): on the campaigns, the method beats the frequency-only baseline at top-5.

Run: .venv/bin/python benchmarks/bench_similar.py
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mitremap.attack import AttackKB
from mitremap.similar import Profile, Similarity, build_profiles, frequency_rank

REPO = Path(__file__).resolve().parents[1]
KS = (1, 5, 10)
SOURCE_CASES = 150
METHOD = "MitreMap similarity"
BASELINE = "frequency-only baseline (raw overlap count)"


@dataclass
class Case:
    query: set[str]
    truth: set[str]
    profiles: list[Profile]


Ranker = Callable[[Case], list[str]]


def _groups(profiles: Iterable[Profile]) -> list[Profile]:
    return [p for p in profiles if p.kind == "group"]


def _rank(sim: Similarity, case: Case) -> list[str]:
    return [s.id for s in sim.rank(dict.fromkeys(case.query, 1.0), kinds=("group",), top=10)]


def _own_only(profiles: list[Profile]) -> list[Profile]:
    return [Profile(p.id, p.name, p.kind, p.techniques) for p in profiles]


RANKERS: dict[str, Ranker] = {
    METHOD: lambda c: _rank(Similarity(c.profiles), c),
    "  ablation: no rarity weight": lambda c: _rank(Similarity(c.profiles, rarity=False), c),
    "  ablation: no sub-technique partial credit": lambda c: _rank(
        Similarity(c.profiles, parent_credit=0.0), c
    ),
    "  ablation: no techniques through software": lambda c: _rank(
        Similarity(_own_only(c.profiles)), c
    ),
    BASELINE: lambda c: frequency_rank(c.query, _groups(c.profiles)),
    "frequency-only, profiles with software": lambda c: frequency_rank(
        c.query, [Profile(p.id, p.name, p.kind, frozenset(p.known)) for p in _groups(c.profiles)]
    ),
    "popularity prior (largest groups)": lambda c: [
        p.id for p in sorted(_groups(c.profiles), key=lambda p: (-len(p.techniques), p.id))[:10]
    ],
}


class Attack:
    """ATT&CK's tables, and the sources cited for each `uses` relationship."""

    def __init__(self, bundle: Path) -> None:
        self.kb = AttackKB.from_file(bundle)
        self.uses: dict[str, set[str]] = defaultdict(set)
        for p in self.kb.procedures:
            self.uses[p.source_id].add(p.technique)
        self.cited = _citations(bundle)
        self.entities = [(e.id, e.name, e.kind) for e in self.kb.entities]

    def profiles_without(
        self, sources: set[str], groups: Iterable[str], drop: str = ""
    ) -> list[Profile]:
        """Every profile as `similar.profiles_from_attack` builds it, without entity `drop`,
        and without the `uses` relationships of `groups` that only `sources` cite."""
        uses = {k: set(v) for k, v in self.uses.items()}
        software = {k: set(v) for k, v in self.kb.software_used.items()}
        for group in groups:
            uses[group] = {t for t in uses.get(group, ()) if not self.cited[(group, t)] <= sources}
            software[group] = {
                s for s in software.get(group, ()) if not self.cited[(group, s)] <= sources
            }
        attributed = {c: g for c, g in self.kb.attributed_to.items() if c != drop}
        entities = [e for e in self.entities if e[0] != drop]
        return build_profiles(entities, uses, software, attributed)

    def campaign_cases(self) -> list[Case]:
        cases = []
        for campaign, groups in sorted(self.kb.attributed_to.items()):
            used = self.uses.get(campaign, set())
            if not used:
                continue
            links = (*used, *self.kb.software_used.get(campaign, ()))
            own = set().union(*(self.cited[(campaign, x)] for x in links))
            profiles = self.profiles_without(own, groups, drop=campaign)
            cases.append(Case(used, set(groups), profiles))
        return cases

    def source_cases(self, n: int) -> list[Case]:
        picked = []
        for group in self.kb.groups:
            by_source: dict[str, set[str]] = defaultdict(set)
            for t in self.uses.get(group.id, ()):
                for source in self.cited[(group.id, t)]:
                    by_source[source].add(t)
            for source, techniques in sorted(by_source.items()):
                if len(techniques) >= 5 and len(self.uses[group.id]) - len(techniques) >= 5:
                    picked.append((group.id, source, techniques))
        random.Random(0).shuffle(picked)
        return [
            Case(techniques, {group}, self.profiles_without({source}, [group]))
            for group, source, techniques in picked[:n]
        ]


def _citations(bundle_path: Path) -> dict[tuple[str, str], set[str]]:
    """(user's ATT&CK id, technique or software id) → the sources cited for that `uses`."""
    objects = json.loads(bundle_path.read_text(encoding="utf-8"))["objects"]
    ids = {}
    for o in objects:
        for ref in o.get("external_references", ()):
            if ref.get("source_name") == "mitre-attack" and "id" in o:
                ids[o["id"]] = ref.get("external_id")
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for o in objects:
        if o.get("type") == "relationship" and o.get("relationship_type") == "uses":
            key = (ids.get(o["source_ref"], ""), ids.get(o["target_ref"], ""))
            out[key] |= {r["source_name"] for r in o.get("external_references", ())}
    return out


def evaluate(cases: list[Case]) -> dict[str, dict[int, int]]:
    hits = {name: dict.fromkeys(KS, 0) for name in RANKERS}
    for case in cases:
        for name, ranker in RANKERS.items():
            ranked = ranker(case)
            for k in KS:
                hits[name][k] += bool(case.truth & set(ranked[:k]))
    return hits


def show(title: str, hits: dict[str, dict[int, int]], n: int) -> None:
    print(f"\n{title}")
    print(f"{'ranker':<48} {'top-1':>7} {'top-5':>7} {'top-10':>7}")
    for name, counts in hits.items():
        print(f"{name:<48} " + " ".join(f"{counts[k] / n:>7.2f}" for k in KS))


def main() -> int:
    root = Path(os.environ.get("MITREMAP_DATA") or REPO.parent / "shared" / "data")
    bundle = root / "attack" / "enterprise-attack-18.1.json"
    if not bundle.is_file():
        print(f"skipped: {bundle} not found (set MITREMAP_DATA)")
        return 0
    attack = Attack(bundle)
    groups = len(_groups(attack.profiles_without(set(), [])))
    print(f"ATT&CK {attack.kb.version}: {groups} groups with a technique profile, ranked")
    campaigns = attack.campaign_cases()
    by_campaign = evaluate(campaigns)
    show(
        f"1. {len(campaigns)} campaigns attributed to a group, held out",
        by_campaign,
        len(campaigns),
    )
    sources = attack.source_cases(SOURCE_CASES)
    show(f"2. {len(sources)} single sources of a group, held out", evaluate(sources), len(sources))
    ours, baseline = by_campaign[METHOD][5], by_campaign[BASELINE][5]
    n = len(campaigns)
    print(
        f"\ncampaigns top-5: method {ours}/{n}, frequency baseline {baseline}/{n} (bar: method > baseline)"
    )
    return 0 if ours > baseline else 1


if __name__ == "__main__":
    sys.exit(main())
