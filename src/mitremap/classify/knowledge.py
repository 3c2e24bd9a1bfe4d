"""The ATT&CK knowledge a model carries, so that a model installed alone answers everything.

Why: a model shared as one archive (`mitremap model install`) knows its techniques' names, but
the exports and `--defend` need more of ATT&CK — its STIX ids and kill chains, mitigations,
detection strategies, software and groups (for named software and similar adversaries). A user
with the model and no data mirror should not need a 40 MB bundle download for that. So a model
folder may hold `attack.json`: the knowledge base's compact index (`attack._index`, without
procedure texts and entity descriptions; about 3.5 MB, 0.9 MB in the archive), recorded in the
manifest with its SHA-256 and size, checked and parsed like everything else a model holds
(plain JSON, never pickle).

`attack_for_model` is the one place that decides which ATT&CK a model's results are read in:
the bundle of the model's version when one is found locally (the data mirror or the cache),
else the knowledge the model carries, else a download (when allowed).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mitremap.errors import DataNotFoundError, ModelError

if TYPE_CHECKING:
    from mitremap.attack import AttackKB

KNOWLEDGE = "attack.json"
FORMAT = "mitremap-attack-knowledge"
MAX_KNOWLEDGE_BYTES = 64 * 1024 * 1024

FIRST_RUN = (
    "install a shared model (mitremap model install FILE|URL), or get the data and train one "
    "(mitremap data fetch all, then mitremap train)"
)
"""What to do when there is no model: the three ways, in the order a new user should try them."""


def knowledge_text(kb: AttackKB) -> bytes:
    """The knowledge file's bytes for `kb` (sorted keys, no spaces: the same KB, the same
    bytes, so an exported model archive is reproducible)."""
    from mitremap.attack import _index

    body = {"format": FORMAT, **_index.to_index(kb, compact=True), "source": ""}
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def write_knowledge(folder: str | os.PathLike[str], kb: AttackKB) -> Path:
    """Add `kb`'s compact knowledge to the model at `folder` (the file first, then the
    manifest that names it)."""
    from mitremap.classify.base import MANIFEST, read_manifest
    from mitremap.files import atomic_writer, write_text

    path = Path(folder)
    manifest = read_manifest(path)
    data = knowledge_text(kb)
    with atomic_writer(path / KNOWLEDGE, binary=True) as handle:
        handle.write(data)
    manifest["knowledge"] = {
        "file": KNOWLEDGE,
        "attack_version": kb.version,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    write_text(path / MANIFEST, json.dumps(manifest, indent=1))
    return path / KNOWLEDGE


def knowledge_entry(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What the manifest says of the model's knowledge; None when it carries none."""
    from mitremap.classify.base import read_manifest

    entry = read_manifest(folder).get("knowledge")
    if entry is None:
        return None
    if not isinstance(entry, dict) or entry.get("file") != KNOWLEDGE:
        raise ModelError(f"the model at {folder} is corrupt (its knowledge entry); reinstall it")
    return entry


def read_knowledge(folder: str | os.PathLike[str]) -> AttackKB | None:
    """The ATT&CK knowledge the model at `folder` carries, checked against its manifest
    (size, SHA-256, layout); None when it carries none."""
    from mitremap.attack import AttackKB, _index

    entry = knowledge_entry(folder)
    if entry is None:
        return None
    path = Path(folder) / KNOWLEDGE
    where = f"the model at {Path(folder)}"
    try:
        size = path.stat().st_size
        if size > MAX_KNOWLEDGE_BYTES or size != entry.get("bytes"):
            raise ModelError(f"{where} is corrupt ({KNOWLEDGE} has the wrong size); reinstall it")
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{where} has no readable {KNOWLEDGE}; reinstall it") from exc
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise ModelError(f"{where} is corrupt ({KNOWLEDGE} fails its SHA-256); reinstall it")
    try:
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise ValueError("not a knowledge file")
        kb = AttackKB(**_index.from_index(body))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ModelError(f"{where} is corrupt ({KNOWLEDGE}: {exc}); reinstall it") from exc
    kb.source = f"{path} (the model's ATT&CK knowledge)"
    return kb


def attack_for_model(
    version: str | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    model: str | os.PathLike[str] | None = None,
) -> AttackKB:
    """ATT&CK `version` (default: the model's, else the default) for reading a model's results:
    a bundle found locally wins (it is the whole knowledge base), then the knowledge the model
    at `model` (default: the default model) carries, then a download where allowed."""
    from mitremap.analysis import default_model_path
    from mitremap.attack import load_attack
    from mitremap.data import DataResolver
    from mitremap.sources import DEFAULT_ATTACK_VERSION

    folder = Path(model) if model is not None else default_model_path()
    carried = _carried_version(folder)
    wanted = version or carried or DEFAULT_ATTACK_VERSION
    resolver = DataResolver(data_dir=data_dir)
    relative = f"attack/enterprise-attack-{wanted}.json"
    local = resolver.find(relative).path or resolver.find(relative + ".gz").path
    if local is not None:
        return load_attack(path=local, version=wanted, data_dir=data_dir)
    if carried == wanted:
        kb = read_knowledge(folder)
        if kb is not None:
            return kb
    try:
        return load_attack(version=wanted, data_dir=data_dir)
    except DataNotFoundError as exc:
        raise DataNotFoundError(
            f"ATT&CK {wanted} is needed and was not found: {exc}; or install a model that "
            "carries it (mitremap model install FILE|URL)"
        ) from exc


def _carried_version(folder: Path) -> str | None:
    """The ATT&CK version the model at `folder` carries knowledge of (None: none, or no
    model there)."""
    try:
        entry = knowledge_entry(folder)
    except ModelError:
        return None
    return str(entry.get("attack_version") or "") or None if entry else None
