"""The extractor's parts one by one: the scanner's moves, the overlap resolver, the offset map
of the refanged text, the list of passes, and the IoC-dense benchmark input."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from mitremap.iocs import IOC_TYPES, IocExtractor, extract, extract_iocs
from mitremap.iocs.refanging import refang_map
from mitremap.iocs.resolver import resolve
from mitremap.iocs.scanner import LABEL_CHARS, find_all, line_continues, trim_end, walk_left

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


# --- scanner -----------------------------------------------------------------------------------


def test_find_all_gives_every_position_of_a_literal_even_overlapping() -> None:
    assert list(find_all("a://b://c", "://")) == [1, 5]
    assert list(find_all("aaaa", "aa")) == [0, 1, 2]
    assert list(find_all("none here", "://")) == []


def test_walk_left_stops_at_other_characters_and_at_its_limit() -> None:
    text = "see evil-host.example"
    dot = text.index(".")
    assert walk_left(text, dot, LABEL_CHARS, 64) == text.index("evil")
    assert walk_left(text, dot, LABEL_CHARS, 3) == dot - 3
    assert walk_left(text, 0, LABEL_CHARS, 64) == 0


def test_trim_end_drops_sentence_punctuation_and_unopened_closers() -> None:
    plain = refang_map("x")
    text = "(see evil.com/a).,"
    assert text[5 : trim_end(text, 5, len(text), plain)] == "evil.com/a"
    balanced = "evil.com/wiki/A_(B)"
    assert trim_end(balanced, 0, len(balanced), plain) == len(balanced)


def test_trim_end_keeps_a_dot_that_was_defanged() -> None:
    refanged = refang_map("evil[.]")
    assert refanged.text == "evil."
    assert trim_end(refanged.text, 0, 5, refanged) == 5
    assert trim_end("evil.", 0, 5, refang_map("evil.")) == 4


def test_line_continues_only_with_a_word_character() -> None:
    assert line_continues("a-\nb", 2) == 3
    assert line_continues("a-\r\nb", 2) == 4
    assert line_continues("a-\n b", 2) is None
    assert line_continues("a- b", 2) is None


# --- resolver ----------------------------------------------------------------------------------


def test_resolver_keeps_the_higher_priority_type() -> None:
    url = (0, 26, "url", "http://evil.com/x", False)
    host = (7, 15, "domain", "evil.com", False)
    assert resolve([host, url]) == [url]


def test_resolver_keeps_the_longer_candidate_of_the_same_priority_then_the_earlier() -> None:
    short = (0, 8, "domain", "evil.com", False)
    long = (4, 20, "file_name", "x", False)
    assert resolve([short, long]) == [long]
    first, second = (0, 10, "ipv4", "a", False), (5, 15, "ipv4", "b", False)
    assert resolve([second, first]) == [first]


def test_resolver_keeps_ids_and_hashes_nested_in_a_url() -> None:
    url = (0, 60, "url", "https://nvd.nist.gov/vuln/detail/CVE-2021-44228", False)
    cve = (40, 54, "cve", "CVE-2021-44228", False)
    host = (8, 20, "domain", "nvd.nist.gov", False)
    assert resolve([host, cve, url]) == [url, cve]


def test_resolver_resolves_a_chain_of_overlaps_as_one_cluster() -> None:
    # a overlaps b, b overlaps c, a does not overlap c: b (the best) wins, then a and c clash
    # only with b.
    a = (0, 10, "domain", "a", False)
    b = (8, 30, "windows_path", "b", False)
    c = (28, 40, "domain", "c", False)
    d = (50, 60, "ipv4", "d", False)
    assert resolve([c, d, a, b]) == [b, d]


def test_resolver_leaves_candidates_that_overlap_nothing_in_text_order() -> None:
    found = [(30, 35, "ipv4", "c", False), (0, 5, "md5", "a", False), (10, 20, "cve", "b", False)]
    assert resolve(found) == sorted(found)
    assert resolve([]) == []


# --- the offset map ------------------------------------------------------------------------------


def test_bulk_offset_mapping_matches_span_by_span_mapping() -> None:
    rng = random.Random(7)
    pieces = ["evil", "[.]", "com", " ", "hxxp", "[:]//", "a", "(dot)", "b", " [.] ", "x", "\n"]
    for _ in range(200):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        refanged = refang_map(text)
        size = len(refanged.text)
        spans = [tuple(sorted(rng.randint(0, size) for _ in range(2))) for _ in range(20)]
        starts = refanged.original_starts([start for start, _ in spans])
        ends = refanged.original_ends([end for _, end in spans])
        assert list(zip(starts, ends, strict=True)) == [refanged.original_span(*s) for s in spans]


# --- the passes ----------------------------------------------------------------------------------


def test_every_pass_is_named_for_what_it_finds() -> None:
    names = [find.__name__ for find in extract.PASSES]
    assert len(names) == len(set(names)) >= 10
    assert all(name.startswith("find_") for name in names)


def test_the_order_of_the_passes_does_not_change_the_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = (
        "C2 hxxps://evil[.]com/a.php (185.10.68.1), C:\\Users\\x\\a.exe, /tmp/.x/run.sh, "
        "CVE-2024-3400, T1059.001, ja3 72a589da586844d7f0818ce684948eea, mail a[@]b[.]net"
    )
    expected = extract_iocs(text)
    assert len(expected) == 8
    monkeypatch.setattr(extract, "PASSES", tuple(reversed(extract.PASSES)))
    assert IocExtractor().extract(text) == expected


def test_every_candidate_maps_back_to_what_the_text_says() -> None:
    text = "hxxp://a[.]b[.]com/x and evil[.]com, 8.8.8[.]8 and john[@]mail[.]ru"
    found = extract_iocs(text)
    assert len(found) >= 4
    for indicator in found:
        assert text[indicator.start : indicator.end] == indicator.raw
        assert indicator.type in IOC_TYPES


# --- the IoC-dense benchmark input ---------------------------------------------------------------


@pytest.fixture
def bench_common(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the benchmarks are scripts, not a package
    import bench_iocs_common

    yield bench_iocs_common
    sys.modules.pop("bench_iocs_common", None)


def test_dense_text_is_dense_deterministic_and_new_per_seed(bench_common) -> None:
    text = bench_common.dense_text(50_000, seed=1)
    assert len(text) == 50_000
    assert text == bench_common.dense_text(50_000, seed=1)
    assert text != bench_common.dense_text(50_000, seed=2)
    found = extract_iocs(text)
    kinds = {i.type for i in found}
    assert len(found) > 1000  # an appendix: more than 20 indicators per kilobyte
    assert {"sha256", "md5", "sha1", "url", "domain", "ipv4", "windows_path"} <= kinds
    assert sum(i.raw != i.value for i in found) > 200  # much of it defanged
