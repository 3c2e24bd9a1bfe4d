"""Detection content labelled with ATT&CK: Splunk, MITRE CAR, Chronicle YARA-L, KQL hunting
queries, Elastic, Panther rules, and LOLBAS's documented misuses of Windows binaries."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

from mitremap.training.converters._archive import (
    Record,
    add_unique,
    archive_files,
    decode,
    merge_same_text,
    record,
    relative_from,
    squash,
    technique_ids,
    title_text,
    with_parents,
    without_top_folder,
    yaml_docs,
)
from mitremap.training.corpus import LabelledText

# ---- LOLBAS: yml/**/*.yml ------------------------------------------------------------------


def read_lolbas_yml(path: Path, source: str = "lolbas") -> Iterator[LabelledText]:
    """One record per documented misuse (command) of a Windows binary, script or library.

    The text is the command's description, after the binary's name where the description does
    not name it, so that every text says which binary it is about. Commands with the same
    description (one misuse, several techniques) are one record.
    """
    records = []
    for name, doc in yaml_docs(archive_files(path, (".yml", ".yaml"))):
        binary, commands = squash(doc.get("Name")), doc.get("Commands")
        if binary and isinstance(commands, list):
            for index, command in enumerate(commands):
                if isinstance(command, dict):
                    text = _lolbas_text(binary, squash(command.get("Description")))
                    labels = technique_ids(command.get("MitreID"))
                    records.append(Record(text, f"{binary}#{index}", labels, {"path": name}))
    return merge_same_text(records, source)


def _lolbas_text(binary: str, description: str) -> str:
    """The mirror's test of naming the binary: its name without extension anywhere in it."""
    stem = binary.rsplit(".", 1)[0].lower()
    if not description or stem in description.lower():
        return description
    return f"{binary}: {description}"


# ---- Panther: rules/**/*.yml (and policies, correlation rules) -----------------------------


def read_panther_yml(path: Path, source: str = "panther") -> Iterator[LabelledText]:
    """Panther detections (rules, scheduled and correlation rules, policies) that report MITRE
    ATT&CK techniques: "name. description", labelled with the reported techniques."""
    records = []
    for name, doc in yaml_docs(archive_files(path, (".yml", ".yaml"))):
        rule_id = squash(doc.get("RuleID") or doc.get("PolicyID"))
        reports = doc.get("Reports")
        entries = reports.get("MITRE ATT&CK") if isinstance(reports, dict) else None
        if rule_id and isinstance(entries, list):
            labels: list[str] = []
            for entry in entries:  # "TA0006:T1098.001": tactic, then technique
                add_unique(labels, technique_ids(entry))
            title = squash(doc.get("DisplayName")) or rule_id
            text = title_text(title, squash(doc.get("Description")))
            records.append(Record(text, rule_id, labels, {"path": name}))
    return merge_same_text(records, source)


# ---- Splunk security content: detections/**/*.yml and stories/*.yml ------------------------


def read_splunk_yml(path: Path, source: str = "splunk") -> Iterator[LabelledText]:
    """Splunk detections and analytic stories: "name. description", labelled with the
    detection's `tags.mitre_attack_id` (stories carry none). Deprecated ones are kept and
    marked (`meta.deprecated`: their status, or a deprecated/ folder)."""
    for name, doc in yaml_docs(archive_files(path, (".yml", ".yaml"))):
        relative = relative_from(name, "detections", "stories")
        title, record_id = squash(doc.get("name")), squash(doc.get("id"))
        if relative is None or not title or not record_id:
            continue
        tags = doc.get("tags")
        labels = technique_ids(tags.get("mitre_attack_id")) if isinstance(tags, dict) else []
        status = doc.get("status")
        yield record(
            title_text(title, squash(doc.get("description"))),
            labels,
            source,
            record_id,
            path=relative,
            kind=relative.split("/", 1)[0],
            type=doc.get("type"),
            status=status,
            deprecated=status == "deprecated" or "/deprecated/" in relative,
        )


# ---- MITRE CAR: analytics/*.yaml -----------------------------------------------------------


def read_car_yaml(path: Path, source: str = "car") -> Iterator[LabelledText]:
    """CAR analytics: "title. description", labelled with every technique and sub-technique
    their `coverage` names."""
    for name, doc in yaml_docs(archive_files(path, (".yaml", ".yml"))):
        relative, record_id = relative_from(name, "analytics"), squash(doc.get("id"))
        title = squash(doc.get("title"))
        if relative is None or not record_id.startswith("CAR-") or not title:
            continue
        labels: set[str] = set()
        coverage = doc.get("coverage")
        for item in coverage if isinstance(coverage, list) else ():
            if isinstance(item, dict):
                labels.update(technique_ids(item.get("technique")))
                labels.update(technique_ids(item.get("subtechniques")))
        text = title_text(title, squash(doc.get("description")))
        yield record(text, sorted(labels), source, record_id, path=relative)


# ---- Chronicle detection rules: rules/**/*.yaral (YARA-L) ----------------------------------

_YARAL_RULE = re.compile(r"^\s*rule\s+(\w+)\s*\{", re.M)
_YARAL_META = re.compile(r'^\s*(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"', re.M)


def read_chronicle_yaral(path: Path, source: str = "chronicle") -> Iterator[LabelledText]:
    """Chronicle YARA-L rules: "rule_name (or the rule's identifier). description", labelled
    with the technique ids of the meta fields that name techniques (`technique`, `mitre`, …).
    Rules under _deprecated/ are kept and marked."""
    for name, content in archive_files(path, (".yaral",)):
        relative = relative_from(name, "rules")
        text = decode(content)
        rule = _YARAL_RULE.search(text)
        if relative is None or rule is None:
            continue
        meta_block = text[rule.end() :].split("events:", 1)[0]
        meta = {
            key.lower(): value.replace('\\"', '"') for key, value in _YARAL_META.findall(meta_block)
        }
        labels: list[str] = []
        for key, value in meta.items():
            if "technique" in key or "mitre" in key:
                add_unique(labels, technique_ids(value))
        title = squash(meta.get("rule_name")) or rule.group(1)
        yield record(
            title_text(title, squash(meta.get("description"))),
            labels,
            source,
            relative,
            path=relative,
            deprecated="/_deprecated/" in f"/{relative}",
            tactic=meta.get("tactic") or None,
        )


# ---- KQL hunting queries (Bert-JanP): **/*.md ----------------------------------------------


def read_kql_markdown(path: Path, source: str = "kql") -> Iterator[LabelledText]:
    """Bert-JanP's KQL queries, one markdown page each: "title. description" (the first
    heading and the Description section), labelled with the techniques of the page's
    "MITRE ATT&CK" table (and their parents). Pages without such a table are kept unlabelled."""
    for relative, content in without_top_folder(archive_files(path, (".md",))):
        if "/" not in relative:
            continue  # the repository's own README and notes, not queries
        page = _kql_page(decode(content))
        if page is None:
            continue
        title, description, labels, has_table = page
        yield record(
            title_text(title, description),
            sorted(with_parents(labels)),
            source,
            relative,
            path=relative,
            has_attack_table=has_table,
        )


def _kql_page(page: str) -> tuple[str, str, list[str], bool] | None:
    """(title, description, technique ids, whether an ATT&CK table is there) of one page."""
    title, section, description = "", "", []
    labels: list[str] = []
    has_table, fenced = False, False
    for line in page.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if stripped.startswith("#"):
            heading = stripped.lstrip("#").strip()
            if not title and stripped.startswith("# "):
                title = heading
            section = heading.lower()
        elif "mitre att&ck" in section and stripped.startswith("|"):
            cells = stripped.strip("|").split("|")
            ids = technique_ids(cells[0])
            has_table = has_table or bool(ids) or "technique" in cells[0].lower()
            add_unique(labels, ids)
        elif section == "description" and stripped:
            description.append(stripped)
    if not title:
        return None
    return squash(title), squash(" ".join(description)), labels, has_table


# ---- Elastic detection rules (opt-in): rules/**/*.toml, hunting/**/*.toml ------------------


def read_elastic_toml(path: Path, source: str = "elastic") -> Iterator[LabelledText]:
    """Elastic detection rules and hunting queries: "name. description", labelled with the
    techniques and sub-techniques of their MITRE ATT&CK threat mapping (`mitre` for hunts)."""
    for name, content in archive_files(path, (".toml",)):
        relative = relative_from(name, "rules", "rules_building_block", "hunting")
        if relative is None:
            continue
        try:
            doc = tomllib.loads(decode(content))
        except tomllib.TOMLDecodeError:
            continue
        rule, hunt = doc.get("rule"), doc.get("hunt")
        if isinstance(rule, dict) and rule.get("rule_id") and rule.get("name"):
            metadata = doc.get("metadata")
            metadata = metadata if isinstance(metadata, dict) else {}
            text = title_text(squash(rule["name"]), squash(rule.get("description")))
            yield record(
                text,
                _elastic_techniques(rule.get("threat")),
                source,
                str(rule["rule_id"]),
                path=relative,
                maturity=metadata.get("maturity"),
                type=rule.get("type"),
                tags=[str(t) for t in rule.get("tags") or ()],
            )
        elif isinstance(hunt, dict) and hunt.get("uuid") and hunt.get("name"):
            text = title_text(squash(hunt["name"]), squash(hunt.get("description")))
            labels = sorted(set(technique_ids(" ".join(map(str, hunt.get("mitre") or ())))))
            yield record(text, labels, source, str(hunt["uuid"]), path=relative)


def _elastic_techniques(threats: object) -> list[str]:
    labels: set[str] = set()
    for threat in threats if isinstance(threats, list) else ():
        if not isinstance(threat, dict) or threat.get("framework") != "MITRE ATT&CK":
            continue
        for technique in threat.get("technique") or ():
            if isinstance(technique, dict):
                labels.update(technique_ids(technique.get("id")))
                for sub in technique.get("subtechnique") or ():
                    if isinstance(sub, dict):
                        labels.update(technique_ids(sub.get("id")))
    return sorted(labels)
