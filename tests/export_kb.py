"""A tiny ATT&CK bundle with real-looking STIX ids, for the exporters' tests (the conftest's
tiny bundle has ids like `attack-pattern--1`, which strict STIX refuses)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

TACTICS = {
    "initial-access": ("TA0001", "Initial Access"),
    "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"),
    "privilege-escalation": ("TA0004", "Privilege Escalation"),
    "command-and-control": ("TA0011", "Command and Control"),
}
TECHNIQUES = {
    "T1053": ("Scheduled Task/Job", ["execution", "persistence", "privilege-escalation"]),
    "T1053.005": ("Scheduled Task", ["execution", "persistence", "privilege-escalation"]),
    "T1566": ("Phishing", ["initial-access"]),
    "T1071.001": ("Web Protocols", ["command-and-control"]),
    "T1190": ("Exploit Public-Facing Application", ["initial-access"]),
}


def _ref(external_id: str) -> list[dict[str, str]]:
    return [{"source_name": "mitre-attack", "external_id": external_id}]


def make_bundle() -> dict[str, Any]:
    """Tactics, a matrix and five techniques, each with a fresh UUIDv4 id."""
    objects: list[dict[str, Any]] = []
    tactic_ids = []
    for short, (tid, name) in TACTICS.items():
        tactic_ids.append(f"x-mitre-tactic--{uuid.uuid4()}")
        objects.append(
            {
                "type": "x-mitre-tactic",
                "id": tactic_ids[-1],
                "name": name,
                "x_mitre_shortname": short,
                "external_references": _ref(tid),
            }
        )
    objects.append(
        {
            "type": "x-mitre-matrix",
            "id": f"x-mitre-matrix--{uuid.uuid4()}",
            "tactic_refs": tactic_ids,
        }
    )
    for tid, (name, phases) in TECHNIQUES.items():
        objects.append(
            {
                "type": "attack-pattern",
                "id": f"attack-pattern--{uuid.uuid4()}",
                "name": name,
                "description": f"Adversaries may use {name.lower()}.",
                "external_references": _ref(tid),
                "kill_chain_phases": [
                    {"kill_chain_name": "mitre-attack", "phase_name": p} for p in phases
                ],
                "x_mitre_is_subtechnique": "." in tid,
            }
        )
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}


def make_kb() -> Any:
    from mitremap.attack import AttackKB

    return AttackKB.from_bundle(make_bundle(), version="18.1")


def make_mirror(root: Path) -> Path:
    """A data mirror holding only this bundle, as ATT&CK 18.1."""
    (root / "attack").mkdir(parents=True)
    (root / "attack" / "enterprise-attack-18.1.json").write_text(json.dumps(make_bundle()))
    return root


def _relationship(kind: str, source: str, target: str, description: str = "") -> dict[str, Any]:
    return {
        "type": "relationship",
        "id": f"relationship--{uuid.uuid4()}",
        "relationship_type": kind,
        "source_ref": source,
        "target_ref": target,
        "description": description,
    }


def make_full_bundle() -> dict[str, Any]:
    """`make_bundle` plus T1059, a mitigation, a detection strategy with an analytic, a tool
    (TinyTool, S9998) and a malware (TinyRAT, S9999) and a group (APT-Tiny, G9999) that use
    techniques: what a model carries for exports, --defend and similar adversaries."""
    bundle = make_bundle()
    objects = bundle["objects"]
    ids = {
        o["external_references"][0]["external_id"]: o["id"]
        for o in objects
        if o["type"] == "attack-pattern"
    }
    shell = f"attack-pattern--{uuid.uuid4()}"
    objects.append(
        {
            "type": "attack-pattern",
            "id": shell,
            "name": "Command and Scripting Interpreter",
            "description": "Adversaries may abuse command interpreters.",
            "external_references": _ref("T1059"),
            "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "execution"}],
        }
    )
    ids["T1059"] = shell
    mitigation = f"course-of-action--{uuid.uuid4()}"
    analytic = f"x-mitre-analytic--{uuid.uuid4()}"
    strategy = f"x-mitre-detection-strategy--{uuid.uuid4()}"
    tool, malware = f"tool--{uuid.uuid4()}", f"malware--{uuid.uuid4()}"
    group = f"intrusion-set--{uuid.uuid4()}"
    objects += [
        {
            "type": "course-of-action",
            "id": mitigation,
            "name": "Privileged Account Management",
            "description": "Manage privileged accounts.",
            "external_references": _ref("M1026"),
        },
        {
            "type": "x-mitre-analytic",
            "id": analytic,
            "x_mitre_platforms": ["Windows"],
            "description": "Watch task creation.",
            "x_mitre_log_source_references": [
                {"name": "WinEventLog:Security", "channel": "EventCode=4698"}
            ],
            "external_references": _ref("AN0001"),
        },
        {
            "type": "x-mitre-detection-strategy",
            "id": strategy,
            "name": "Scheduled task creation",
            "x_mitre_analytic_refs": [analytic],
            "external_references": _ref("DET0001"),
        },
        {"type": "tool", "id": tool, "name": "TinyTool", "external_references": _ref("S9998")},
        {
            "type": "malware",
            "id": malware,
            "name": "TinyRAT",
            "is_family": True,
            "x_mitre_aliases": ["TinyRAT", "TRAT"],
            "external_references": _ref("S9999"),
        },
        {
            "type": "intrusion-set",
            "id": group,
            "name": "APT-Tiny",
            "aliases": ["APT-Tiny"],
            "external_references": _ref("G9999"),
        },
        _relationship("mitigates", mitigation, ids["T1053.005"], "Restrict who creates tasks."),
        _relationship("detects", strategy, ids["T1053.005"]),
        _relationship("uses", malware, ids["T1053.005"], "TinyRAT creates a scheduled task."),
        _relationship("uses", tool, ids["T1059"], "TinyTool runs cmd.exe."),
        _relationship("uses", group, ids["T1059"], "APT-Tiny used cmd.exe."),
        _relationship("uses", group, ids["T1053.005"], "APT-Tiny scheduled tasks."),
        _relationship("uses", group, malware),
    ]
    return bundle


def make_full_kb() -> Any:
    from mitremap.attack import AttackKB

    return AttackKB.from_bundle(make_full_bundle(), version="18.1")


def make_knowing_model(folder: Path, kb: Any = None) -> Path:
    """The tiny test model (`tests.tiny`), saved as `train` saves one from `kb` (default: the
    full tiny bundle): its card names the techniques and software, and it carries the
    knowledge."""
    from mitremap.classify.knowledge import write_knowledge
    from mitremap.names import Gazetteer
    from mitremap.training.fit import train_linear
    from tests.tiny import SETTINGS, items, reports

    kb = kb or make_full_kb()
    model = train_linear(items(), reports=reports(), settings=SETTINGS)
    model.card.attack_version = kb.version
    model.card.techniques = {
        t.id: {"name": t.name, "tactics": t.tactic_names, "parent": t.parent}
        for t in kb.techniques()
    }
    model.card.names = Gazetteer.from_attack(kb).to_dict()
    model.save(folder)
    write_knowledge(folder, kb)
    return folder
