"""The sentence splitter and windows: threat-report cases, offsets, junk, and TRAM reports."""

from __future__ import annotations

import itertools
import json
import random
import re
import signal
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mitremap.documents import Sentence, Window, make_windows, split_sentences
from mitremap.documents.segment import MAX_SENTENCE_CHARS


def texts(text: str) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text)]


CASES = [
    pytest.param(
        "The implant beacons to 192.168.10.5 every hour. It then sleeps.",
        ["The implant beacons to 192.168.10.5 every hour.", "It then sleeps."],
        id="ip",
    ),
    pytest.param(
        "It contacts update.microsoft-cdn.com over HTTPS. Then it waits.",
        ["It contacts update.microsoft-cdn.com over HTTPS.", "Then it waits."],
        id="domain",
    ),
    pytest.param(
        "The user opened invoice.pdf.exe from the mail. It dropped a DLL.",
        ["The user opened invoice.pdf.exe from the mail.", "It dropped a DLL."],
        id="file-name",
    ),
    pytest.param(
        "Version v1.2.3 of the loader was seen. A later 2.0.1 build added TLS.",
        ["Version v1.2.3 of the loader was seen.", "A later 2.0.1 build added TLS."],
        id="versions",
    ),
    pytest.param(
        "The hash is d41d8cd98f00b204e9800998ecf8427e. It matches a known sample.",
        ["The hash is d41d8cd98f00b204e9800998ecf8427e.", "It matches a known sample."],
        id="hash",
    ),
    pytest.param(
        "Attackers use LOLBins, e.g. Certutil, to download files. They also use rundll32.",
        ["Attackers use LOLBins, e.g. Certutil, to download files.", "They also use rundll32."],
        id="e.g.",
    ),
    pytest.param(
        "Some tools, i.e. Mimikatz, dump credentials. Others do not.",
        ["Some tools, i.e. Mimikatz, dump credentials.", "Others do not."],
        id="i.e.",
    ),
    pytest.param(
        "Cobalt Strike vs. Sliver is a common comparison. Both are C2 frameworks.",
        ["Cobalt Strike vs. Sliver is a common comparison.", "Both are C2 frameworks."],
        id="vs.",
    ),
    pytest.param(
        "They stole passwords, cookies, etc. from the browser. Then they left.",
        ["They stole passwords, cookies, etc. from the browser.", "Then they left."],
        id="etc.",
    ),
    pytest.param(
        "Acme Inc. reported the breach. Contoso Corp. was also hit.",
        ["Acme Inc. reported the breach.", "Contoso Corp. was also hit."],
        id="Inc.-Corp.",
    ),
    pytest.param(
        "Mr. Smith saw it in Fig. 3 of the report. See No. 5 too.",
        ["Mr. Smith saw it in Fig. 3 of the report.", "See No. 5 too."],
        id="Mr.-Fig.-No.",
    ),
    pytest.param(
        "Was data stolen? The answer was no. Nothing left the network.",
        ["Was data stolen?", "The answer was no.", "Nothing left the network."],
        id="no.-as-a-word",
    ),
    pytest.param(
        "The script runs `cmd.exe /c whoami. && net user` on start. It then exits.",
        ["The script runs `cmd.exe /c whoami. && net user` on start.", "It then exits."],
        id="inline-code",
    ),
    pytest.param(
        "Run `Get-Process. Stop-Process` to test. Done.",
        ["Run `Get-Process. Stop-Process` to test.", "Done."],
        id="inline-code-capital",
    ),
    pytest.param(
        "The malware does the following:\n- Collects system info\n- Takes screenshots\n"
        "* Exfiltrates data\n• Deletes itself",
        [
            "The malware does the following:",
            "- Collects system info",
            "- Takes screenshots",
            "* Exfiltrates data",
            "• Deletes itself",
        ],
        id="bullets",
    ),
    pytest.param(
        "Steps:\n1. Phishing email\n2. Macro execution\n3) Persistence via Run key",
        ["Steps:", "1. Phishing email", "2. Macro execution", "3) Persistence via Run key"],
        id="numbered",
    ),
    pytest.param(
        "Initial Access\nThe actor sent spearphishing emails with malicious attachments.",
        ["Initial Access", "The actor sent spearphishing emails with malicious attachments."],
        id="heading",
    ),
    pytest.param(
        "## Persistence\nThe loader adds a Run key.",
        ["## Persistence", "The loader adds a Run key."],
        id="markdown-heading",
    ),
    pytest.param(
        "The loader decrypts the payload and\ninjects it into explorer.exe using\n"
        "process hollowing. It then deletes itself.",
        [
            "The loader decrypts the payload and\ninjects it into explorer.exe using\n"
            "process hollowing.",
            "It then deletes itself.",
        ],
        id="line-broken",
    ),
    pytest.param(
        "First paragraph without a period\n\nSecond paragraph here.",
        ["First paragraph without a period", "Second paragraph here."],
        id="blank-line",
    ),
    pytest.param(
        "It writes to C:\\Users\\Public\\svc.dll. Then it loads it.",
        ["It writes to C:\\Users\\Public\\svc.dll.", "Then it loads it."],
        id="path-at-end",
    ),
    pytest.param(
        "Was it APT29? Nobody knows! The team kept looking.",
        ["Was it APT29?", "Nobody knows!", "The team kept looking."],
        id="question-exclamation",
    ),
    pytest.param(
        "The domain hxxp://evil[.]com/payload.bin served the dropper. Blocked now.",
        ["The domain hxxp://evil[.]com/payload.bin served the dropper.", "Blocked now."],
        id="defanged",
    ),
    pytest.param(
        'The note said "pay now." Then the files were encrypted.',
        ['The note said "pay now."', "Then the files were encrypted."],
        id="closing-quote",
    ),
    pytest.param(
        "The dropper starts the service. cmd.exe then runs the batch file.",
        ["The dropper starts the service.", "cmd.exe then runs the batch file."],
        id="lowercase-tool-starts-sentence",
    ),
    pytest.param(
        "Written by J. R. Smith and the U.S. Government team. Published in 2023.",
        ["Written by J. R. Smith and the U.S. Government team.", "Published in 2023."],
        id="initials",
    ),
    pytest.param(
        "Hashes:\nd41d8cd98f00b204e9800998ecf8427e\n9e107d9d372bb6826bd81d3542a419d6",
        ["Hashes:", "d41d8cd98f00b204e9800998ecf8427e", "9e107d9d372bb6826bd81d3542a419d6"],
        id="indicator-lines",
    ),
    pytest.param(
        "Commands:\n```\ncd C:\\Temp. Next\nwhoami /all\n```\nThat is all.",
        ["Commands:", "```", "cd C:\\Temp. Next", "whoami /all", "```", "That is all."],
        id="code-fence",
    ),
    pytest.param(
        "- The malware collects system information and sends it\n  to the C2 server every hour."
        "\n- It takes screenshots.",
        [
            "- The malware collects system information and sends it\n  to the C2 server every hour.",
            "- It takes screenshots.",
        ],
        id="wrapped-bullet",
    ),
    pytest.param(
        "(a) first item\n(b) second item\ni. roman item\nii. another one",
        ["(a) first item", "(b) second item", "i. roman item", "ii. another one"],
        id="lettered-and-roman-lists",
    ),
    pytest.param(
        "| Hash | Type |\n|---|---|\n| abc | MD5 |\nThe table lists hashes.",
        ["| Hash | Type |", "|---|---|", "| abc | MD5 |", "The table lists hashes."],
        id="markdown-table",
    ),
    pytest.param(
        "The loader unpacks itself (see Figure 2.) The payload then runs. It waited\u2026 Then "
        "it struck.",
        [
            "The loader unpacks itself (see Figure 2.)",
            "The payload then runs.",
            "It waited\u2026",
            "Then it struck.",
        ],
        id="bracket-and-ellipsis",
    ),
    pytest.param(
        "See https://example.com/report.html. In 2023. 42 samples were found.",
        ["See https://example.com/report.html.", "In 2023.", "42 samples were found."],
        id="url-and-number-start",
    ),
    pytest.param(
        "Typical examples are x-content/audio-dvd, x-content/blank-cd or\nx-content/image-dcf. "
        "Matching works.",
        [
            "Typical examples are x-content/audio-dvd, x-content/blank-cd or\nx-content/image-dcf.",
            "Matching works.",
        ],
        id="wrapped-long-token",
    ),
    pytest.param(
        "2.13. Non-regular files\nSometimes it is useful to assign MIME types to other objects.",
        [
            "2.13. Non-regular files",
            "Sometimes it is useful to assign MIME types to other objects.",
        ],
        id="numbered-heading",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_threat_report_cases(text: str, expected: list[str]) -> None:
    assert texts(text) == expected


def test_wrapped_pdf_text_splits_like_unwrapped_text() -> None:
    paragraph = (
        "The threat actor used Mimikatz to dump credentials from LSASS and then moved laterally "
        "with PsExec to the domain controller DC01.corp.local at 10.0.0.5. Once there, the "
        "actor created a scheduled task named Windows Update Check that ran C:\\ProgramData\\"
        "upd.exe every hour. Microsoft Defender was disabled with Set-MpPreference, and the "
        "Volume Shadow Copies were deleted with vssadmin.exe before Conti encrypted the files."
    )
    expected = [" ".join(s.split()) for s in texts(paragraph)]
    assert len(expected) == 3
    for width in (50, 65, 80, 100):
        wrapped = textwrap.fill(paragraph, width=width, break_on_hyphens=False)
        assert [" ".join(s.split()) for s in texts(wrapped)] == expected, width


def test_offsets_are_exact_trimmed_and_ordered() -> None:
    text = "  Title\n\n  First sentence here.   Second one!\n- item one\n\n\n  Last line  \n"
    sentences = split_sentences(text)
    assert [text[s.start : s.end] for s in sentences] == [
        "Title",
        "First sentence here.",
        "Second one!",
        "- item one",
        "Last line",
    ]
    for a, b in itertools.pairwise(sentences):
        assert a.end <= b.start
    for s in sentences:
        assert s.text(text) == text[s.start : s.end].strip() != ""


def test_empty_and_blank_text() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\t\n ") == []
    assert split_sentences("one") == [Sentence(0, 3)]


def test_long_runs_without_punctuation_are_cut_at_whitespace() -> None:
    text = "word " * 1000 + ("d41d8cd98f00b204e9800998ecf8427e\xa0" * 100)
    sentences = split_sentences(text)
    assert len(sentences) > 1
    assert all(s.end - s.start <= MAX_SENTENCE_CHARS for s in sentences)
    assert all(text[s.start : s.end].startswith(("word", "d41d")) for s in sentences)
    assert "".join(text[s.start : s.end] + text[s.end] for s in sentences) == text


@pytest.fixture
def hang_guard():
    """Fail instead of hanging if the splitter ever goes quadratic (not a timing assert)."""

    def fail(*_: object) -> None:
        raise TimeoutError("split_sentences did not finish on 1 MB of junk within 120 s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _random_junk() -> str:
    return "".join(random.Random(0).choice("aB. \n\t`-1:?!\"'()#|") for _ in range(1_000_000))


@pytest.mark.parametrize(
    "make_junk",
    [
        pytest.param(lambda: ". " * 500_000, id="stops"),
        pytest.param(lambda: "12. " * 250_000, id="list-markers"),
        pytest.param(lambda: "`" * 1_000_000, id="backticks"),
        pytest.param(lambda: "a" * 1_000_000, id="one-token"),
        pytest.param(_random_junk, id="random"),
    ],
)
def test_one_megabyte_of_junk_finishes(make_junk: Callable[[], str], hang_guard: None) -> None:
    junk = make_junk()
    sentences = split_sentences(junk)
    assert all(junk[s.start : s.end].strip() == junk[s.start : s.end] != "" for s in sentences)
    make_windows(sentences)


# --- windows ---------------------------------------------------------------------------------


def five() -> list[Sentence]:
    return [Sentence(i * 10, i * 10 + 5) for i in range(5)]


def test_windows_default_is_three_overlapping_as_the_model_reads() -> None:
    windows = make_windows(five())
    assert [len(w.sentences) for w in windows] == [3, 3, 3]
    assert windows[0] == Window(0, 25, tuple(five()[:3]))
    assert windows[2] == Window(20, 45, tuple(five()[2:]))
    windows = make_windows(five(), stride=3)
    assert [(w.start, w.end) for w in windows] == [(0, 25), (30, 45)]


def test_window_ranges_at_the_edges() -> None:
    from mitremap.documents import window_ranges

    assert window_ranges(6, 3, 2) == [(0, 3), (2, 5), (4, 6)]  # the last window may be short
    assert window_ranges(6, 3, 1) == [(0, 3), (1, 4), (2, 5), (3, 6)]
    assert window_ranges(2, 3, 1) == [(0, 2)]  # fewer sentences than the window
    assert window_ranges(0, 3, 1) == []
    assert window_ranges(7, 3, 3) == [(0, 3), (3, 6), (6, 7)]


def test_windows_with_stride_overlap_and_reach_the_end() -> None:
    windows = make_windows(five(), size=3, stride=1)
    assert [(w.start, w.end) for w in windows] == [(0, 25), (10, 35), (20, 45)]
    windows = make_windows(five(), size=2, stride=1)
    assert len(windows) == 4 and windows[-1].end == 45


def test_windows_size_one_and_size_larger_than_text() -> None:
    assert [w.sentences for w in make_windows(five(), size=1)] == [(s,) for s in five()]
    assert make_windows(five(), size=10) == [Window(0, 45, tuple(five()))]
    assert make_windows([]) == []


@pytest.mark.parametrize(("size", "stride"), [(0, 1), (3, 0), (2, 3)])
def test_windows_reject_bad_sizes(size: int, stride: int) -> None:
    with pytest.raises(ValueError):
        make_windows(five(), size=size, stride=stride)


def test_windows_map_back_to_text() -> None:
    text = "One is here. Two is here. Three is here. Four is here."
    windows = make_windows(split_sentences(text), size=2, stride=2)
    assert [w.text(text) for w in windows] == [
        "One is here. Two is here.",
        "Three is here. Four is here.",
    ]


# --- real reports ----------------------------------------------------------------------------

_IOC = re.compile(
    r"\b\d{1,3}(?:\.\d{1,3}){3}\b"  # IPv4
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:exe|dll|pdf|docx?|xlsx?|zip|ps1|vbs|js|bat|lnk|sys|bin|dat)\b"
    r"|\b[\w-]+(?:\.[\w-]+)+\.(?:com|net|org|io|ru|cn|info|xyz)\b"  # domains
    r"|\b[0-9a-fA-F]{32,64}\b",  # hashes
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def tram_reports(shared_data: Path) -> list[dict]:
    path = shared_data / "tram" / "reports.jsonl"
    if not path.is_file():
        pytest.skip(f"TRAM reports not found at {path}")
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


@pytest.mark.integration
def test_tram_no_boundary_inside_indicators(tram_reports: list[dict]) -> None:
    checked = 0
    for report in tram_reports:
        text = report["text"]
        sentences = split_sentences(text)
        inner = {s.start for s in sentences} | {s.end for s in sentences}
        for match in _IOC.finditer(text):
            checked += 1
            cut = [p for p in inner if match.start() < p < match.end()]
            assert not cut, (report["id"], match.group())
    assert checked > 2000


@pytest.mark.integration
def test_tram_annotated_spans_rarely_cross_windows(tram_reports: list[dict]) -> None:
    spans = crossing_sentence = crossing_windows = 0
    for report in tram_reports:
        sentences = split_sentences(report["text"])
        sentence_ends = [s.end for s in sentences[:-1]]
        window_ends = [w.end for w in make_windows(sentences)[:-1]]
        for span in report["meta"]["spans"]:
            spans += 1
            inside = [end for end in sentence_ends if span["start"] < end < span["end"] - 1]
            crossing_sentence += bool(inside)
            crossing_windows += sum(span["start"] < e < span["end"] - 1 for e in window_ends) > 1
    assert spans > 3000
    # Annotators mark one sentence (or one list) per span: measured 39 of 3,999 cross a sentence
    # boundary (mostly "the following:" plus its list), 4 cross more than one window boundary.
    assert crossing_sentence / spans < 0.02
    assert crossing_windows / spans < 0.005


# ---- long texts: split in pieces, lazily, within a deadline (issue 22) ---------------------

PARAGRAPHS = (
    "The loader created a scheduled task. It ran every hour (see Fig. 3 for the timeline).\n"
    "Wrapped lines of a PDF go on here and end with a full stop.\n\n"
    "- a list item\n- another item with cmd.exe\n\n"
    "```\ncode line one\n\ncode line two\n```\n\n"
)


def test_a_long_text_is_split_in_pieces_with_the_same_sentences(monkeypatch) -> None:
    from mitremap.documents import segment

    text = PARAGRAPHS * 40
    whole = split_sentences(text)
    monkeypatch.setattr(segment, "CHUNK_CHARS", 1_000)
    pieces = list(segment._pieces(text))
    assert len(pieces) > 5 and pieces[0][0] == 0 and pieces[-1][1] == len(text)
    assert all(a == b for (_, a), (b, _) in itertools.pairwise(pieces))  # contiguous
    assert all(text[end - 2 : end] == "\n\n" for _, end in pieces[:-1])  # after blank lines
    assert split_sentences(text) == whole


def test_sentences_are_found_lazily_one_piece_at_a_time(monkeypatch) -> None:
    from mitremap.documents import segment

    monkeypatch.setattr(segment, "CHUNK_CHARS", 1_000)
    calls = []
    split = segment._split

    def counted(text, deadline):
        calls.append(1)
        return split(text, deadline)

    monkeypatch.setattr(segment, "_split", counted)
    first = next(segment.iter_sentences("a\n\n" * 100_000))
    assert first == Sentence(0, 1)
    assert len(calls) == 1  # the other 150 pieces were never split


def test_a_piece_without_blank_lines_is_cut_at_a_line_break_or_a_space(monkeypatch) -> None:
    from mitremap.documents import segment

    monkeypatch.setattr(segment, "CHUNK_CHARS", 100)
    lines = "word " * 30 + "\n" + "word " * 30 + "\n"
    assert _piece_texts(segment, lines * 3)[0].endswith("\n")
    spaces = "word " * 200
    assert all(piece.endswith(" ") for piece in _piece_texts(segment, spaces)[:-1])


def _piece_texts(segment, text: str) -> list[str]:
    return [text[a:b] for a, b in segment._pieces(text)]


def test_splitting_stops_at_the_deadline() -> None:
    from mitremap.deadline import Deadline
    from mitremap.errors import TimeLimitError

    with pytest.raises(TimeLimitError, match="splitting sentences"):
        split_sentences("a\n\n" * 1_000, deadline=Deadline.after(1e-9))
