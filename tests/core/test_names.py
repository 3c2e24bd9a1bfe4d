"""Named software, groups and campaigns: ATT&CK's names found in text, traps avoided."""

from __future__ import annotations

import pytest

from mitremap.names import Gazetteer


@pytest.fixture(scope="module")
def gazetteer(real_kb) -> Gazetteer:
    return Gazetteer.from_attack(real_kb)


def _found(gazetteer: Gazetteer, text: str) -> list[tuple[str, str]]:
    return [(e.id, text[e.start : e.end]) for e in gazetteer.find(text)]


def test_software_names_aliases_and_executables_with_offsets(gazetteer):
    text = "APT29 (Cozy Bear) ran mimikatz.exe and Cobalt Strike, then PsExec."
    found = _found(gazetteer, text)
    assert found == [
        ("G0016", "APT29"),
        ("G0016", "Cozy Bear"),
        ("S0002", "mimikatz.exe"),
        ("S0154", "Cobalt Strike"),
        ("S0029", "PsExec"),
    ]
    mimikatz = gazetteer.find(text)[2]
    assert "T1003.001" in mimikatz.techniques  # what ATT&CK says it uses
    assert mimikatz.url == "https://attack.mitre.org/software/S0002/"


@pytest.mark.parametrize(
    "text",
    [
        "Turn to Page 3 of the report.",
        "We met at the Net conference at 10:00 UTC.",
        "The cobalt price rose sharply.",
        "The royal family visited the site.",
        "A flame and a snake appear in the logo.",
        "Ryuk is a character in Death Note.",
    ],
)
def test_ordinary_words_are_not_software(gazetteer, text):
    assert _found(gazetteer, text) == []


def test_ordinary_word_names_count_with_a_word_that_says_what_they_are(gazetteer):
    assert [n for _, n in _found(gazetteer, "The Royal ransomware encrypted the servers.")] == [
        "Royal"
    ]
    commands = _found(gazetteer, "They ran net user /add and reg add HKLM\\Software\\X.")
    assert [n for _, n in commands] == ["net", "reg"]


def test_a_name_never_spans_a_sentence_break(gazetteer):
    assert _found(gazetteer, "It was Cobalt. Strike teams were ready.") == []


def test_round_trip_through_plain_data(gazetteer):
    again = Gazetteer.from_dict(gazetteer.to_dict())
    text = "The actor used AdFind and rclone.exe to steal data."
    assert (
        _found(again, text)
        == _found(gazetteer, text)
        == [
            ("S0552", "AdFind"),
            ("S1040", "rclone.exe"),
        ]
    )


def test_known_users_of_a_technique(gazetteer):
    entities = gazetteer.find("They used Mimikatz and PsExec.")
    assert [e.name for e in gazetteer.known_users(entities, "T1003.001")] == ["Mimikatz"]
    assert [e.name for e in gazetteer.known_users(entities, "T1569.002")] == ["PsExec"]
    assert gazetteer.known_users(entities, "T1486") == []


def test_label_evidence_weighs_specific_tools_over_frameworks(gazetteer):
    entities = gazetteer.find("They ran PsExec and Cobalt Strike.")
    labels = ["T1569.002", "T1055", "T1486"]
    evidence = gazetteer.label_evidence(entities, labels)
    psexec = next(e for e in entities if e.name == "PsExec")
    assert evidence[0] == pytest.approx(1 / len(psexec.techniques))  # PsExec: a few techniques
    assert 0 < evidence[1] < evidence[0]  # Cobalt Strike injects, among dozens of techniques
    assert evidence[2] == 0.0


def test_command_and_control_is_not_a_command(gazetteer):
    text = "It sent them to its command-and-control server at 185.220.101.47 over HTTPS."
    assert _found(gazetteer, text) == []
    assert [n for _, n in _found(gazetteer, "They scheduled it with the at command.")] == ["at"]


# ---- the labelled set's traps and variants (benchmarks/bench_entities.py measures them all) --


@pytest.mark.parametrize(
    "text",
    [
        "The page loaded a tracking script before the login form.",
        "The loader is built on the .Net Framework 4.8.",  # cue word, but glued to a dot
        "Net revenue fell by 4% in the quarter.",
        "The group used Net-NTLM hashes captured by relaying.",
        "The blue cobalt glaze is typical of the region's pottery.",
        "Ryuk the character eats apples in every episode.",
        "The Royal Mail suspended international deliveries.",
        "The app was downloaded from Google Play by 10,000 users.",
        "The Snake River crosses three states.",
        "The exploit targeted the Microsoft Equation Editor (CVE-2017-11882).",
        "The Empire State Building was lit in blue.",
        "The Cuba delegation arrived on Monday.",
        "Cobalt and nickel are used in batteries.",  # NICKEL: an alias ATT&CK writes in capitals
        "The dashboard shows a sunburst chart of alerts.",
        "The attackers worked at night, at a steady pace.",
        "Mosquito nets were distributed in the region.",
        "Ping the host again after the reboot.",
    ],
)
def test_traps_of_the_labelled_set(gazetteer, text):
    assert _found(gazetteer, text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The APT-29 phishing wave impersonated USAID.", [("G0016", "APT-29")]),
        ("The Cobalt-Strike team server listened on 443.", [("S0154", "Cobalt-Strike")]),
        ("LAPSUS$ leaked source code.", [("G1004", "LAPSUS$")]),
        (
            "MIMIKATZ output was saved; emotet spam resumed.",
            [("S0002", "MIMIKATZ"), ("S0367", "emotet")],
        ),
        (
            "Both TrickBot's and Emotet's botnets were disrupted.",
            [("S0266", "TrickBot"), ("S0367", "Emotet")],
        ),
        (
            "Reports name the Lazarus actor; Sandworm struck again.",
            [("G0032", "Lazarus"), ("G0034", "Sandworm")],
        ),
        (
            "The 3CX Supply Chain Attack trojanized a VoIP client.",
            [("C0057", "3CX Supply Chain Attack")],
        ),
    ],
)
def test_case_punctuation_and_short_group_names(gazetteer, text, expected):
    assert _found(gazetteer, text) == expected


def test_ordinary_names_count_with_what_says_they_are_names(gazetteer):
    # a word beside them (alias as ATT&CK writes it), capitals as ATT&CK writes them,
    # a place in a list after another name
    assert _found(gazetteer, "Elise, also known as Page, is a backdoor.") == [
        ("S0081", "Elise"),
        ("S0081", "Page"),
    ]
    assert _found(gazetteer, "SUNSPOT injected code into builds.") == [("S0562", "SUNSPOT")]
    assert _found(gazetteer, "Uroburos, Carbon and Mosquito share code.") == [
        ("S0022", "Uroburos"),
        ("S0335", "Carbon"),
        ("S0256", "Mosquito"),
    ]
    assert _found(gazetteer, "Turla operated the Snake implant.") == [
        ("G0010", "Turla"),
        ("S0022", "Snake"),
    ]


def test_a_shared_name_goes_to_the_entry_named_so_then_to_the_kind_said(gazetteer):
    assert _found(gazetteer, "The Carbanak group robbed banks.") == [("G0008", "Carbanak")]
    assert _found(gazetteer, "FIN7 used Carbanak malware.") == [
        ("G0046", "FIN7"),
        ("S0030", "Carbanak"),
    ]
    assert _found(gazetteer, "The Machete group targets militaries.") == [("G0095", "Machete")]
    # "Play" is the group's ATT&CK name and only an alias of the ransomware (Playcrypt)
    assert _found(gazetteer, "Play ransomware operators exploited FortiOS.") == [("G1040", "Play")]


def test_a_model_saved_before_written_forms_were_kept_still_finds_names(gazetteer):
    import re

    old = gazetteer.to_dict()
    # rows were [key, id, name, kind, ordinary], keyed as words lower-cased ("apt29")
    old["entries"] = [
        [" ".join(re.findall(r"\w(?:[\w\-.]*\w)?", row[5])).lower(), *row[1:5]]
        for row in old["entries"]
    ]
    assert ["apt29", "G0016", "APT29", "group", False] in old["entries"]
    again = Gazetteer.from_dict(old)
    text = "APT-29 used Mimikatz; the Royal ransomware followed."
    assert _found(again, text) == [("G0016", "APT-29"), ("S0002", "Mimikatz"), ("S1073", "Royal")]
