"""Catalogues mapped to ATT&CK: CTID's KEV mappings, the Malware Behavior Catalog, CAPEC."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mitremap.errors import DataError
from mitremap.training.converters._archive import (
    Record,
    add_unique,
    archive_files,
    decode,
    merge_same_text,
    record,
    squash,
    technique_ids,
    title_text,
    with_parents,
)
from mitremap.training.corpus import LabelledText

# ---- CTID Mappings Explorer: CISA KEV → ATT&CK ---------------------------------------------

_KEV_FILE = re.compile(r"(?:^|/)mappings/kev/attack-([\d.]+)/kev-([\d.]+)/enterprise/[^/]+\.json$")


@dataclass
class _Cve:
    title: str
    path: str
    comments: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


def read_ctid_kev(path: Path, source: str = "ctid-kev") -> Iterator[LabelledText]:
    """KEV vulnerabilities mapped to ATT&CK Enterprise, from the newest ATT&CK version's folder
    only (older ones map the same CVEs with older ids). One record per CVE: its title, then how
    it is exploited (its mappings' comments), labelled with every technique it is mapped to."""
    files = archive_files(path, (".json",))
    snapshots = {name: _kev_snapshot(name) for name, _ in files}
    newest = max((s for s in snapshots.values() if s is not None), default=None)
    if newest is None:
        raise DataError(f"{path} has no mappings/kev/attack-*/kev-*/enterprise/*.json file")
    cves: dict[str, _Cve] = {}
    for name, content in files:
        if snapshots[name] != newest:
            continue
        for mapping in _kev_mappings(content):
            cve_id = squash(mapping.get("capability_id"))
            title = squash(mapping.get("capability_description"))
            if cve_id and title:
                cve = cves.setdefault(cve_id, _Cve(title, name))
                add_unique(cve.comments, filter(None, [squash(mapping.get("comments"))]))
                add_unique(cve.labels, technique_ids(mapping.get("attack_object_id")))
    return _kev_records(cves, ".".join(map(str, newest[0])), source)


def _kev_records(cves: dict[str, _Cve], version: str, source: str) -> Iterator[LabelledText]:
    for cve_id, cve in cves.items():
        if cve.labels:
            text = f"{cve.title}. {' '.join(cve.comments)}".strip()
            meta = {"path": cve.path, "attack_version": version}
            yield LabelledText(text, tuple(cve.labels), source, cve_id, meta)


def _kev_snapshot(name: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(ATT&CK version, KEV date as year, month, day) of an Enterprise mapping file."""
    match = _KEV_FILE.search(name)
    if match is None:
        return None
    version = tuple(int(part) for part in match.group(1).split(".") if part)
    date = [int(part) for part in match.group(2).split(".") if part]  # MM.DD.YYYY
    return version, tuple(date[-1:] + date[:-1])


def _kev_mappings(content: bytes) -> list[dict[str, object]]:
    """The mapping objects of one file; none when the file is not the JSON expected."""
    try:
        data = json.loads(content)
    except ValueError:
        return []
    objects = data.get("mapping_objects") if isinstance(data, dict) else None
    return [o for o in objects if isinstance(o, dict)] if isinstance(objects, list) else []


# ---- MBC: Malware Behavior Catalog markdown pages ------------------------------------------

_MBC_ID = re.compile(r"<td><b>ID</b></td>\s*<td><b>\s*([A-Z]\d{4}(?:\.\w+)?)\s*</b></td>")
_MBC_ATTACK = re.compile(r"<td><b>Related ATT&CK Techniques</b></td>\s*<td>(.*?)</td>", re.S)
_MD_CITATION = re.compile(r"\[\[\d+\]\]\(#\d+\)")  # [[3]](#3)
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_NUMBER_REF = re.compile(r"\[\d+\]")
_HTML_TAG = re.compile(r"<[^>]+>")
_ID_LIST = re.compile(r"\s*\(\s*T\d{4}(?:\.\d{3})?(?:\s*,\s*T\d{4}(?:\.\d{3})?)*\s*\)")
# "This method is related to Unprotect technique U0102.", "This is similar to ATT&CK's X (T…)."
_SEE_ALSO = re.compile(
    r"This (?:method |behavior )?is (?:also )?(?:related|similar) to .*?(?:\.(?=\s|$)|$)"
)


def read_mbc_markdown(path: Path, source: str = "mbc") -> Iterator[LabelledText]:
    """MBC behaviours that name related ATT&CK techniques: each method's definition
    ("Name: description") and each "Use in Malware" sentence, labelled with the behaviour's
    techniques. MBC also cites ATT&CK Mobile ids; they are kept (normalising drops them).
    A text found on several pages is one record with the labels of all of them."""
    records: list[Record] = []
    for name, content in archive_files(path, (".md",)):
        records.extend(_mbc_page_records(name, decode(content)))
    return merge_same_text(records, source)


def _mbc_page_records(name: str, page: str) -> list[Record]:
    """A behaviour page's methods and uses. A method whose description cites more ATT&CK ids
    adds them to its own labels and to those of the uses of that method."""
    id_match, attack_match = _MBC_ID.search(page), _MBC_ATTACK.search(page)
    if id_match is None or attack_match is None:
        return []
    behaviour = id_match.group(1)
    page_labels = with_parents(technique_ids(_HTML_TAG.sub(" ", attack_match.group(1))))
    if not page_labels:  # "None": the behaviour has no ATT&CK counterpart
        return []
    meta = {"path": name, "behaviour": behaviour}
    records = []
    method_labels: dict[str, list[str]] = {}
    for method_name, method_cell, description in _markdown_rows(page, "methods", 3):
        method_id, title, text = _plain(method_cell), _plain(method_name), _plain(description)
        labels = method_labels[method_id] = [*page_labels]
        add_unique(labels, _cited_ids(description))
        if title and text:
            records.append(Record(f"{title}: {text}", f"{behaviour}/{method_id}", labels, meta))
    uses = [row for row in _markdown_rows(page, "use in malware", 4) if _plain(row[3])]
    for number, (malware, _date, method, description) in enumerate(uses, 1):
        record_id = f"{behaviour}/use-{number:03d}/{_plain(malware).strip('[] ')}"
        labels = method_labels.get(_plain(method), page_labels)
        records.append(Record(_plain(description), record_id, labels, meta))
    return records


def _markdown_rows(page: str, section: str, columns: int) -> Iterator[list[str]]:
    """Body rows of the table under the heading `section` (any heading level, as pages vary).
    A "|" inside the last column stays in it."""
    current = ""
    for line in page.splitlines():
        line = line.strip()
        if line.startswith("#"):
            current = line.lstrip("#").strip().lower()
        elif current == section and line.startswith("|") and not line.startswith("|-"):
            cells = line.strip("|").split("|")
            if len(cells) >= columns and _plain(cells[0]).lower() != "name":
                yield [*cells[: columns - 1], "|".join(cells[columns - 1 :])]


def _plain(markdown: str) -> str:
    """A markdown table cell as plain text: no citations, links as their words, no emphasis,
    no "This method is related to …" pointers to other catalogues, and no "(T1480.001)": an id
    in the text would teach a model the label rather than the behaviour."""
    text = _MD_NUMBER_REF.sub("", _MD_LINK.sub(r"\1", _MD_CITATION.sub("", markdown)))
    text = _SEE_ALSO.sub("", _ID_LIST.sub("", text))
    text = squash(_HTML_TAG.sub("", text).replace("**", ""))
    return "" if text == "--" else text


def _cited_ids(markdown: str) -> list[str]:
    """Technique ids a cell writes out (a link's words count, its address does not)."""
    return technique_ids(_MD_LINK.sub(r"\1", _MD_CITATION.sub("", markdown)))


# ---- CAPEC (opt-in): capec/2.1/stix-capec.json ---------------------------------------------

_CAPEC_MAX_BYTES = 64 * 1024 * 1024


def read_capec_stix(path: Path, source: str = "capec") -> Iterator[LabelledText]:
    """CAPEC attack patterns that name ATT&CK techniques (their "ATTACK" references): "name.
    description", labelled with those techniques. Revoked patterns are left out."""
    try:
        if path.stat().st_size > _CAPEC_MAX_BYTES:
            raise DataError(f"{path} is larger than {_CAPEC_MAX_BYTES // 2**20} MB")
        bundle = json.loads(path.read_bytes())
        objects = bundle["objects"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a readable CAPEC STIX bundle") from exc
    for obj in objects if isinstance(objects, list) else ():
        found = _capec_pattern(obj, source)
        if found is not None:
            yield found


def _capec_pattern(obj: Any, source: str) -> LabelledText | None:
    """One CAPEC object as a record: an attack pattern (not revoked) with a CAPEC id, a name,
    and ATT&CK techniques among its references; else None."""
    if not isinstance(obj, dict) or obj.get("type") != "attack-pattern" or obj.get("revoked"):
        return None
    refs = [r for r in obj.get("external_references") or () if isinstance(r, dict)]
    capec = [str(r.get("external_id")) for r in refs if r.get("source_name") == "capec"]
    labels = [
        f"T{str(r.get('external_id')).removeprefix('T')}"
        for r in refs
        if r.get("source_name") == "ATTACK" and r.get("external_id")
    ]
    title = squash(obj.get("name"))
    if not (capec and labels and title):
        return None
    deprecated = obj.get("x_capec_status") == "Deprecated"
    text = title_text(title, squash(obj.get("description")))
    return record(text, technique_ids(" ".join(labels)), source, capec[0], deprecated=deprecated)
