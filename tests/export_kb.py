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
