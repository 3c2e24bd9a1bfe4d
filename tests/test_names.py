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
