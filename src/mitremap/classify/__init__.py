"""Technique models at inference: the `TechniqueModel` protocol, the default `linear` backend,
loading. Training them is `mitremap.training`'s job."""

from __future__ import annotations

from mitremap.classify.base import DocumentScores, ModelCard, TechniqueModel
from mitremap.classify.load import load_model

__all__ = ["DocumentScores", "ModelCard", "TechniqueModel", "load_model"]
