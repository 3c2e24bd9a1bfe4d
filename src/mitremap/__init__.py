"""MitreMap: map threat reports to MITRE ATT&CK techniques, with evidence, explanations and IoCs.

The public API is imported lazily so that `import mitremap` (and the CLI's start-up) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AttackKB",
    "Indicator",
    "MitreMap",
    "MitreMapError",
    "__version__",
    "extract_iocs",
    "load_attack",
]

_LAZY = {
    "AttackKB": "mitremap.attack",
    "load_attack": "mitremap.attack",
    "MitreMapError": "mitremap.errors",
    "MitreMap": "mitremap.analysis",
    "extract_iocs": "mitremap.iocs",
    "Indicator": "mitremap.iocs",
}

if TYPE_CHECKING:  # pragma: no cover
    from mitremap.analysis import MitreMap
    from mitremap.attack import AttackKB, load_attack
    from mitremap.errors import MitreMapError
    from mitremap.iocs import Indicator, extract_iocs


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mitremap' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
