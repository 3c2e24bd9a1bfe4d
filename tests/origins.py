"""Small artifacts in each origin's real format, made here, and a local web server that stands
in for the origins (`MITREMAP_ORIGIN` points `mitremap data fetch` at it).

Every text is labelled with techniques of the tiny ATT&CK bundle (`conftest.make_tiny_bundle`:
T1053, T1053.005, T1059), so a model trained on what is fetched has something to learn.
"""

from __future__ import annotations

import http.server
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import make_tiny_bundle

TASK = "The malware creates a scheduled task with schtasks /create to run every hour."
SHELL = "The actor ran commands through cmd.exe /c on the victim host."
NONE = "The report was published on 3 March 2024 by the research team."

# ---- helpers -------------------------------------------------------------------------------


def tarball(files: dict[str, str | bytes], top: str = "repo-0123abc") -> bytes:
    """A .tar.gz as GitHub serves a repository archive: every file under one top folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def mat_report(title: str, sentences: list[tuple[str, str | None]]) -> dict[str, object]:
    """A TRAM report as the MAT annotation tool saves it (.mjson): the text as "signal", token
    spans ("lex"), the document SEGMENT, and one annotation set per technique."""
    signal = f"title: {title}\nurl: https://example.org/{len(title)}\n\n"
    sets: dict[str, list[list[int]]] = {}
    for sentence, technique in sentences:
        start = len(signal)
        signal += sentence + " "
        if technique is not None:
            sets.setdefault(technique, []).append([start, start + len(sentence)])
    names = {"T1053.005": "Scheduled Task", "T1059": "Command and Scripting Interpreter"}
    asets: list[dict[str, object]] = [
        {"type": "lex", "hasID": False, "hasSpan": True, "attrs": [], "annots": [[0, 5]]},
        {
            "type": "SEGMENT",
            "hasID": False,
            "hasSpan": True,
            "attrs": [{"name": "annotator", "type": "string", "aggregation": None}],
            "annots": [[0, len(signal), "someone", "content", "human gold"]],
        },
    ]
    for technique, spans in sets.items():
        asets.append(
            {
                "type": f"{names[technique]} ({technique})",
                "hasID": False,
                "hasSpan": True,
                "attrs": [{"name": "comment", "type": "string", "aggregation": None}],
                "annots": spans,
            }
        )
    return {"signal": signal, "asets": asets, "version": 2}


# ---- one artifact per origin ---------------------------------------------------------------

TRAM_REPORTS: dict[str, list[tuple[str, str | None]]] = {
    "AA99-001A: Schtasks Everywhere": [(TASK, "T1053.005"), (NONE, None), (SHELL, "T1059")],
    "Shell Games – Part 2": [(SHELL, "T1059"), (NONE, None)],
    "Quiet Persistence": [(TASK.replace("every hour", "daily"), "T1053.005"), (NONE, None)],
    "Nothing To See": [(NONE, None)],
}


def tram_archive() -> bytes:
    """TRAM's repository at the pinned commit: the MAT reports and the single-label set."""
    folder = "data/training/mat_annotated_data"
    files: dict[str, str | bytes] = {
        f"{folder}/mjson_files/{title}.mjson": json.dumps(mat_report(title, sentences))
        for title, sentences in TRAM_REPORTS.items()
    }
    single = [
        {"text": TASK, "label": "T1053.005", "doc_title": "AA99-001A: Schtasks Everywhere"},
        {"text": SHELL, "label": "T1059", "doc_title": "Shell Games – Part 2"},
        {"text": "schtasks.exe registered a task.", "label": "T1053.005", "doc_title": "X"},
    ]
    files[f"{folder}/single_label.json"] = json.dumps(single, indent=4)
    files["data/tram2-data/single_label.json"] = json.dumps([])  # an older copy: not read
    files["README.md"] = "# TRAM"
    return tarball(files, "tram-255a8163")


def tram_bootstrap() -> bytes:
    sentences = [
        {"text": "creates a scheduled task for persistence.", "mappings": [{"attack_id": "T1053.005"}]},
        {"text": "uses cmd.exe to execute commands.", "mappings": [{"attack_id": "T1059"}]},
        {"text": "Rejected sentence.", "disposition": "reject", "mappings": []},
    ]  # fmt: skip
    return json.dumps({"sentences": sentences}).encode()


def tram_negative() -> bytes:
    return json.dumps(["Bryan Lee", "April 03, 2019", NONE]).encode()


def sigma_archive() -> bytes:
    rule = (
        "title: Schtasks Creation\nid: 92626ddd-662c-49e3-ac59-f6535f12d189\n"
        "description: Detects the creation of scheduled tasks with schtasks.\n"
        "tags:\n  - attack.execution\n  - attack.t1053.005\n"
        "logsource:\n  product: windows\n  category: process_creation\n"
        "detection:\n  selection:\n    Image|endswith: schtasks.exe\n  condition: selection\n"
    )
    return tarball({"rules/windows/proc_creation_win_schtasks.yml": rule}, "sigma-master")


def atomic_archive() -> bytes:
    atomics = (
        "attack_technique: T1053.005\ndisplay_name: 'Scheduled Task/Job: Scheduled Task'\n"
        "atomic_tests:\n- name: Scheduled Task Startup Script\n"
        "  auto_generated_guid: fec27f65-db86-4c2d-b66c-61945aee87c2\n"
        "  description: Run an exe on user logon or system startup with schtasks.\n"
        "  supported_platforms:\n  - windows\n  executor:\n    name: command_prompt\n"
        "    command: schtasks /create /tn T1053_005_OnLogon /sc onlogon /tr cmd.exe\n"
    )
    return tarball({"atomics/T1053.005/T1053.005.yaml": atomics}, "atomic-red-team-master")


def splunk_archive() -> bytes:
    detection = (
        "name: Scheduled Task Creation via Schtasks\nid: 7feb7972-7ac3-11eb-bac8-acde48001122\n"
        "version: 3\ndate: '2024-01-01'\nauthor: Someone, Splunk\nstatus: production\ntype: TTP\n"
        "description: The following analytic detects the creation of a scheduled task with\n"
        "  schtasks.exe, a common way to persist.\n"
        "search: '| tstats count from datamodel=Endpoint.Processes'\n"
        "tags:\n  analytic_story:\n  - Scheduled Tasks\n  asset_type: Endpoint\n"
        "  mitre_attack_id:\n  - T1053.005\n  product:\n  - Splunk Enterprise\n"
    )
    deprecated = detection.replace("7feb7972", "0aaaaaaa").replace(
        "status: production", "status: deprecated"
    )
    story = (
        "name: Scheduled Tasks\nid: 94cff925-d05e-40bf-8d1b-a3b1e8d3c7f6\nversion: 1\n"
        "description: Monitor for activities around scheduled tasks.\n"
        "narrative: Scheduled tasks are abused for persistence.\n"
        "tags:\n  category:\n  - Adversary Tactics\n  product:\n  - Splunk Enterprise\n"
    )
    return tarball(
        {
            "detections/endpoint/schtasks_creation.yml": detection,
            "detections/deprecated/schtasks_old.yml": deprecated,
            "stories/scheduled_tasks.yml": story,
            "macros/security_content_ctime.yml": "definition: convert\nname: ctime\n",
        },
        "security_content-develop",
    )


def car_archive() -> bytes:
    analytic = (
        "---\ntitle: Scheduled Task Creation\nsubmission_date: 2013/01/25\n"
        "information_domain: Host\nplatforms:\n  - Windows\nid: CAR-2013-08-001\n"
        "description: |-\n  Windows provides the schtasks.exe tool to run programs at a time.\n"
        "coverage:\n  - technique: T1053\n    tactics:\n      - TA0002\n"
        "    subtechniques:\n      - T1053.005\n    coverage: Moderate\n"
    )
    return tarball({"analytics/CAR-2013-08-001.yaml": analytic}, "car-master")


def chronicle_archive() -> bytes:
    community = (
        "/*\n * Copyright 2025 Google LLC\n */\n\n"
        'rule ttp_schtasks_creation {\n  meta:\n    author = "Google Cloud Security"\n'
        '    rule_name = "Scheduled Task Created with Schtasks"\n'
        '    description = "Detects \\"schtasks.exe\\" creating a task."\n'
        '    tactic = "TA0003"\n    technique = "T1053.005"\n    severity = "Low"\n\n'
        '  events:\n    $e.metadata.event_type = "PROCESS_LAUNCH"\n\n  condition:\n    $e\n}\n'
    )
    deprecated = (
        'rule cmd_shell_use {\n meta:\n    author = "Someone"\n'
        '    description = "Detects cmd.exe used to run commands"\n'
        '    mitre = "execution, T1059"\n\n  events:\n    $e.x = "1"\n\n  condition:\n    $e\n}\n'
    )
    return tarball(
        {
            "rules/community/windows/ttp_schtasks_creation.yaral": community,
            "rules/_deprecated/soc_prime_rules/cmd_shell_use.yaral": deprecated,
        },
        "detection-rules-main",
    )


def kql_archive() -> bytes:
    query = (
        "# Scheduled Task Created via Schtasks\n\n## Query Information\n\n"
        "#### MITRE ATT&CK Technique(s)\n\n| Technique ID | Title    | Link    |\n"
        "| ---  | --- | --- |\n| T1053.005 | Scheduled Task/Job: Scheduled Task | "
        "https://attack.mitre.org/techniques/T1053/005/ |\n\n#### Description\n"
        "Detects scheduled tasks created with schtasks from a command line.\n\n"
        "#### References\n- https://example.org\n\n## Sentinel\n```KQL\nDeviceProcessEvents\n"
        '| where FileName == "schtasks.exe"\n```\n'
    )
    plain = "# List Role Additions\n\n#### Description\nThis query lists role additions.\n"
    return tarball(
        {
            "Defender For Endpoint/ScheduledTask.md": query,
            "Azure Active Directory/RoleAdditions.md": plain,
            "README.md": "# KQL queries\n\n#### Description\nThe repository's own page.\n",
        },
        "Hunting-Queries-Detection-Rules-main",
    )


ANNOCTR_DOCS = {
    "train": ["vendor_2021-01-01_schtasks-campaign", "vendor_2021-02-01_shell-campaign"],
    "dev": ["vendor_2021-03-01_dev-report"],
    "test": ["vendor_2021-04-01_test-report"],  # must never be fetched
}
ANNOCTR_TEST_TEXT = "This test-split report must never reach the mirror."


def annoctr_archive() -> bytes:
    files: dict[str, str | bytes] = {}
    for split, documents in ANNOCTR_DOCS.items():
        lines = []
        for document in documents:
            text = ANNOCTR_TEST_TEXT if split == "test" else f"{TASK} {NONE} {SHELL}"
            files[f"AnnoCTR/text/{split}/{document}.txt"] = text
            lines += [
                _annoctr_mention(document, "scheduled task", "T1053/005", "TECHNIQUE"),
                _annoctr_mention(document, "cmd.exe", "T1059", "TECHNIQUE"),
                _annoctr_mention(document, "NETWIRE", "S0198", "MALWARE"),
                _annoctr_mention(document, "schtasks", "S0111", "TECHNIQUE"),  # software link
            ]
        files[f"AnnoCTR/linking/{split}_w_con.jsonl"] = "\n".join(lines) + "\n"
    files["README.md"] = "# AnnoCTR"
    return tarball(files, "anno-ctr-lrec-coling-2024-d510b69")


def _annoctr_mention(document: str, mention: str, target: str, entity_type: str) -> str:
    kind = "software" if target.startswith("S") else "techniques"
    return json.dumps(
        {
            "mention": mention,
            "context_left": f"{NONE} The malware creates a",
            "context_right": "to run every hour. Later it ran commands.",
            "_context_left": "The malware creates a ",
            "_context_right": " to run every hour.",
            "sentence_left": NONE,
            "sentence_right": "Later it ran commands.",
            "label": "Adversaries may abuse the Windows Task Scheduler.",
            "label_id": 7,
            "label_title": "Scheduled Task",
            "label_link": f"https://attack.mitre.org/{kind}/{target}",
            "entity_class": "CE",
            "entity_type": entity_type,
            "document": document,
        }
    )


def capec_bundle() -> bytes:
    pattern = {
        "type": "attack-pattern",
        "id": "attack-pattern--01d5c7e7-1c74-4b20-9e43-548c5f4de113",
        "name": "Scheduled Task Abuse",
        "description": "An adversary schedules a task to run code at a set time.",
        "x_capec_status": "Draft",
        "external_references": [
            {"source_name": "capec", "external_id": "CAPEC-557"},
            {"source_name": "cwe", "external_id": "CWE-250"},
            {"source_name": "ATTACK", "external_id": "1053.005", "description": "Scheduled Task"},
        ],
    }
    return json.dumps({"type": "bundle", "id": "bundle--capec", "objects": [pattern]}).encode()


def elastic_archive() -> bytes:
    rule = (
        '[metadata]\ncreation_date = "2020/01/01"\nmaturity = "production"\n\n[rule]\n'
        'author = ["Elastic"]\ndescription = """\nIdentifies scheduled tasks created with '
        'schtasks.exe.\n"""\nname = "Scheduled Task Created"\n'
        'rule_id = "92a6faf5-78ec-4e25-bea1-73bacc9b59d9"\ntype = "eql"\n'
        'tags = ["OS: Windows"]\n\n[[rule.threat]]\nframework = "MITRE ATT&CK"\n'
        '[[rule.threat.technique]]\nid = "T1053"\nname = "Scheduled Task/Job"\n'
        '[[rule.threat.technique.subtechnique]]\nid = "T1053.005"\nname = "Scheduled Task"\n'
    )
    hunt = (
        '[hunt]\nauthor = "Elastic"\ndescription = """\nHunts for command shells.\n"""\n'
        'uuid = "e6e78858-6482-11ef-93bd-f661ea17fbcc"\nname = "Command Shell Hunting"\n'
        "mitre = ['T1059']\n"
    )
    return tarball(
        {"rules/windows/persistence_schtasks.toml": rule, "hunting/windows/queries/cmd.toml": hunt},
        "detection-rules-main",
    )


def tiny_attack() -> bytes:
    return json.dumps(make_tiny_bundle()).encode()


MADE_HERE = {
    "attack": tiny_attack,
    "sigma": sigma_archive,
    "atomic": atomic_archive,
    "splunk": splunk_archive,
    "car": car_archive,
    "chronicle": chronicle_archive,
    "kql": kql_archive,
    "capec": capec_bundle,
    "elastic": elastic_archive,
    "tram-bootstrap": tram_bootstrap,
    "tram-negative": tram_negative,
    "tram-reports": tram_archive,
    "annoctr-train": annoctr_archive,
}
"""Artifacts made here, by a source that fetches them (sources sharing an origin share it)."""

REAL = {
    "sigma": "sigma-rules.tar.gz",
    "text2ttp-manual": "text2ttp-sentences.tar.gz",
    "ctid-kev": "ctid-kev-mappings.tar.gz",
    "mbc": "mbc-markdown.tar.gz",
    "panther": "panther-rules.tar.gz",
    "lolbas": "lolbas-yml.tar.gz",
}
"""Sources whose real upstream archive the shared data keeps in raw/."""


def build_origins(site: Path, raw: Path | None = None) -> list[str]:
    """Lay out every fetchable source's artifact under `site` the way `MITREMAP_ORIGIN` asks
    for it (site/github.com/owner/repo/archive/….tar.gz); the real archives of `raw` where they
    exist. Returns the origin URLs laid out."""
    from mitremap.sources import source

    urls = []
    for name, make in MADE_HERE.items():
        if raw is not None and name in REAL:
            continue
        urls.append(_place(site, source(name).fetch, make()))
    for name, file in REAL.items():
        if raw is not None:
            urls.append(_place(site, source(name).fetch, (raw / file).read_bytes()))
    return urls


def _place(site: Path, url: str, content: bytes) -> str:
    target = site / url.split("://", 1)[1]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return url


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """A local web server for the files of `folder`; yields its base URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
