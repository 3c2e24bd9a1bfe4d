"""An analyst's review, end to end in a real browser against the real server and database:
paste the sample report, accept one technique, reject one, add one to a selected passage,
reload, restart the server, and export the reviewed result from the page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Tab, WorkspaceServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "apt-report.md"
# the analyst adds T1039 (Data from Network Shared Drive) to this passage: the model misses it
ADDED = "T1039"
PASSAGE = "They searched network shares for documents"
ACCEPTED = re.compile(r"\baccepted\b")
REJECTED = re.compile(r"\brejected\b")

SELECT_PASSAGE = """(needle) => {
  const box = document.getElementById('report-text');
  const at = box.textContent.indexOf(needle);
  if (at < 0) throw new Error('passage not in the text: ' + needle);
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  let seen = 0, started = false, node;
  while ((node = walker.nextNode())) {
    const length = node.data.length;
    if (!started && at < seen + length) { range.setStart(node, at - seen); started = true; }
    if (started && at + needle.length <= seen + length) {
      range.setEnd(node, at + needle.length - seen); break;
    }
    seen += length;
  }
  const selection = document.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}"""


def card(tab: Tab, technique: str) -> Any:
    return tab.page.locator(f'#suggestions .card[data-technique="{technique}"]')


def expect_decisions(tab: Tab, accepted: str, rejected: str) -> None:
    """What the page shows, read back from the server."""
    from playwright.sync_api import expect

    expect(card(tab, accepted)).to_have_class(ACCEPTED)
    expect(card(tab, accepted).locator("button.accept")).to_have_attribute("aria-pressed", "true")
    expect(card(tab, rejected)).to_have_class(REJECTED)
    expect(card(tab, rejected).locator(".state")).to_contain_text("Rejected by local")
    added = tab.page.locator(f'#added li[data-technique="{ADDED}"]')
    expect(added).to_contain_text(PASSAGE)
    expect(added).to_contain_text("shares searched by hand")
    expect(tab.page.locator("#report-status")).to_have_value("in_review")
    cell = tab.page.locator(f'#matrix .cell[data-technique="{accepted}"]')
    expect(cell.first).to_have_class(ACCEPTED)
    added_cell = tab.page.locator(f'#matrix .cell[data-technique="{ADDED}"]')
    expect(added_cell.first).to_have_class(re.compile(r"\badded\b"))


def dicts(value: Any) -> Iterator[dict[str, Any]]:
    """Every object inside a JSON value (where the export keeps its decisions is its own)."""
    if isinstance(value, dict):
        yield value
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            yield from dicts(item)


def download(tab: Tab, fmt: str) -> tuple[str, str]:
    tab.page.click("#export-menu summary")  # the export menu opens, then a format is chosen
    with tab.page.expect_download() as event:
        tab.page.click(f'button[data-format="{fmt}"]')
    path = event.value.path()
    return event.value.suggested_filename, Path(path).read_text(encoding="utf-8")


def test_review_survives_reload_and_restart_and_exports(
    tab: Tab, server: WorkspaceServer, screenshots: Path, database_url: str
) -> None:
    from playwright.sync_api import expect

    page = tab.page
    which = database_url.split(":", 1)[0].split("+")[0]

    # ---- paste the sample report --------------------------------------------------------------
    tab.goto("/")
    page.fill("#add-title", "Operation Glass Harbor")
    page.fill("#add-text", SAMPLE.read_text(encoding="utf-8"))
    page.click("#add-submit")
    page.wait_for_url("**/reports/*")
    cards = page.locator("#suggestions .card")
    expect(cards.first).to_be_visible()
    assert cards.count() >= 3, "the sample report should have several techniques"
    techniques = [c.get_attribute("data-technique") for c in cards.all()]
    assert ADDED not in techniques
    expect(page.locator("#report-title")).to_have_text("Operation Glass Harbor")
    expect(page.locator("#report-text .ev").first).to_be_visible()

    # ---- accept the first with the keyboard, reject the second with its button --------------
    accepted, rejected = techniques[0], techniques[1]
    page.locator("#report-text").focus()
    page.keyboard.press("a")
    expect(card(tab, accepted)).to_have_class(ACCEPTED)
    card(tab, rejected).locator("input.note").fill("not in this report")
    card(tab, rejected).locator("button.reject").click()
    expect(card(tab, rejected)).to_have_class(REJECTED)
    page.keyboard.press("k")  # back to the accepted one: the shortcuts act on it again
    expect(card(tab, accepted)).to_be_focused()

    # ---- add a technique to a passage the analyst selects -------------------------------------
    page.evaluate(SELECT_PASSAGE, PASSAGE)
    expect(page.locator("#selection-text")).to_have_text(PASSAGE)
    page.fill("#technique-search", "network shared drive")
    option = page.locator(f'#technique-options li[role="option"]:has-text("{ADDED}")')
    option.click()
    expect(page.locator("#technique-search")).to_have_value(
        f"{ADDED} Data from Network Shared Drive"
    )
    page.fill("#add-note", "shares searched by hand")
    page.click("#add-technique button[type=submit]")
    expect(page.locator(f'#added li[data-technique="{ADDED}"]')).to_be_visible()
    expect(page.locator("#report-counts")).to_contain_text("1 accepted · 1 rejected")
    expect_decisions(tab, accepted, rejected)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(screenshots / f"review-{which}.png"), full_page=True)

    # ---- reload, then restart the server: the decisions are still there -------------------------
    page.reload()
    expect_decisions(tab, accepted, rejected)
    server.restart()
    page.reload()
    expect_decisions(tab, accepted, rejected)

    # ---- export the reviewed result from the page -------------------------------------------------
    name, text = download(tab, "navigator")
    assert name.endswith(".json")
    layer = json.loads(text)
    scored = {t["techniqueID"] for t in layer["techniques"] if "score" in t}
    assert {accepted, ADDED} <= scored
    assert rejected not in scored
    assert scored <= {accepted, ADDED}, "only the reviewed result: accepted and added"
    navlayers = pytest.importorskip("mitreattack.navlayers")
    consumer = navlayers.Layer()
    consumer.from_dict(layer)  # MITRE's own layer library reads it

    name, text = download(tab, "stix")
    bundle = json.loads(text)
    patterns = {
        ref["external_id"]
        for o in bundle["objects"]
        if o["type"] == "attack-pattern"
        for ref in o["external_references"]
        if ref.get("source_name") == "mitre-attack"
    }
    assert patterns == {accepted, ADDED}
    validator = pytest.importorskip("stix2validator")
    results = validator.validate_string(text, validator.ValidationOptions(strict=True))
    assert results.is_valid, [str(e) for r in results.object_results for e in r.errors]

    name, text = download(tab, "json")
    exported = json.loads(text)
    assert {t["technique"] for t in exported["techniques"]} == {accepted, ADDED}
    recorded = {(d["technique"], d["action"]) for d in dicts(exported) if "action" in d}
    assert {(accepted, "accept"), (rejected, "reject"), (ADDED, "add")} <= recorded
    for fmt, extension in {
        "csv": ".csv",
        "markdown": ".md",
        "html": ".html",
        "misp": ".json",
    }.items():
        name, text = download(tab, fmt)
        assert name.endswith(extension), name
        assert accepted in text and ADDED in text and rejected not in text, fmt

    # ---- the list shows it, searchable by technique id -----------------------------------------
    tab.goto(f"/?q={accepted}")
    title = page.get_by_role("link", name="Operation Glass Harbor", exact=True)
    row = page.locator("#reports-body tr").filter(has=title)
    expect(row).to_contain_text("in review")
    expect(row).to_contain_text(accepted)
    page.screenshot(path=str(screenshots / f"reports-{which}.png"), full_page=True)
    assert not tab.page_errors and not tab.csp_violations() and not tab.dialogs
