"""Documents whose cost is in their shape (issue 22): small versions of each hostile shape, read
within their budgets, keeping what was read and saying so; and the deadline that stops the
work. The full-size ones are rows of `benchmarks/bench_hostile.py`."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from mitremap.deadline import Deadline
from mitremap.documents import Budget, DocumentError, read_bytes, read_file
from mitremap.errors import TimeLimitError
from tests import hostile


def one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(DocumentError) as raised:
        call(*args, **kwargs)
    message = str(raised.value)
    assert "\n" not in message and len(message) < 300, message
    return message


def peak_mb(call, *args, **kwargs):
    """What `call` returns, and the most memory Python objects took while it ran."""
    tracemalloc.start()
    try:
        result = call(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


# ---- Word -------------------------------------------------------------------------------


def test_millions_of_tiny_paragraphs_stop_at_the_element_budget_keeping_the_text(tmp_path):
    path = hostile.docx_tiny_paragraphs(tmp_path / "tiny.docx", 400_000)
    document = read_file(path, budget=Budget(elements=30_000))
    assert document.text.startswith("a\n\na\n\na")
    assert 9_000 <= document.text.count("a") <= 10_000  # 3 elements a paragraph
    assert document.warnings == (
        "only the start of the Word document was read: it has more than 30,000 XML elements",
    )


def test_empty_paragraphs_cost_no_memory_and_are_a_clean_error(tmp_path):
    path = hostile.docx_empty_paragraphs(tmp_path / "empty.docx", 1_200_000)  # 200,000 of them
    message, peak = peak_mb(one_line_error, read_bytes, path.read_bytes(), name="empty.docx")
    assert message.endswith("the Word document has no text")
    assert peak < 5  # no element is kept once read (an element tree held ~40 MB here)
    message = one_line_error(read_file, path, budget=Budget(elements=1_000))
    assert "no text (reading stopped early: it has more than 1,000 XML elements)" in message


def test_unknown_elements_at_body_level_are_passed_over_in_little_memory(tmp_path):
    path = hostile.docx_unknown_elements(tmp_path / "unknown.docx", 2_000_000)
    document, peak = peak_mb(read_bytes, path.read_bytes())
    assert document.text == "The end."
    assert document.warnings == ()
    assert peak < 5


def test_one_huge_table_row_is_read_cell_by_cell_and_kept_when_cut(tmp_path):
    path = hostile.docx_huge_table_row(tmp_path / "row.docx", 1_000_000)
    document, peak = peak_mb(read_bytes, path.read_bytes())
    assert document.text == "a"  # 20,000 cells saying "a": a merged cell is listed once
    assert peak < 5
    cut = read_file(path, budget=Budget(elements=1_000))
    assert cut.text == "a"  # the row was open when reading stopped: what it had is kept
    assert "more than 1,000 XML elements" in cut.warnings[0]


def test_deep_nesting_stops_at_the_depth_budget(tmp_path):
    path = hostile.docx_deep_nesting(tmp_path / "deep.docx", 100_000)
    started = time.perf_counter()
    message = one_line_error(read_file, path)
    assert "no text (reading stopped early: it nests elements more than 256 deep)" in message
    assert time.perf_counter() - started < 2
    shallow = hostile.docx_deep_nesting(tmp_path / "shallow.docx", 100)
    assert read_file(shallow).text == "a"


def test_a_docx_with_a_dtd_is_refused(tmp_path):
    def parts():
        yield b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">]>'
        yield hostile.HEAD + b"<w:p><w:r><w:t>&a;</w:t></w:r></w:p>" + hostile.TAIL

    path = hostile.write_docx(tmp_path / "dtd.docx", parts)
    assert "declares a DTD" in one_line_error(read_file, path)


def test_the_deadline_stops_a_docx_being_read(tmp_path):
    path = hostile.docx_tiny_paragraphs(tmp_path / "tiny.docx", 400_000)
    with pytest.raises(TimeLimitError, match="reading the Word document"):
        read_file(path, deadline=Deadline.after(1e-9))


# ---- HTML -------------------------------------------------------------------------------


def test_a_page_too_big_for_trafilatura_is_read_as_plain_text_with_a_note(tmp_path):
    pytest.importorskip("trafilatura")
    path = hostile.html_table(tmp_path / "table.html", 20_000)  # ~460 rows, ~1,900 elements
    document = read_file(path, budget=Budget(rich_html_elements=1_000))
    assert document.text.startswith("cell | 1 | x\n\ncell | 1 | x")
    assert document.title == "t"
    assert document.warnings == (
        "the HTML page is very large: read as plain text (navigation and footers not told apart)",
    )
    cut = read_file(path, budget=Budget(rich_html_elements=1_000, elements=500))
    assert 0 < cut.text.count("cell") < 200
    assert "up to where it has more than 500 elements" in cut.warnings[0]
    assert read_file(path).warnings == ()  # within the budget: trafilatura, no note


def test_deeply_nested_html_is_read_as_plain_text_up_to_the_depth_budget(tmp_path):
    pytest.importorskip("trafilatura")
    markup = "<html><body><p>Top text.</p>" + "<div>" * 300 + "deep" + "</div>" * 300 + "</body>"
    document = read_bytes(markup.encode(), name="deep.html", budget=Budget(depth=50))
    assert document.text == "Top text."
    assert "nests elements more than 50 deep" in document.warnings[0]


def test_the_deadline_stops_an_html_page_being_read(tmp_path):
    pytest.importorskip("trafilatura")
    path = hostile.html_table(tmp_path / "table.html", 20_000)
    with pytest.raises(TimeLimitError, match="reading the HTML page"):
        read_file(path, deadline=Deadline.after(1e-9))


# ---- PDF --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_pdf(tmp_path_factory):
    """20 pages sharing one 100 KB content stream (the issue's PDF is 1,000 and 5 MB): 3,846
    text operations and 69,228 characters a page."""
    pytest.importorskip("pypdf")
    folder = tmp_path_factory.mktemp("pdf")
    return hostile.pdf_shared_stream(folder / "shared.pdf", 20, 100_000)


@pytest.fixture(scope="module")
def slow_pdf(tmp_path_factory):
    """One page whose text takes pypdf many seconds (a 2 MB stream of text operators)."""
    pytest.importorskip("pypdf")
    folder = tmp_path_factory.mktemp("pdf")
    return hostile.pdf_shared_stream(folder / "slow.pdf", 1, 2_000_000)


UNBOUNDED = Budget(operations=10**9, text_operations=10**9, page_chars=10**9, text_chars=10**9)


def test_a_shared_content_stream_is_counted_on_every_page(shared_pdf):
    document = read_file(shared_pdf, budget=Budget(content_bytes=2**20))
    assert document.text.startswith("abcdefgh ijklmnop\nabcdefgh ijklmnop")
    assert document.text.count("abcdefgh") == 10 * 3_846
    assert document.warnings == (
        "only 10 of 20 PDF pages were read: its content streams pass 1 MB "
        "(a stream shared by pages counted on each)",
    )


def test_pdf_operations_are_counted_as_they_run(shared_pdf):
    document = read_file(shared_pdf, budget=Budget(text_operations=10_000))
    assert document.warnings == (
        "only 3 of 20 PDF pages were read: its pages show text more than 10,000 times",
    )
    assert document.text.count("abcdefgh") == 10_000  # the third page's start is kept


def test_a_page_past_its_text_budget_keeps_its_start(shared_pdf):
    document = read_file(shared_pdf, budget=Budget(page_chars=1_000, pages=3))
    assert document.text.count("abcdefgh") == 3 * 56  # 1,000 characters a page, 3 pages
    assert document.warnings == (
        "PDF page(s) 1-3 hold more than 1,000 characters each: the rest of those pages was "
        "left out",
        "only the first 3 of 20 PDF pages were read",
    )


def test_pdf_reading_is_killed_at_the_deadline(slow_pdf):
    psutil = pytest.importorskip("psutil")
    started = time.perf_counter()
    with pytest.raises(TimeLimitError, match="reading the PDF"):
        read_file(slow_pdf, deadline=Deadline.after(1.0), budget=UNBOUNDED)
    assert time.perf_counter() - started < 2.5
    readers = [
        child
        for child in psutil.Process().children(recursive=True)
        if "mitremap.documents.pdf" in " ".join(child.cmdline())
    ]
    assert readers == []  # killed and reaped, not left running


@pytest.mark.slow
def test_pdf_reading_has_a_cpu_limit_of_its_own(slow_pdf):
    budget = Budget(
        operations=10**9, text_operations=10**9, page_chars=10**9, text_chars=10**9, child_cpu_s=1
    )
    message = one_line_error(read_file, slow_pdf, budget=budget)
    assert "reading the PDF took more than 1 s of CPU time or 1024 MB of memory: refused" in message


def test_pdf_reading_has_a_memory_limit_of_its_own(slow_pdf):
    message = one_line_error(read_file, slow_pdf, budget=Budget(child_memory_bytes=80 * 2**20))
    assert message.endswith("reading the PDF needs more than 80 MB of memory: refused")
