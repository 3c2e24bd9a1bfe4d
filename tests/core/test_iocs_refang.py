"""Refanging: every defanging style, no over-refanging, and offsets into the original text."""

from __future__ import annotations

import pytest

from mitremap.iocs import extract_iocs, refang
from mitremap.iocs.refanging import refang_map


@pytest.mark.parametrize(
    ("defanged", "fanged"),
    [
        ("hxxp://evil.com", "http://evil.com"),
        ("hXXps://evil.com", "https://evil.com"),
        ("HXXP://evil.com", "http://evil.com"),
        ("h**p://evil.com", "http://evil.com"),
        ("fxp://files.evil.com", "ftp://files.evil.com"),
        ("evil[.]com", "evil.com"),
        ("evil(.)com", "evil.com"),
        ("evil{.}com", "evil.com"),
        ("evil[dot]com", "evil.com"),
        ("evil(dot)com", "evil.com"),
        ("evil[DOT]com", "evil.com"),
        ("evil dot com", "evil.com"),
        ("evil [.] com", "evil.com"),
        ("http[:]//evil.com", "http://evil.com"),
        ("hxxp[://]evil.com", "http://evil.com"),
        ("http:\\\\evil.com", "http://evil.com"),
        ("john[@]evil.com", "john@evil.com"),
        ("john[at]evil.com", "john@evil.com"),
        ("john(at)evil.com", "john@evil.com"),
        ("john [at] evil [dot] com", "john@evil.com"),
        ("john at evil dot com", "john@evil.com"),
        ("http://evil.com[/]path", "http://evil.com/path"),
        ("192.168[.]1.1", "192.168.1.1"),
        ("hxxps[:]//www[.]evil(.)co[dot]uk[/]a", "https://www.evil.co.uk/a"),
        ("http://example[.com/", "http://example.com/"),
        ("http://[example.com", "http://example.com"),
        ("http://example,com/", "http://example.com/"),
    ],
)
def test_every_defanging_style(defanged: str, fanged: str) -> None:
    assert refang(defanged) == fanged


@pytest.mark.parametrize(
    "text",
    [
        "ciadotgov4sjwlzihbbgxnqg3xiyrg7so2r2o3lt5wz5ypk4sxyjstad.onion",  # "dot" inside a name
        "w3dot.info and dotnet.microsoft.com",
        "the dot com bubble burst",
        "the leader dot in the file name",
        "meet at noon dot",
        "a list (a, b) and [1] and {x}",
        "http://[2001:db8::1]:80/path",
        "C:\\Windows\\System32",
    ],
)
def test_no_over_refanging(text: str) -> None:
    assert refang(text) == text


def test_refanged_ip_is_one_ipv4_with_the_defanged_raw() -> None:
    text = "C2 at 192.168[.]1.1 today"
    (indicator,) = extract_iocs(text)
    assert (indicator.type, indicator.value, indicator.raw) == (
        "ipv4",
        "192.168.1.1",
        "192.168[.]1.1",
    )
    assert text[indicator.start : indicator.end] == indicator.raw


def test_offsets_point_into_the_original_not_the_refanged_copy() -> None:
    text = "x hxxps[:]//evil[.]com/a[.]php y john [at] evil[.]ru z 10[.]0[.]0[.]1 w"
    indicators = extract_iocs(text)
    assert [(i.type, i.value) for i in indicators] == [
        ("url", "https://evil.com/a.php"),
        ("email", "john@evil.ru"),
        ("ipv4", "10.0.0.1"),
    ]
    for i in indicators:
        assert text[i.start : i.end] == i.raw
    assert [i.raw for i in indicators] == [
        "hxxps[:]//evil[.]com/a[.]php",
        "john [at] evil[.]ru",
        "10[.]0[.]0[.]1",
    ]


def test_span_mapping_inside_and_around_edits() -> None:
    refanged = refang_map("ab[.]cd hxxp://e")
    assert refanged.text == "ab.cd http://e"
    assert refanged.original_span(0, 5) == (0, 7)  # "ab.cd" <- "ab[.]cd"
    assert refanged.original_span(2, 3) == (2, 5)  # "." <- "[.]"
    assert refanged.original_span(3, 5) == (5, 7)
    assert refanged.original_span(6, 14) == (8, 16)  # "http://e" <- "hxxp://e"
    assert refanged.has_edit(0, 5) and not refanged.has_edit(3, 5)


def test_a_defanged_trailing_dot_is_kept_a_written_one_is_not() -> None:
    assert {i.value for i in extract_iocs("see http://example[.]com/[.]")} == {
        "http://example.com/."
    }
    assert {i.value for i in extract_iocs("see http://example.com/a.")} == {"http://example.com/a"}


def test_text_without_markers_is_returned_as_is() -> None:
    text = "Nothing defanged here (really)."
    refanged = refang_map(text)
    assert refanged.text is text
    assert refanged.original_span(3, 9) == (3, 9)
