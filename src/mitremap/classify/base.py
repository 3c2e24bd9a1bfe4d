"""The contract every technique model keeps, its model card, and a saved model's files.

A saved model is a folder: `manifest.json` (format, backend, model card, settings) and
`arrays.npz` (plain numeric and byte arrays, read with `allow_pickle=False`), so loading a
model from elsewhere can never run code. `classify.load` reads one back, whatever its backend;
this module imports no backend, so backends can import it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mitremap.errors import ModelError

MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
FORMAT = "mitremap-model"
FORMAT_VERSION = 2  # 2: calibration without per-technique priors (`classify.calibration`)


@dataclass
class ModelCard:
    """What a model is and how it was made: shown by `mitremap model info`, kept in results."""

    backend: str
    attack_version: str
    package_version: str
    recipe: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    labels: int = 0
    training_texts: int = 0
    label_report: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    trained_at: str = ""
    train_seconds: float = 0.0
    techniques: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → name, tactics
    # ATT&CK software, group and campaign names and what each uses (`mitremap.names`)
    names: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class DocumentScores:
    """A document's calibrated scores: per window, and for the report as a whole."""

    window: np.ndarray  # n_windows × n_labels, P(label described in the window)
    report: np.ndarray  # n_labels, P(label is among the report's techniques)
    # P(label described in the sentence) for chosen sentence indices (to narrow evidence)
    sentences: Callable[[Sequence[int]], np.ndarray] | None = None


@runtime_checkable
class TechniqueModel(Protocol):
    """What `MitreMap` needs from a backend."""

    backend: str
    labels: list[str]
    card: ModelCard

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated P(label described in text), one row per text."""
        ...

    def score_document(
        self,
        sentences: Sequence[str],
        windows: Sequence[tuple[int, int]],
        named: np.ndarray | None = None,
    ) -> DocumentScores:
        """Scores for windows given as [first, last) sentence index ranges, and the report;
        `named`: per label, the report's named-software evidence (`Gazetteer.label_evidence`)."""
        ...

    def save(self, path: str | os.PathLike[str]) -> Path: ...


def write_model(
    path: str | os.PathLike[str], manifest: dict[str, Any], arrays: dict[str, np.ndarray]
) -> Path:
    """Write manifest + arrays into `path` atomically enough: arrays first, manifest last."""
    from mitremap.files import atomic_writer, check_writable_folder, write_text

    folder = check_writable_folder(path)
    with atomic_writer(folder / ARRAYS, binary=True) as handle:
        members: dict[str, Any] = dict(arrays)  # names → arrays (numpy's stub types them oddly)
        np.savez_compressed(handle, **members)
    body = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}
    write_text(folder / MANIFEST, json.dumps(body, indent=1, sort_keys=False))
    return folder


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    folder = Path(path)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        from mitremap.classify.knowledge import FIRST_RUN

        raise ModelError(f"no model found at {folder}: {FIRST_RUN}")
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"the model at {folder} is corrupt ({MANIFEST} is not JSON); run `mitremap train`"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(f"{folder} is not a MitreMap model folder")
    if not isinstance(data.get("card", {}), dict):
        raise ModelError(f"the model at {folder} is corrupt (its card is not an object)")
    version = data.get("format_version")
    if not isinstance(version, int):
        raise ModelError(f"the model at {folder} is corrupt (format_version {version!r})")
    if version > FORMAT_VERSION:
        raise ModelError(f"the model at {folder} needs a newer MitreMap; upgrade mitremap")
    if version < FORMAT_VERSION:
        raise ModelError(
            f"the model at {folder} was made by an older MitreMap (format {version}); "
            "run `mitremap train` (or `mitremap model ensure --force`) to rebuild it"
        )
    return data


MAX_ARRAYS_BYTES = 2 * 1024**3  # what the members may inflate to, all together


def read_arrays(
    path: str | os.PathLike[str], expected: Collection[str] | None = None
) -> dict[str, np.ndarray]:
    """The model's arrays, refusing anything that would need pickle, members the manifest
    does not name (checked before anything is inflated) and archives that would inflate past
    `MAX_ARRAYS_BYTES`."""
    import zipfile
    import zlib

    file = Path(path) / ARRAYS
    where = f"the model at {Path(path)}"
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
        names = {m.filename.removesuffix(".npy") for m in members}
        if expected is not None and names != set(expected):
            extra, missing = sorted(names - set(expected)), sorted(set(expected) - names)
            raise ModelError(
                f"{where} is corrupt ({ARRAYS} has unexpected members {extra[:3]} or misses "
                f"{missing[:3]}); run `mitremap train`"
            )
        if sum(m.file_size for m in members) > MAX_ARRAYS_BYTES:
            raise ModelError(f"{where} is corrupt ({ARRAYS} would inflate past 2 GB)")
        with np.load(file, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError as exc:
        raise ModelError(f"{where} has no {ARRAYS}; run `mitremap train`") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise ModelError(f"{where} is corrupt ({ARRAYS}: {exc}); run `mitremap train`") from exc
