"""Reading an upstream archive (a repository tarball, or an extracted folder) safely, and the
record helpers every converter shares.

Only regular files of bounded size are read, without extracting anything; names are POSIX paths
inside the archive, sorted, so records do not depend on the order the archive was packed in.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import yaml

from mitremap.errors import DataError
from mitremap.training.corpus import LabelledText

MAX_MEMBER_BYTES = 2 * 1024 * 1024
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is faster, still safe
_TECHNIQUE = re.compile(r"\bT\d{4}(?:\.\d{3})?\b")


# ---- reading archives ----------------------------------------------------------------------


def archive_files(
    path: Path, suffixes: tuple[str, ...], max_bytes: int = MAX_MEMBER_BYTES
) -> list[tuple[str, bytes]]:
    """(name, content) of each regular file whose name ends in one of `suffixes` and that holds
    at most `max_bytes`, by name.

    Names are POSIX paths inside the folder or tarball. Sorting makes the records, and which
    id a repeated text keeps, independent of the order the archive was packed in.
    """
    if path.is_dir():
        files = _folder_files(path, suffixes, max_bytes)
    else:
        files = _tar_files(path, suffixes, max_bytes)
    if not files:
        raise DataError(f"{path} has no {' or '.join(suffixes)} files to convert")
    return sorted(files)


def _folder_files(root: Path, suffixes: tuple[str, ...], max_bytes: int) -> list[tuple[str, bytes]]:
    out = []
    for file in root.rglob("*"):
        wanted = file.name.lower().endswith(suffixes) and not file.is_symlink()
        try:
            if wanted and file.is_file() and file.stat().st_size <= max_bytes:
                out.append((file.relative_to(root).as_posix(), file.read_bytes()))
        except OSError:
            continue  # an unreadable file is skipped like a broken one
    return out


def _tar_files(path: Path, suffixes: tuple[str, ...], max_bytes: int) -> list[tuple[str, bytes]]:
    out = []
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                wanted = member.isfile() and member.name.lower().endswith(suffixes)
                if wanted and member.size <= max_bytes:
                    data = archive.extractfile(member)
                    if data is not None:
                        out.append((member.name, data.read()))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"Cannot read {path}: not a folder or a readable .tar.gz archive") from exc
    return out


def decode(content: bytes) -> str:
    return content.decode("utf-8-sig", errors="replace")


def yaml_docs(files: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, dict[str, object]]]:
    """Each YAML file's mapping documents; a file that does not parse is skipped."""
    for name, content in files:
        try:
            docs = list(yaml.load_all(decode(content), Loader=_YAML_LOADER))
        except yaml.YAMLError:
            continue
        for doc in docs:
            if isinstance(doc, dict):
                yield name, doc


# ---- records -------------------------------------------------------------------------------


class Record(NamedTuple):
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


def merge_same_text(records: Iterable[Record], source: str) -> Iterator[LabelledText]:
    """Sources repeat a text under several techniques: one record for it, with all its labels.
    Records without text or labels are dropped (no label here means "not mapped", not "no
    technique")."""
    merged: dict[str, _Merged] = {}
    for record in records:
        if record.text:
            item = merged.setdefault(record.text, _Merged(record.id, record.meta))
            add_unique(item.labels, record.labels)
    for text, item in merged.items():
        if item.labels:
            yield LabelledText(text, tuple(item.labels), source, item.id, item.meta)


def squash(text: object) -> str:
    """One line, single spaces: the sources wrap and indent their text freely."""
    return " ".join(str(text or "").split())


def technique_ids(value: object) -> list[str]:
    return _TECHNIQUE.findall(str(value or ""))


def add_unique(target: list[str], items: Iterable[str]) -> None:
    for item in items:
        if item not in target:
            target.append(item)


def title_text(title: str, body: str) -> str:
    """Title and body as "Title. Body", without doubling a full stop the title ends with."""
    if not body:
        return title
    return f"{title}{' ' if title.endswith('.') else '. '}{body}"


def with_parents(ids: Iterable[str]) -> list[str]:
    """MBC cites "Parent: Sub-technique (T1497.001)", meaning both: the parent, then the id."""
    out: list[str] = []
    for technique in ids:
        add_unique(out, [technique.split(".")[0], technique])
    return out


# ---- shared helpers for repository archives ------------------------------------------------


def relative_from(name: str, *anchors: str) -> str | None:
    """`name` from its first folder called one of `anchors` on: a GitHub tarball puts every
    file under "repo-commit/", an extracted copy may not."""
    parts = name.split("/")
    for index, part in enumerate(parts[:-1]):
        if part in anchors:
            return "/".join(parts[index:])
    return None


def without_top_folder(files: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Names relative to the repository: a GitHub tarball's "repo-commit/" removed when every
    file is under that one folder."""
    tops = {name.split("/", 1)[0] for name, _ in files}
    if len(tops) == 1 and all("/" in name for name, _ in files):
        return [(name.split("/", 1)[1], content) for name, content in files]
    return files


def record(
    text: str, labels: Iterable[str], source: str, record_id: str, **meta: object
) -> LabelledText:
    return LabelledText(text, tuple(labels), source, record_id, meta)
