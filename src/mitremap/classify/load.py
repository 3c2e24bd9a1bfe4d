"""Loading a saved model of any backend: the manifest names the backend, the backend checks
its arrays. Kept apart from `base` so that the backends import `base` and this imports them,
with no cycle."""

from __future__ import annotations

import os

from mitremap.classify.base import TechniqueModel, read_arrays, read_manifest
from mitremap.errors import ModelError


def load_model(path: str | os.PathLike[str]) -> TechniqueModel:
    """Load a saved model of any backend from its folder."""
    manifest = read_manifest(path)
    backend = manifest.get("backend")
    if backend == "linear":
        from mitremap.classify.linear import LinearModel

        arrays = read_arrays(path, LinearModel.array_names(manifest))
        return LinearModel.from_saved(manifest, arrays)
    raise ModelError(f"the model at {path} uses the unknown backend {backend!r}")
