"""Indicators of compromise: find them in report text, refanged, validated, with offsets.

>>> from mitremap.iocs import extract_iocs
>>> [(i.type, i.value) for i in extract_iocs("C2 at hxxp://evil[.]com/gate.php")]
[('url', 'http://evil.com/gate.php')]
"""

from __future__ import annotations

from mitremap.iocs.extract import IocExtractor, extract_iocs
from mitremap.iocs.model import IOC_TYPES, Indicator
from mitremap.iocs.refanging import refang

__all__ = ["IOC_TYPES", "Indicator", "IocExtractor", "extract_iocs", "refang"]
