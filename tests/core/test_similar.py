"""Groups, campaigns and software with techniques in common with a report: rarity weights,
partial credit between a sub-technique and its parent, software a group uses, and wording."""

from __future__ import annotations

import pytest

from mitremap.similar import (
    NOTE,
    PARENT_CREDIT,
    SOFTWARE_CREDIT,
    WORDING,
    Profile,
    Similarity,
    build_profiles,
    frequency_rank,
    overlap_label,
    profiles_from_attack,
)

# T1059 is used by everyone; T1547.001 and T1003.001 by few
COMMON = [Profile(f"S9{i:03d}", f"tool {i}", "tool", frozenset({"T1059"})) for i in range(20)]


def _rank(profiles, techniques, **kwargs):
    return Similarity(profiles).rank(dict.fromkeys(techniques, 1.0), **kwargs)


def test_rare_techniques_count_more_than_ubiquitous_ones():
    profiles = [
        *COMMON,
        Profile("G1", "shares the common one", "group", frozenset({"T1059", "T1105"})),
        Profile("G2", "shares the rare one", "group", frozenset({"T1547.001", "T1105"})),
    ]
    sim = Similarity(profiles)
    assert sim.idf("T1059") < sim.idf("T1547.001") < sim.idf("T9999")
    ranked = _rank(profiles, ["T1059", "T1547.001"], kinds=("group",))
    assert [s.id for s in ranked] == ["G2", "G1"]
    assert [o.technique for o in ranked[0].in_common] == ["T1547.001"]


def test_sub_technique_and_parent_match_for_partial_credit():
    profiles = [
        *COMMON,
        Profile("G1", "parent only", "group", frozenset({"T1003"})),
        Profile("G2", "the same sub-technique", "group", frozenset({"T1003.001"})),
        Profile("G3", "a sibling only", "group", frozenset({"T1003.002"})),
    ]
    ranked = _rank(profiles, ["T1003.001"], kinds=("group",))
    assert [s.id for s in ranked] == ["G2", "G1"]  # a sibling is no match
    exact, partial = ranked[0].in_common[0], ranked[1].in_common[0]
    assert exact.exact and exact.credit == 1.0
    assert (partial.matched, partial.credit, partial.exact) == ("T1003", PARENT_CREDIT, False)
    assert partial.to_dict() == {"technique": "T1003.001", "matched": "T1003", "partial": "parent"}
    # and the other way round: the report's parent matches a profile's sub-technique
    (found,) = _rank(profiles[-2:-1], ["T1003"])
    assert found.in_common[0].to_dict()["partial"] == "sub-technique"


def test_techniques_through_software_count_part_and_are_named():
    profiles = build_profiles(
        [("G1", "Group", "group"), ("S1", "Tool", "tool")],
        uses={"G1": {"T1105"}, "S1": {"T1003.001", "T1105"}},
        software_used={"G1": ["S1"]},
        attributed_to={},
    )
    group = next(p for p in profiles if p.id == "G1")
    assert group.techniques == frozenset({"T1105"})
    assert dict(group.through_software) == {"T1003.001": "S1"}
    assert group.weight("T1003.001") == SOFTWARE_CREDIT
    (found,) = Similarity(profiles).rank({"T1003.001": 1.0}, kinds=("group",))
    assert found.in_common[0].software == "S1" and found.in_common[0].credit == SOFTWARE_CREDIT
    assert overlap_label(found.in_common[0].to_dict()) == "T1003.001 (through S1)"


def test_a_group_profile_includes_its_campaigns():
    profiles = build_profiles(
        [("G1", "Group", "group"), ("C1", "Campaign", "campaign")],
        uses={"G1": {"T1105"}, "C1": {"T1486"}},
        software_used={},
        attributed_to={"C1": ["G1"]},
    )
    assert {p.id: set(p.techniques) for p in profiles} == {
        "G1": {"T1105", "T1486"},
        "C1": {"T1486"},
    }


def test_a_profile_that_uses_everything_does_not_match_everything():
    everything = frozenset(f"T{n}" for n in range(1100, 1300))
    profiles = [
        *COMMON,
        Profile("G1", "uses everything", "group", everything),
        Profile("G2", "focused", "group", frozenset({"T1105", "T1110", "T1133"})),
    ]
    ranked = _rank(profiles, ["T1105", "T1110", "T1133"])
    assert [s.id for s in ranked] == ["G2", "G1"]
    assert ranked[0].coverage == pytest.approx(1.0) and ranked[1].coverage == pytest.approx(1.0)


def test_confidence_weights_the_report_techniques():
    profiles = [
        Profile("G1", "a", "group", frozenset({"T1105"})),
        Profile("G2", "b", "group", frozenset({"T1110"})),
    ]
    ranked = Similarity(profiles).rank({"T1105": 0.9, "T1110": 0.3})
    assert [s.id for s in ranked] == ["G1", "G2"]
    assert ranked[0].coverage == pytest.approx(0.9 / 1.2)


def test_nothing_in_common_nothing_listed():
    profiles = [Profile("G1", "a", "group", frozenset({"T1105"}))]
    assert _rank(profiles, ["T1486"]) == []
    assert _rank(profiles, []) == []
    assert Similarity(profiles).rank({"T1105": 0.0}) == []


def test_frequency_baseline_counts_raw_overlap():
    profiles = [
        Profile("G1", "a", "group", frozenset({"T1059", "T1105", "T1003"})),
        Profile("G2", "b", "group", frozenset({"T1059"})),
        Profile("G3", "c", "group", frozenset({"T1486"})),
    ]
    assert frequency_rank(["T1059", "T1105"], profiles) == ["G1", "G2"]


def test_wording_is_techniques_in_common_never_attribution():
    assert WORDING == "techniques in common with"
    assert "not attribution" in NOTE and "attributed" not in NOTE


def test_real_profiles(real_kb):
    profiles = {p.id: p for p in profiles_from_attack(real_kb)}
    apt29 = profiles["G0016"]
    assert "T1195.002" in apt29.techniques  # from the SolarWinds Compromise it is credited with
    assert apt29.url == "https://attack.mitre.org/groups/G0016/"
    assert {p.kind for p in profiles.values()} == {"group", "campaign", "malware", "tool"}
    sim = Similarity(profiles.values())
    assert sim.idf("T1105") < sim.idf("T1003.001")  # Ingress Tool Transfer: nearly everyone


def test_real_ranking_of_a_known_campaign(real_kb):
    """SolarWinds Compromise's own techniques: APT29, credited with it, ranks first."""
    used = {p.technique for p in real_kb.procedures if p.source_id == "C0024"}
    (first, *_) = Similarity.from_attack(real_kb).rank(dict.fromkeys(used, 1.0), kinds=("group",))
    assert (first.id, first.name) == ("G0016", "APT29")
    assert first.to_dict()["webpage_link"] == "https://attack.mitre.org/groups/G0016/"
