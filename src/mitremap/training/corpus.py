"""Labelled text from every source, with one label normaliser.

Every reader yields `LabelledText(text, labels, source, id, meta)`. Labels are normalised once,
here, by `LabelNormaliser`: revoked ids become their replacement, ids from a newer ATT&CK
(v19 ids in Sigma and Atomic Red Team) are mapped where the older equivalent is known, and
anything else is dropped and counted. `build_corpus` assembles a named, versioned recipe of
sources, merges duplicate texts and reports what it did.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mitremap.attack import AttackKB, clean_attack_text
from mitremap.errors import DataError
from mitremap.sources import SOURCES, Source, source

if TYPE_CHECKING:
    from mitremap.data import DataResolver

_LABEL = re.compile(r"^T\d{4}(?:\.\d{3})?$")
_SIGMA_TAG = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)
MAX_YAML_BYTES = 2 * 1024 * 1024
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~10x faster, still safe

# ATT&CK v19 split Defense Evasion and gave these techniques new ids. Where v18 has the same
# technique under its old id, training text labelled with the v19 id is kept under the v18 id.
V19_TO_V18: dict[str, str] = {
    "T1684.001": "T1656",  # Impersonation
    "T1684.002": "T1672",  # Email Spoofing
    "T1685": "T1562.001",  # Disable or Modify Tools
    "T1685.001": "T1562.002",  # Disable Windows Event Logging
    "T1685.002": "T1562.008",  # Disable or Modify Cloud Logs
    "T1685.003": "T1562.011",  # Spoof Security Alerting
    "T1685.004": "T1562.012",  # Disable or Modify Linux Audit System
    "T1685.005": "T1070.001",  # Clear Windows Event Logs
    "T1685.006": "T1070.002",  # Clear Linux or Mac System Logs
    "T1686": "T1562.004",  # Disable or Modify System Firewall
    "T1686.001": "T1562.007",  # Disable or Modify Cloud Firewall
    "T1686.002": "T1562.013",  # Disable or Modify Network Device Firewall
    "T1686.003": "T1562.004",  # Windows host firewall
    "T1688": "T1562.009",  # Safe Mode Boot
    "T1689": "T1562.010",  # Downgrade Attack
    "T1690": "T1562.003",  # Impair Command History Logging
}


@dataclass(frozen=True)
class LabelledText:
    """A text and the techniques it describes; no labels means "describes no technique"."""

    text: str
    labels: tuple[str, ...]
    source: str
    id: str
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


# ---- label normalisation -------------------------------------------------------------------


@dataclass
class LabelReport:
    """What normalisation did to the labels: how many were kept, mapped and dropped."""

    kept: int = 0
    revoked_mapped: Counter[str] = field(default_factory=Counter)
    newer_mapped: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kept": self.kept,
            "revoked_mapped": sum(self.revoked_mapped.values()),
            "newer_version_mapped": sum(self.newer_mapped.values()),
            "dropped": sum(self.dropped.values()),
            "dropped_ids": dict(self.dropped.most_common()),
        }


class LabelNormaliser:
    """Turns any source's technique ids into current ids of the loaded ATT&CK version."""

    def __init__(self, kb: AttackKB, newer: Mapping[str, str] = V19_TO_V18) -> None:
        self.kb = kb
        self.newer = dict(newer)
        self.report = LabelReport()

    def normalise_id(self, label: str) -> str | None:
        """One id → its current form, or None (counted as dropped)."""
        label = label.strip().upper()
        if not _LABEL.match(label):
            self.report.dropped[label] += 1
            return None
        technique = self.kb.get(label)
        if technique is None and label in self.newer:
            self.report.newer_mapped[label] += 1
            label = self.newer[label]
            technique = self.kb.get(label)
        if technique is None:
            self.report.dropped[label] += 1
            return None
        if not technique.active:
            current = self.kb.resolve(label)
            if not current.active:
                self.report.dropped[label] += 1
                return None
            self.report.revoked_mapped[label] += 1
            return current.id
        self.report.kept += 1
        return technique.id

    def normalise(self, labels: Iterable[str]) -> tuple[str, ...]:
        out = (self.normalise_id(label) for label in labels)
        return tuple(dict.fromkeys(label for label in out if label))


# ---- readers -------------------------------------------------------------------------------


def read_jsonl(path: str | Path, source: str | None = None) -> Iterator[LabelledText]:
    """Records in the shared schema: {"text", "labels", "source"?, "id"?, "meta"?} per line.

    A record that does not fit the schema (labels that are not a list of id strings, meta that
    is not an object, a file that is not UTF-8 text) is a one-line `DataError` naming the file
    and line: training on a silently mangled record is worse than stopping.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        number = 0
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                item = _jsonl_record(line, path, number, source)
                if item is not None:
                    yield item
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}, line {number + 1}: not UTF-8 text ({exc.reason})") from exc


def _jsonl_record(line: str, path: Path, number: int, source: str | None) -> LabelledText | None:
    where = f"{path}, line {number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not a JSON object with 'text' and 'labels'") from exc
    if not isinstance(record, dict) or "text" not in record:
        raise DataError(f"{where}: not a JSON object with 'text' and 'labels'")
    text, labels, meta = record["text"], record.get("labels") or [], record.get("meta") or {}
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise DataError(f'{where}: "labels" must be a list of technique ids, e.g. ["T1059.001"]')
    if not isinstance(meta, dict):
        raise DataError(f'{where}: "meta" must be an object')
    if not isinstance(text, str) or not text.strip():
        return None
    return LabelledText(
        text=text,
        labels=tuple(labels),
        source=source or str(record.get("source") or path.stem),
        id=str(record.get("id", f"{path.stem}:{number}")),
        meta={**meta, **({"split": record["split"]} if "split" in record else {})},
    )


def read_csv(path: str | Path, source: str | None = None) -> Iterator[LabelledText]:
    """A CSV with a `text` column and a `labels` column (ids separated by ';' or ',')."""
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read {path} as UTF-8 CSV: {exc}") from exc
    reader = csv.DictReader(io.StringIO(content))
    if (
        not reader.fieldnames
        or "text" not in reader.fieldnames
        or "labels" not in reader.fieldnames
    ):
        raise DataError(f"{path}: a training CSV needs 'text' and 'labels' columns")
    for number, row in enumerate(reader, 2):
        text = (row.get("text") or "").strip()
        if text:
            labels = tuple(
                x.strip() for x in re.split(r"[;,]", row.get("labels") or "") if x.strip()
            )
            yield LabelledText(
                text,
                labels,
                source or row.get("source") or path.stem,
                row.get("id") or f"{path.stem}:{number}",
            )


def read_yaml_rules(path: str | Path) -> Iterator[LabelledText]:
    """Sigma rules and Atomic Red Team tests from a folder or a tarball of YAML files."""
    path = Path(path)
    for name, content in _yaml_files(path):
        try:
            docs = [d for d in yaml.load_all(content, Loader=_YAML_LOADER) if isinstance(d, dict)]
        except yaml.YAMLError:
            continue  # one broken rule must not stop a corpus of thousands
        for doc in docs:
            if "atomic_tests" in doc:
                yield from _atomic_texts(doc, name)
            elif "detection" in doc or "logsource" in doc:
                item = _sigma_text(doc, name)
                if item is not None:
                    yield item


def read_stix_bundle(path: str | Path, source: str | None = None) -> Iterator[LabelledText]:
    """`uses` relationships that point at attack-patterns, from any STIX 2.x bundle."""
    path = Path(path)
    try:
        bundle = json.loads(path.read_bytes())
        objects = {o["id"]: o for o in bundle["objects"] if isinstance(o, dict) and "id" in o}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a readable STIX bundle") from exc
    for obj in objects.values():
        if obj.get("type") != "relationship" or obj.get("relationship_type") != "uses":
            continue
        target = objects.get(obj.get("target_ref", ""), {})
        if target.get("type") != "attack-pattern":
            continue
        ids = [
            r.get("external_id")
            for r in target.get("external_references", ())
            if r.get("source_name") == "mitre-attack"
        ]
        text = clean_attack_text(obj.get("description", ""))
        if ids and text:
            yield LabelledText(text, (ids[0],), source or path.stem, obj["id"])


def read_tram_json(path: str | Path, source: str | None = None) -> Iterator[LabelledText]:
    """TRAM's JSON: a report export ({"sentences": [{"text", "mappings": [{"attack_id"}]}]}),
    or a plain list of sentences that describe no technique (TRAM's negative data)."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable TRAM JSON file") from exc
    name = source or path.stem
    if isinstance(data, list):
        yield from _tram_negatives(data, name)
        return
    sentences = data.get("sentences") if isinstance(data, dict) else None
    if not isinstance(sentences, list):
        raise DataError(f"{path}: not a TRAM report export (no 'sentences' list)")
    yield from _tram_sentences(sentences, name)


def _tram_negatives(texts: list[Any], name: str) -> Iterator[LabelledText]:
    """TRAM's negative data: each non-blank string a text with no technique."""
    for number, text in enumerate(texts):
        if isinstance(text, str) and text.strip():
            yield LabelledText(text, (), name, f"{name}-{number}")


def _tram_sentences(sentences: list[Any], name: str) -> Iterator[LabelledText]:
    """A TRAM report export's sentences with their techniques (rejected ones left out)."""
    for number, sentence in enumerate(sentences):
        if not isinstance(sentence, dict) or sentence.get("disposition") == "reject":
            continue
        text = str(sentence.get("text") or "").strip()
        labels = tuple(m["attack_id"] for m in sentence.get("mappings") or () if m.get("attack_id"))
        if text:
            yield LabelledText(text, labels, name, f"{name}-{number}")


def write_jsonl(
    items: Iterable[LabelledText], target: Path, *, if_empty: Exception | None = None
) -> int:
    """Write records in the shared schema, atomically (temporary file, then rename).

    `if_empty` is raised, before anything replaces `target`, when there was no record: a
    conversion that found nothing must not wipe the last good copy."""
    from mitremap.files import atomic_writer

    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with atomic_writer(target) as out:
        for item in items:
            record = {
                "source": item.source,
                "id": item.id,
                "text": item.text,
                "labels": list(item.labels),
                "meta": dict(item.meta),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
        if count == 0 and if_empty is not None:
            raise if_empty
    return count


def read_any(path: str | Path) -> Iterator[LabelledText]:
    """Pick the reader by what the path is: .jsonl, .csv, a STIX .json, or YAML rules."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"Training file not found: {path}")
    name = path.name.lower()
    if path.is_dir() or name.endswith((".tar.gz", ".tgz", ".tar", ".yml", ".yaml")):
        return read_yaml_rules(path)
    if name.endswith(".jsonl"):
        return read_jsonl(path)
    if name.endswith(".csv"):
        return read_csv(path)
    if name.endswith(".json"):
        return read_stix_bundle(path)
    raise DataError(
        f"{path}: unknown training file type (use .jsonl, .csv, a STIX .json, "
        "or a folder/tarball of Sigma or Atomic Red Team YAML)"
    )


def attack_texts(
    kb: AttackKB, procedures: bool = True, descriptions: bool = True
) -> Iterator[LabelledText]:
    """ATT&CK's own text: procedure examples and each technique's name and description."""
    if procedures:
        for number, proc in enumerate(kb.procedures):
            yield LabelledText(
                proc.text,
                (proc.technique,),
                "attack-procedures",
                f"{proc.source_id}:{proc.technique}:{number}",
                {"source_name": proc.source_name},
            )
    if descriptions:
        for technique in kb.techniques():
            text = f"{technique.name}. {technique.description}".strip()
            yield LabelledText(text, (technique.id,), "attack-descriptions", technique.id)


def _yaml_files(path: Path) -> Iterator[tuple[str, str]]:
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            is_yaml = file.suffix.lower() in (".yml", ".yaml") and file.is_file()
            if is_yaml and file.stat().st_size <= MAX_YAML_BYTES:
                text = file.read_text(encoding="utf-8", errors="replace")
                yield str(file.relative_to(path)), text
    elif path.suffix.lower() in (".yml", ".yaml"):
        yield path.name, path.read_text(encoding="utf-8", errors="replace")
    else:
        try:
            with tarfile.open(path) as archive:
                for member in archive:
                    if (
                        member.isfile()
                        and member.name.lower().endswith((".yml", ".yaml"))
                        and member.size <= MAX_YAML_BYTES
                    ):
                        data = archive.extractfile(member)
                        if data is not None:
                            yield member.name, data.read().decode("utf-8", errors="replace")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"{path} is not a readable tarball of YAML rules") from exc


def _sigma_text(doc: dict[str, Any], name: str) -> LabelledText | None:
    title = str(doc.get("title") or "").strip()
    description = str(doc.get("description") or "").strip()
    if not title and not description:
        return None
    tags = doc.get("tags") or []
    labels = tuple(
        m.group(1).upper()
        for tag in tags
        if isinstance(tag, str)
        for m in [_SIGMA_TAG.match(tag.strip())]
        if m
    )
    deprecated = doc.get("status") == "deprecated" or "deprecated/" in name
    text = f"{title}. {description}" if description else title
    return LabelledText(
        text, labels, "sigma", str(doc.get("id") or name), {"path": name, "deprecated": deprecated}
    )


def _atomic_texts(doc: dict[str, Any], name: str) -> Iterator[LabelledText]:
    technique = str(doc.get("attack_technique") or "").strip().upper()
    for number, test in enumerate(doc.get("atomic_tests") or []):
        if not isinstance(test, dict):
            continue
        title = str(test.get("name") or "").strip()
        description = str(test.get("description") or "").strip()
        if title or description:
            yield LabelledText(
                f"{title}. {description}".strip(". "),
                (technique,) if technique else (),
                "atomic",
                str(test.get("auto_generated_guid") or f"{name}:{number}"),
                {"path": name},
            )


# ---- recipes -------------------------------------------------------------------------------


def training_source(name: str) -> Source:
    """A source that may be trained on (`mitremap.sources`), or a `DataError` saying why not."""
    try:
        spec = source(name)
    except KeyError:
        known = ", ".join(s.name for s in SOURCES if s.training)
        raise DataError(f"Unknown training source {name!r}; known: {known}") from None
    if not spec.training:
        raise DataError(f"{name} is {spec.role}-only and cannot be used for training")
    return spec


@dataclass(frozen=True)
class Recipe:
    """A named, versioned list of sources: recorded in each model's card."""

    name: str
    version: str
    sources: tuple[str, ...]


DEFAULT_RECIPE = Recipe(
    name="mitremap-default",
    version="2",
    sources=(
        "attack-procedures",
        "attack-descriptions",
        "tram-bootstrap",
        "tram-single",
        "tram-spans",
        "tram-negative",
        "sigma",
        "atomic",
        "splunk",
        "car",
        "chronicle",
        "kql",
        "text2ttp-manual",
        "ctid-kev",
        "mbc",
        "lolbas",
        "annoctr-train",
    ),
)
"""Opt-in: Elastic (Elastic License 2.0), CAPEC (weak links), Panther and Text2TTP's copy of
TRAM v1 (measured by ablation: no gain, or a loss on text unlike theirs). AnnoCTR's dev split is
never trained on (it is kept for evaluation)."""


@dataclass
class CorpusReport:
    """What went into a corpus: per-source counts, label normalisation, merged duplicates.

    `kept` counts a source's records that passed its filters, before duplicates are merged.
    """

    recipe: Recipe
    read: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)
    excluded: int = 0
    duplicates_merged: int = 0
    labels: LabelReport = field(default_factory=LabelReport)
    added_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": {
                "name": self.recipe.name,
                "version": self.recipe.version,
                "sources": list(self.recipe.sources),
            },
            "added_files": self.added_files,
            "sources": {
                name: {"read": self.read[name], "kept": self.kept[name]} for name in self.read
            },
            "excluded": self.excluded,
            "duplicates_merged": self.duplicates_merged,
            "labels": self.labels.to_dict(),
        }


@dataclass
class Corpus:
    items: list[LabelledText]
    report: CorpusReport

    @property
    def label_set(self) -> list[str]:
        return sorted({label for item in self.items for label in item.labels})


def build_corpus(
    kb: AttackKB,
    recipe: Recipe = DEFAULT_RECIPE,
    resolver: DataResolver | None = None,
    add: Iterable[str | Path] = (),
    drop: Iterable[str] = (),
    include: Iterable[str] = (),
    exclude: Callable[[LabelledText], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Corpus:
    """Read a recipe's sources (minus `drop`, plus `include` and the files in `add`).

    Labels are normalised against `kb`; texts that appear more than once are merged (their
    labels united; a text labelled anywhere is not also a negative). `exclude` drops items,
    e.g. the sentences of held-out reports during cross-validation.
    """
    from mitremap.data import DataResolver

    resolver = resolver or DataResolver()
    dropped = set(drop)
    names = [n for n in (*recipe.sources, *include) if n not in dropped]
    specs = {name: training_source(name) for name in names}
    added = [str(p) for p in add]
    report = CorpusReport(
        Recipe(recipe.name, recipe.version, tuple(dict.fromkeys(names))), added_files=added
    )
    normaliser = LabelNormaliser(kb)
    merged: dict[str, LabelledText] = {}

    def take(items: Iterable[LabelledText], name: str, spec: Source | None) -> None:
        for item in items:
            report.read[name] += 1
            if spec is not None and spec.skip_deprecated and item.meta.get("deprecated"):
                continue
            labels = normaliser.normalise(item.labels)
            if not labels and not (spec is not None and spec.negatives):
                continue  # an unlabelled rule is not evidence of "no technique"
            item = LabelledText(item.text.strip(), labels, name, item.id, item.meta)
            if exclude is not None and exclude(item):
                report.excluded += 1
                continue
            report.kept[name] += 1
            key = _dedup_key(item.text)
            if key in merged:
                report.duplicates_merged += 1
                first = merged[key]
                merged[key] = LabelledText(
                    first.text,
                    tuple(dict.fromkeys(first.labels + labels)),
                    first.source,
                    first.id,
                    first.meta,
                )
            else:
                merged[key] = item

    for name in names:
        if progress is not None:
            progress(name)
        spec = specs[name]
        if name == "attack-procedures":
            take(attack_texts(kb, descriptions=False), name, spec)
        elif name == "attack-descriptions":
            take(attack_texts(kb, procedures=False), name, spec)
        else:
            take(_read_source(resolver.require(str(spec.path)), spec), name, spec)
    for path in added:
        if progress is not None:
            progress(Path(path).name)
        name = f"file:{Path(path).name}"
        take(read_any(path), name, None)
        if not report.kept[name]:
            raise DataError(
                f"{path}: no usable labelled text ({report.read[name]} records read, none with "
                "a technique id this ATT&CK version knows); check its 'labels'"
            )

    report.labels = normaliser.report
    return Corpus(list(merged.values()), report)


def evaluation_items(
    kb: AttackKB, name: str, resolver: DataResolver | None = None
) -> list[LabelledText]:
    """The labelled texts of a registered source read as training reads them (its split, its
    reader, labels normalised against `kb`), whatever its role: how benchmarks score text the
    model was never trained on (`annoctr-dev`)."""
    from mitremap.data import DataResolver
    from mitremap.sources import source

    spec = source(name)
    normaliser = LabelNormaliser(kb)
    path = (resolver or DataResolver()).require(str(spec.path))
    return [
        LabelledText(i.text.strip(), labels, name, i.id, i.meta)
        for i in _read_source(path, spec)
        if (labels := normaliser.normalise(i.labels))
    ]


def _read_source(path: Path, spec: Source) -> Iterator[LabelledText]:
    for item in read_jsonl(path, source=spec.name):
        if spec.split is not None and item.meta.get("split") != spec.split:
            continue
        if spec.reader == "mentions":
            item = _mention_in_sentence(item)
        yield item


def _mention_in_sentence(item: LabelledText) -> LabelledText:
    """An AnnoCTR mention ("sent this malspam campaign") read with the words around it, so the
    training text is the sentence an analyst would read."""
    left = str(item.meta.get("context_left") or "").strip()
    right = str(item.meta.get("context_right") or "").strip()
    text = " ".join(x for x in (left, item.text.strip(), right) if x)
    meta = {**item.meta, "doc_title": item.meta.get("doc")}  # its report, for held-out folds
    return LabelledText(text, item.labels, item.source, item.id, meta)


def _dedup_key(text: str) -> str:
    return " ".join(text.lower().split())
