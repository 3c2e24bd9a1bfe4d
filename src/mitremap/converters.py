"""Raw upstream archives of six training sources, turned into labelled text.

`mitremap data fetch` downloads a source from its origin (a GitHub tarball) and rebuilds the
mirror's JSONL file from it with one of these converters. Each reads a `.tar.gz` without
extracting it (regular files of at most 2 MB only), or an already-extracted folder, and yields
`LabelledText` whose labels are technique ids exactly as the source writes them: normalising
them is `corpus.LabelNormaliser`'s job. A broken file is skipped; a path that is not a folder
or a readable tarball, or holds none of the files its format needs, is a `DataError`.

The records reproduce the mirror files in `corpora/` (text, labels and ids). The mirror was also
filtered against evaluation text, so a conversion may hold more records than it.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import yaml

from mitremap.corpus import LabelledText
from mitremap.errors import DataError

MAX_MEMBER_BYTES = 2 * 1024 * 1024
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is faster, still safe
_TECHNIQUE = re.compile(r"\bT\d{4}(?:\.\d{3})?\b")

Converter = Callable[[Path, str], Iterator[LabelledText]]
"""(raw archive or folder, source name) → records; the source name goes into each record."""


# ---- reading archives ----------------------------------------------------------------------


def archive_files(path: Path, suffixes: tuple[str, ...]) -> list[tuple[str, bytes]]:
    """(name, content) of each regular file whose name ends in one of `suffixes`, by name.

    Names are POSIX paths inside the folder or tarball. Sorting makes the records, and which
    id a repeated text keeps, independent of the order the archive was packed in.
    """
    files = _folder_files(path, suffixes) if path.is_dir() else _tar_files(path, suffixes)
    if not files:
        raise DataError(f"{path} has no {' or '.join(suffixes)} files to convert")
    return sorted(files)


def _folder_files(root: Path, suffixes: tuple[str, ...]) -> list[tuple[str, bytes]]:
    out = []
    for file in root.rglob("*"):
        wanted = file.name.lower().endswith(suffixes) and not file.is_symlink()
        try:
            if wanted and file.is_file() and file.stat().st_size <= MAX_MEMBER_BYTES:
                out.append((file.relative_to(root).as_posix(), file.read_bytes()))
        except OSError:
            continue  # an unreadable file is skipped like a broken one
    return out


def _tar_files(path: Path, suffixes: tuple[str, ...]) -> list[tuple[str, bytes]]:
    out = []
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                wanted = member.isfile() and member.name.lower().endswith(suffixes)
                if wanted and member.size <= MAX_MEMBER_BYTES:
                    data = archive.extractfile(member)
                    if data is not None:
                        out.append((member.name, data.read()))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"Cannot read {path}: not a folder or a readable .tar.gz archive") from exc
    return out


def _decode(content: bytes) -> str:
    return content.decode("utf-8-sig", errors="replace")


def _yaml_docs(files: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, dict[str, object]]]:
    """Each YAML file's mapping documents; a file that does not parse is skipped."""
    for name, content in files:
        try:
            docs = list(yaml.load_all(_decode(content), Loader=_YAML_LOADER))
        except yaml.YAMLError:
            continue
        for doc in docs:
            if isinstance(doc, dict):
                yield name, doc


# ---- records -------------------------------------------------------------------------------


class _Record(NamedTuple):
    text: str
    id: str
    labels: list[str]
    meta: dict[str, str]


@dataclass
class _Merged:
    """One text: the id it was first seen with, and every label it was given."""

    id: str
    meta: dict[str, str]
    labels: list[str] = field(default_factory=list)


def _merge_same_text(records: Iterable[_Record], source: str) -> Iterator[LabelledText]:
    """Sources repeat a text under several techniques: one record for it, with all its labels.
    Records without text or labels are dropped (no label here means "not mapped", not "no
    technique")."""
    merged: dict[str, _Merged] = {}
    for record in records:
        if record.text:
            item = merged.setdefault(record.text, _Merged(record.id, record.meta))
            _add_unique(item.labels, record.labels)
    for text, item in merged.items():
        if item.labels:
            yield LabelledText(text, tuple(item.labels), source, item.id, item.meta)


def _squash(text: object) -> str:
    """One line, single spaces: the sources wrap and indent their text freely."""
    return " ".join(str(text or "").split())


def _technique_ids(value: object) -> list[str]:
    return _TECHNIQUE.findall(str(value or ""))


def _add_unique(target: list[str], items: Iterable[str]) -> None:
    for item in items:
        if item not in target:
            target.append(item)


# ---- Text2TTP: data/sentences.csv ----------------------------------------------------------

_TEXT2TTP_DATASETS = {"text2ttp-manual": "manual", "text2ttp-tramv1": "tram"}


def read_text2ttp_csv(path: Path, source: str) -> Iterator[LabelledText]:
    """Text2TTP's sentences.csv (tech_id, text, …, dataset); `source` picks the rows:
    text2ttp-manual the hand-annotated ones, text2ttp-tramv1 those carried over from TRAM v1.

    A sentence with several techniques is one row per technique: they become one record, whose
    id is the dataset and the index of its first row in the file.
    """
    dataset = _TEXT2TTP_DATASETS.get(source.replace("_", "-"))
    if dataset is None:
        known = ", ".join(_TEXT2TTP_DATASETS)
        raise DataError(f"text2ttp-csv converts the sources {known}, not {source!r}")
    records = []
    for name, content in archive_files(path, ("sentences.csv",)):
        for index, row in enumerate(csv.DictReader(io.StringIO(_decode(content)))):
            if row.get("dataset") == dataset:
                record_id = f"{dataset}-{index:05d}"
                labels = _technique_ids(row.get("tech_id"))
                records.append(_Record(_squash(row.get("text")), record_id, labels, {"path": name}))
    return _merge_same_text(records, source)


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
            cve_id = _squash(mapping.get("capability_id"))
            title = _squash(mapping.get("capability_description"))
            if cve_id and title:
                cve = cves.setdefault(cve_id, _Cve(title, name))
                _add_unique(cve.comments, filter(None, [_squash(mapping.get("comments"))]))
                _add_unique(cve.labels, _technique_ids(mapping.get("attack_object_id")))
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


# ---- LOLBAS: yml/**/*.yml ------------------------------------------------------------------


def read_lolbas_yml(path: Path, source: str = "lolbas") -> Iterator[LabelledText]:
    """One record per documented misuse (command) of a Windows binary, script or library.

    The text is the command's description, after the binary's name where the description does
    not name it, so that every text says which binary it is about. Commands with the same
    description (one misuse, several techniques) are one record.
    """
    records = []
    for name, doc in _yaml_docs(archive_files(path, (".yml", ".yaml"))):
        binary, commands = _squash(doc.get("Name")), doc.get("Commands")
        if binary and isinstance(commands, list):
            for index, command in enumerate(commands):
                if isinstance(command, dict):
                    text = _lolbas_text(binary, _squash(command.get("Description")))
                    labels = _technique_ids(command.get("MitreID"))
                    records.append(_Record(text, f"{binary}#{index}", labels, {"path": name}))
    return _merge_same_text(records, source)


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
    for name, doc in _yaml_docs(archive_files(path, (".yml", ".yaml"))):
        rule_id = _squash(doc.get("RuleID") or doc.get("PolicyID"))
        reports = doc.get("Reports")
        entries = reports.get("MITRE ATT&CK") if isinstance(reports, dict) else None
        if rule_id and isinstance(entries, list):
            labels: list[str] = []
            for entry in entries:  # "TA0006:T1098.001": tactic, then technique
                _add_unique(labels, _technique_ids(entry))
            title = _squash(doc.get("DisplayName")) or rule_id
            text = _title_text(title, _squash(doc.get("Description")))
            records.append(_Record(text, rule_id, labels, {"path": name}))
    return _merge_same_text(records, source)


def _title_text(title: str, body: str) -> str:
    """Title and body as "Title. Body", without doubling a full stop the title ends with."""
    if not body:
        return title
    return f"{title}{' ' if title.endswith('.') else '. '}{body}"


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
    records: list[_Record] = []
    for name, content in archive_files(path, (".md",)):
        records.extend(_mbc_page_records(name, _decode(content)))
    return _merge_same_text(records, source)


def _mbc_page_records(name: str, page: str) -> list[_Record]:
    """A behaviour page's methods and uses. A method whose description cites more ATT&CK ids
    adds them to its own labels and to those of the uses of that method."""
    id_match, attack_match = _MBC_ID.search(page), _MBC_ATTACK.search(page)
    if id_match is None or attack_match is None:
        return []
    behaviour = id_match.group(1)
    page_labels = _with_parents(_technique_ids(_HTML_TAG.sub(" ", attack_match.group(1))))
    if not page_labels:  # "None": the behaviour has no ATT&CK counterpart
        return []
    meta = {"path": name, "behaviour": behaviour}
    records = []
    method_labels: dict[str, list[str]] = {}
    for method_name, method_cell, description in _markdown_rows(page, "methods", 3):
        method_id, title, text = _plain(method_cell), _plain(method_name), _plain(description)
        labels = method_labels[method_id] = [*page_labels]
        _add_unique(labels, _cited_ids(description))
        if title and text:
            records.append(_Record(f"{title}: {text}", f"{behaviour}/{method_id}", labels, meta))
    uses = [row for row in _markdown_rows(page, "use in malware", 4) if _plain(row[3])]
    for number, (malware, _date, method, description) in enumerate(uses, 1):
        record_id = f"{behaviour}/use-{number:03d}/{_plain(malware).strip('[] ')}"
        labels = method_labels.get(_plain(method), page_labels)
        records.append(_Record(_plain(description), record_id, labels, meta))
    return records


def _with_parents(ids: Iterable[str]) -> list[str]:
    """MBC cites "Parent: Sub-technique (T1497.001)", meaning both: the parent, then the id."""
    out: list[str] = []
    for technique in ids:
        _add_unique(out, [technique.split(".")[0], technique])
    return out


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
    text = _squash(_HTML_TAG.sub("", text).replace("**", ""))
    return "" if text == "--" else text


def _cited_ids(markdown: str) -> list[str]:
    """Technique ids a cell writes out (a link's words count, its address does not)."""
    return _technique_ids(_MD_LINK.sub(r"\1", _MD_CITATION.sub("", markdown)))


# ---- registry ------------------------------------------------------------------------------

CONVERTERS_BY_FORMAT: dict[str, Converter] = {
    "text2ttp-csv": read_text2ttp_csv,
    "ctid-kev": read_ctid_kev,
    "lolbas-yml": read_lolbas_yml,
    "panther-yml": read_panther_yml,
    "mbc-markdown": read_mbc_markdown,
}
"""Format name → converter, for a source's `convert` in `mitremap.data` (text2ttp-csv serves
both Text2TTP sources: the source name picks the rows)."""
