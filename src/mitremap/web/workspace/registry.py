"""The models the server can use, and the one it uses now.

Models live as folders side by side (by default the user cache's `models/`, where the
default model is): retraining saves a new folder there and keeps the previous ones, and any
of them can be made active again. The active model's name is kept in the database, so a
restarted server uses it. The ATT&CK catalogue (ids, names, tactics) comes from the active
model's card, so searching techniques needs no knowledge base and no network.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitremap.attack import technique_url
from mitremap.errors import ModelError
from mitremap.web.workspace.errors import InvalidError, NotFoundError

LEARNED_FROM = "learned_from"
"""The card's recipe key naming the model a model was learned from with the reviews."""
LEARNING = "learning.json"
"""What a model trained from reviews learned (`learning.learning_report`), in its folder."""
_FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    tactics: tuple[str, ...]
    parent_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "tactics": list(self.tactics),
            "url": technique_url(self.id),
        }


class Catalog:
    """The techniques a model knows (its card's ATT&CK techniques and its labels)."""

    def __init__(self, entries: dict[str, CatalogEntry]) -> None:
        self.entries = dict(sorted(entries.items()))

    @classmethod
    def of(cls, mitremap: Any) -> Catalog:
        card = getattr(getattr(mitremap, "model", None), "card", None)
        rows: dict[str, Any] = dict(getattr(card, "techniques", None) or {})
        for label, info in (getattr(mitremap, "techniques", None) or {}).items():
            rows.setdefault(label, {"name": info.name, "tactics": list(info.tactics)})
        entries: dict[str, CatalogEntry] = {}
        for tid, row in rows.items():
            entries[tid] = CatalogEntry(
                tid, str(row.get("name") or tid), tuple(row.get("tactics") or ())
            )
        for tid, entry in entries.items():
            if "." in tid and tid.split(".")[0] in entries:
                parent = entries[tid.split(".")[0]].name
                entries[tid] = CatalogEntry(entry.id, entry.name, entry.tactics, parent)
        return cls(entries)

    def __contains__(self, technique: str) -> bool:
        return technique in self.entries

    def describe(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        return {tid: (e.name, e.tactics) for tid, e in self.entries.items()}

    def search(self, query: str, limit: int = 20) -> list[CatalogEntry]:
        """Ids and names that match: exact id, id prefix, name (or parent: name) starting
        with the words, then containing them."""
        words = " ".join(query.lower().split())[:200]
        if not words:
            return []
        ranked: list[tuple[int, str, CatalogEntry]] = []
        for tid, e in self.entries.items():
            name = e.name.lower()
            full = f"{e.parent_name.lower()}: {name}" if e.parent_name else name
            if tid.lower() == words:
                rank = 0
            elif tid.lower().startswith(words):
                rank = 1
            elif name.startswith(words) or full.startswith(words):
                rank = 2
            elif words in full or all(w in full for w in words.split()):
                rank = 3
            else:
                continue
            ranked.append((rank, tid, e))
        return [e for _, _, e in sorted(ranked)[:limit]]


class ModelRegistry:
    """The model folders under `folder` and the active model (swapped under a lock)."""

    def __init__(
        self,
        folder: Path,
        current: Any,
        current_path: Path | None = None,
        loader: Callable[[Path], Any] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._loader = loader or _load
        self._current = current
        self._path = current_path
        self._bases: dict[str, Any] = {}  # the general model of a learned one, by name
        # the general model's name, by the name a learned model started from (read from the
        # model folders' manifests once: every analysis asks)
        self._general_names: dict[str, str | None] = {}
        self.catalog = Catalog.of(current)

    @property
    def current(self) -> Any:
        return self._current

    @property
    def name(self) -> str:
        return self._path.name if self._path else "in-memory"

    def active(self) -> tuple[Any, str]:
        """The active model and its name, read together (a switch changes both at once)."""
        with self._lock:
            return self._current, self.name

    def for_text(self, text: str, memory: Any) -> tuple[Any, str]:
        """The model to read `text` with, and its name: the active model, unless it was
        learned from the workspace's reviews (a quick update or a retraining: its card's
        `learned_from`) and the review memory says the text reads less like the reviewed
        reports than they read like each other (its gate is under 1): such text gets the
        general model the learning started from. What the reviews teach is the reviewed
        source's ways; other text keeps the general reading (`benchmarks/bench_learning.py`:
        on textbook reports a quick update alone cost up to 0.04 and a retraining 0.016)."""
        current, name = self.active()
        if learned_from(current) is None or memory is None or memory.gate_text(text) >= 1.0:
            return current, name
        return self.general()

    def general(self) -> tuple[Any, str]:
        """The general model the active one was learned from, and its name (the active model
        itself when it was not learned from reviews, or when that model is gone). The review
        memory reads words as this model does, so a retraining does not change which text
        the memory finds close (`bench_learning.py`: with the retrained model's words, the
        memory's priors cost textbook reports 0.019)."""
        current, name = self.active()
        start = learned_from(current)
        if start is None:
            return current, name
        started = str(start["model"])
        with self._lock:
            known = started in self._general_names
            general = self._general_names.get(started)
        if not known:
            general = self._general(started)
            with self._lock:
                self._general_names[started] = general
        if general is None:
            return current, name
        with self._lock:
            cached = self._bases.get(general)
        if cached is None:
            cached = self._loader(self.path(general))
            with self._lock:
                self._bases = {general: cached}  # one general model at a time
        return cached, general

    def _general(self, name: str) -> str | None:
        """The first model, following `learned_from` back from `name`, that was not learned
        from reviews (None when a link leads to a model that is gone)."""
        from mitremap.classify.base import read_manifest

        for _ in range(50):  # a chain this long is a loop
            if not _FOLDER_NAME.match(name) or not (self.folder / name / "manifest.json").is_file():
                return None
            try:
                recipe = (read_manifest(self.folder / name).get("card") or {}).get("recipe") or {}
            except ModelError:
                return None
            link = recipe.get(LEARNED_FROM)
            if not isinstance(link, dict) or not link.get("model"):
                return name
            name = str(link["model"])
        return None

    def path(self, name: str) -> Path:
        if not _FOLDER_NAME.match(name):
            raise InvalidError(f"{name!r} is not a model name")
        return self.folder / name

    def new_name(self, prefix: str = "reviewed", trained_at: str = "") -> str:
        """A new folder name with the time the model's card shows (`trained_at`, UTC), so a
        model's name and its displayed time agree; now when it has none."""
        digits = re.sub(r"\D", "", trained_at)[:14]
        stamp = (
            f"{digits[:8]}-{digits[8:]}"
            if len(digits) == 14
            else time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        )
        name, n = f"{prefix}-{stamp}", 1
        while (self.folder / name).exists():
            n += 1
            name = f"{prefix}-{stamp}-{n}"
        return name

    def items(self) -> list[dict[str, Any]]:
        """Every model folder (and the active model, wherever it lives), newest first."""
        folders = (
            [p for p in self.folder.iterdir() if (p / "manifest.json").is_file()]
            if self.folder.is_dir()
            else []
        )
        if self._path is not None and self._path.resolve() not in {p.resolve() for p in folders}:
            folders.append(self._path)
        out = [self._item(p) for p in folders]
        if self._path is None:
            out.append(
                {
                    "name": self.name,
                    "created_at": "",
                    "active": True,
                    "card": _card(self._current),
                }
            )
        return sorted(out, key=lambda i: i["created_at"], reverse=True)

    def item(self, name: str) -> dict[str, Any]:
        for item in self.items():
            if item["name"] == name:
                return item
        raise NotFoundError(f"no model {name!r}")

    def activate(self, name: str) -> dict[str, Any]:
        """Load a model folder (checked like any model) and make it the active one."""
        path = self.path(name)
        if not (path / "manifest.json").is_file():
            if self._path is not None and name == self.name:
                return self.item(name)
            raise NotFoundError(f"no model {name!r}")
        try:
            loaded = self._loader(path)
        except ModelError as exc:
            raise InvalidError(f"the model {name!r} cannot be used: {exc}") from exc
        with self._lock:
            self._current, self._path = loaded, path
            self.catalog = Catalog.of(loaded)
        return self.item(name)

    def _item(self, path: Path) -> dict[str, Any]:
        from mitremap.classify.base import read_manifest

        try:
            card = dict(read_manifest(path).get("card") or {})
        except ModelError as exc:
            card = {"error": str(exc)}
        card.pop("techniques", None)
        card.pop("names", None)
        active = self._path is not None and path.resolve() == self._path.resolve()
        return {
            "name": path.name,
            "created_at": str(card.get("trained_at") or ""),
            "active": active,
            "card": card,
            "learning": _learning(path),
        }


def learned_from(mitremap: Any) -> dict[str, str] | None:
    """{"model": name, "mode": "full" | "quick"}: the model a model was learned from with the
    workspace's reviews (None for any other model)."""
    card = getattr(getattr(mitremap, "model", None), "card", None)
    link = (getattr(card, "recipe", None) or {}).get(LEARNED_FROM)
    if not isinstance(link, dict) or not link.get("model"):
        return None
    return {"model": str(link["model"]), "mode": str(link.get("mode") or "")}


def _learning(folder: Path) -> dict[str, Any] | None:
    """What a model trained from reviews learned, when its folder says so."""
    import json

    try:
        found = json.loads((folder / LEARNING).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _card(mitremap: Any) -> dict[str, Any]:
    card = getattr(mitremap, "card", None)
    return dict(card) if isinstance(card, dict) else {}


def _load(path: Path) -> Any:
    from mitremap.analysis import MitreMap

    return MitreMap.load(path)
