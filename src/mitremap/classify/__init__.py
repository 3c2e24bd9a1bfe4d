"""Technique models: the `TechniqueModel` protocol, the default `linear` backend, loading."""

from __future__ import annotations

from mitremap.classify.base import DocumentScores, ModelCard, TechniqueModel, load_model

__all__ = ["DocumentScores", "ModelCard", "TechniqueModel", "load_model"]
