"""HTML text: the page's main text via trafilatura, or, for a page too big for it, its plain text.

trafilatura finds the article among navigation, footers and ads, at ~60 µs an element: a 10 MB
table of short cells (a million elements) would take a minute and a GB. So the page is parsed
once (lxml, about 0.1 s a MB), its elements and depth are counted, and only a page within
`Budget.rich_html_elements` and `Budget.depth` goes to trafilatura. A larger one is walked
once in document order for its text (scripts and styles left out; blocks and table rows a line
each), its elements, depth and characters counted against the `Budget`, and the document says
so in a note.
"""

from __future__ import annotations

from typing import Any

from mitremap.deadline import Deadline
from mitremap.documents.budget import DEFAULT, Budget, BudgetSpent
from mitremap.documents.formats import DocumentError, one_line, quiet
from mitremap.errors import MissingExtraError, MitreMapError

_SKIPPED = frozenset(("script", "style", "noscript", "template", "head", "svg", "math"))
_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "caption",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    ]
)
_CELLS = frozenset(("td", "th"))


def html_text(
    markup: str, origin: str, *, deadline: Deadline | None = None, budget: Budget = DEFAULT
) -> tuple[str, str, list[str]]:
    """Main text (no navigation, footers, scripts), title and notes of an HTML page."""
    try:
        import trafilatura
        from trafilatura.utils import load_html
    except ImportError:
        raise MissingExtraError("trafilatura", "html", "Reading HTML") from None
    deadline = deadline or Deadline.none()
    notes: list[str] = []
    with quiet("trafilatura", "htmldate", "courlan"):
        try:
            tree = load_html(markup)
            deadline.check("reading the HTML page")
            too_big = tree is not None and _too_big(tree, budget)
            if tree is None or too_big:
                result = None
            else:
                result = trafilatura.bare_extraction(
                    tree, with_metadata=True, include_comments=False, include_tables=True
                )
        except MitreMapError:  # the deadline
            raise
        except Exception as error:  # a third-party parser on untrusted input: any failure
            raise DocumentError(origin, f"cannot parse the HTML: {one_line(error)}") from None
    if too_big:
        text, title, stop = _plain_text(tree, budget, deadline)
        read = f"read as plain text up to where {stop}" if stop else "read as plain text"
        notes.append(f"the HTML page is very large: {read} (navigation and footers not told apart)")
    else:  # within the budget, or not HTML enough for a tree: trafilatura's answer
        text = getattr(result, "text", None) or ""
        title = (getattr(result, "title", None) or "").strip()
    paragraphs = [line.strip() for line in text.splitlines() if line.strip()]
    if not paragraphs:
        raise DocumentError(origin, "the HTML page has no readable text (only scripts or markup)")
    # one paragraph a line; a blank line between them keeps them apart.
    return "\n\n".join(paragraphs), title, notes


def _too_big(tree: Any, budget: Budget) -> bool:
    """More elements than trafilatura is given, or nested deeper than the budget (its
    recursion would fail)."""
    from lxml import etree

    elements = depth = 0
    for event, _ in etree.iterwalk(tree, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        elements += 1
        depth += 1
        if elements > budget.rich_html_elements or depth > budget.depth:
            return True
    return False


def _plain_text(tree: Any, budget: Budget, deadline: Deadline) -> tuple[str, str, str]:
    """Text of every element in document order, blocks and rows a line each, cells apart;
    and the title; and why the walk stopped ("" when it read everything)."""
    from lxml import etree

    title = " ".join((tree.findtext(".//title") or "").split())[:1000]
    walk = _PlainWalk(budget, deadline)
    try:
        for event, element in etree.iterwalk(tree, events=("start", "end")):
            tag = element.tag.lower() if isinstance(element.tag, str) else ""
            if event == "start":
                walk.start(tag, element.text)
            else:
                walk.end(tag, element.tail)
    except BudgetSpent as spent:
        return walk.text(), title, str(spent)
    return walk.text(), title, ""


class _PlainWalk:
    """One walk of a page for its plain text: the text so far, the elements, depth and
    characters counted against the budget (`BudgetSpent` past it), the open subtree being
    skipped (scripts, styles) and the cells seen in each open table row."""

    def __init__(self, budget: Budget, deadline: Deadline) -> None:
        self.budget, self.deadline = budget, deadline
        self.pieces: list[str] = []
        self.chars = self.elements = self.depth = self.skipping = 0
        self.cells: list[int] = []  # cells seen in each open row

    def text(self) -> str:
        return "".join(self.pieces)

    def start(self, tag: str, text: str | None) -> None:
        """An element opens (`tag` "" for a comment or processing instruction: skipped)."""
        self._count()
        if self.skipping or tag in _SKIPPED or not tag:
            self.skipping += 1
            return
        if tag == "tr":
            self.cells.append(0)
        elif tag in _CELLS and self.cells:
            if self.cells[-1]:
                self.pieces.append(" | ")
            self.cells[-1] += 1
        if tag in _BLOCKS:
            self.pieces.append("\n")
        self._add(text)

    def end(self, tag: str, tail: str | None) -> None:
        """An element closes; the text after it (its tail) belongs to its parent."""
        self.depth -= 1
        if self.skipping:
            self.skipping -= 1
        else:
            if tag == "tr" and self.cells:
                self.cells.pop()
            if tag in _BLOCKS:
                self.pieces.append("\n")
        if not self.skipping:
            self._add(tail)

    def _count(self) -> None:
        """One more element, one level deeper: within the budget, or `BudgetSpent`."""
        self.elements += 1
        self.depth += 1
        if self.elements % 10_000 == 0:
            self.deadline.check("reading the HTML page")
        if self.elements > self.budget.elements:
            raise BudgetSpent(f"it has more than {self.budget.elements:,} elements")
        if self.depth > self.budget.depth:
            raise BudgetSpent(f"it nests elements more than {self.budget.depth} deep")

    def _add(self, text: str | None) -> None:
        if text:
            self.pieces.append(text)
            self.chars += len(text)
        if self.chars > self.budget.text_chars:
            raise BudgetSpent(f"its text passes {self.budget.text_chars:,} characters")
