"""The issue's bars on the shared IoC test data (ioc-fanger, iocextract, iocsearcher).

Reads $MITREMAP_DATA/ioc (or ../shared/data/ioc beside the repository); skipped when absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mitremap.iocs import extract_iocs, refang

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

# iocextract's valid.txt also lists the output of its telephone-number extractor; MitreMap
# extracts no phone numbers (not an indicator type of the issue), so that line is not expected.
PHONE_NUMBERS = {"456-7890"}
# iocsearcher's file names its types in its own words.
IOCSEARCHER_TYPES = {"registry": "registry_key"}


@pytest.fixture(scope="module")
def ioc_data() -> Path:
    env = os.environ.get("MITREMAP_DATA")
    root = Path(env) if env else REPO.parent / "shared" / "data"
    if not (root / "ioc").is_dir():
        pytest.skip(f"IoC test data not found at {root / 'ioc'}: set MITREMAP_DATA")
    return root / "ioc"


def test_ioc_fanger_pairs_refang_line_for_line(ioc_data: Path) -> None:
    defanged = (ioc_data / "ioc-fanger" / "sample_text_defanged.txt").read_text().splitlines()
    fanged = (ioc_data / "ioc-fanger" / "sample_text_fanged.txt").read_text().splitlines()
    assert len(defanged) == len(fanged) > 1000
    wrong = [
        (n, d, refang(d), f)
        for n, (d, f) in enumerate(zip(defanged, fanged, strict=True), 1)
        if refang(d) != f
    ]
    assert wrong == []


def test_iocextract_valid_values_are_found_as_written(ioc_data: Path) -> None:
    text = (ioc_data / "iocextract" / "input.txt").read_text()
    raws = {i.raw for i in extract_iocs(text)}
    valid = (ioc_data / "iocextract" / "valid.txt").read_text().splitlines()
    expected = [v for v in valid if v and v not in PHONE_NUMBERS]
    assert len(expected) >= 45
    assert [v for v in expected if v not in raws] == []


def test_iocextract_invalid_values_give_nothing(ioc_data: Path) -> None:
    invalid = (ioc_data / "iocextract" / "invalid.txt").read_text().splitlines()
    assert len(invalid) >= 10
    extracted = {line: extract_iocs(line) for line in invalid if line}
    assert {line: found for line, found in extracted.items() if found} == {}


def _iocsearcher_values(ioc_data: Path) -> list[tuple[str, str, str]]:
    """(file, type, value) of each line: "type<TAB or space>value", or a bare onion name."""
    rows = []
    for path in sorted((ioc_data / "iocsearcher").glob("*.ioc")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            if path.name.startswith("onion"):
                kind, value = "onion", line.strip()
            else:
                kind, value = line.split("\t", 1) if "\t" in line else line.split(None, 1)
            rows.append((path.name, IOCSEARCHER_TYPES.get(kind, kind), value.rstrip()))
    return rows


def test_iocsearcher_values_are_recognised_with_the_right_type(ioc_data: Path) -> None:
    rows = _iocsearcher_values(ioc_data)
    assert {name for name, _, _ in rows} == {
        "arn_valid.ioc", "blockchain_valid.ioc", "onion_valid.ioc", "registry_valid.ioc",
    }  # fmt: skip
    assert len(rows) >= 240
    problems: list[tuple[str, str, str, object]] = []
    for name, kind, value in rows:
        # Solana keys carry no checksum: MitreMap asks for the word "solana" close by, which the
        # file's own line gives ("solana <key>").
        text = f"solana {value}" if kind == "solana" else value
        offset = len(text) - len(value)
        hits = [i for i in extract_iocs(text) if i.type == kind and i.start == offset]
        if not hits:
            problems.append((name, kind, value, [(i.type, i.raw) for i in extract_iocs(text)]))
            continue
        # ARNs may hold spaces ("…:application/My App"); in prose an ARN ends at a space.
        whole = value.split()[0] if kind == "arn" else value
        if hits[0].raw != whole:
            problems.append((name, kind, value, hits[0].raw))
    assert problems == []


def test_iocsearcher_values_are_normalised(ioc_data: Path) -> None:
    values = _iocsearcher_values(ioc_data)
    assert values
    for _, kind, value in values:
        (indicator,) = (i for i in extract_iocs(f"solana {value}") if i.type == kind)
        if kind == "ethereum":
            assert indicator.value == value.lower()
        elif kind == "onion":
            assert indicator.value == value + ".onion"
        elif kind == "registry_key":
            assert indicator.value.startswith("HKEY_")
