"""Hostile reports render as text; errors are shown and keep the input; delete asks first; the
pages fit a narrow window; below-threshold suggestions can be shown and accepted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.conftest import Tab
from tests.browser.test_review_flow import SELECT_PASSAGE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IMG = '"><img src=x onerror="window.__xss=1;alert(1)">'
SCRIPT = "<script>window.__xss=2;alert(2)</script>"
TEXT = (
    f"🛡️ Title line {SCRIPT} and {IMG}.\n\n"  # an emoji: two UTF-16 units per code point
    "The actors cleared the Windows Security and System event logs with wevtutil "
    f"{IMG} and deleted their tools. They dumped credentials from LSASS memory with Mimikatz."
)


def injected(tab: Tab) -> dict[str, object]:
    """Anything a payload could have made: images, inline scripts, the flag it sets."""
    return tab.page.evaluate(
        """() => ({
            images: document.querySelectorAll('img').length,
            inline_scripts: document.querySelectorAll('script:not([src])').length,
            flag: window.__xss ?? null,
        })"""
    )


def test_hostile_report_and_file_name_render_as_text(tab: Tab) -> None:
    from playwright.sync_api import expect

    page = tab.page
    title = f"{SCRIPT}{IMG}"
    tab.goto("/")
    page.fill("#add-title", title)
    page.fill("#add-text", TEXT)
    page.click("#add-submit")
    page.wait_for_url("**/reports/*")
    expect(page.locator("#report-title")).to_have_text(title)
    expect(page.locator("#report-text")).to_contain_text(IMG)
    expect(page.locator("#suggestions .card").first).to_be_visible()
    assert injected(tab) == {"images": 0, "inline_scripts": 0, "flag": None}
    # a passage after the emoji goes to the server in its offsets and comes back the same
    page.evaluate(SELECT_PASSAGE, "cleared the Windows Security")
    page.fill("#technique-search", "T1070.001")
    page.locator('#technique-options li[role="option"]', has_text="T1070.001").click()
    page.click("#add-technique button[type=submit]")
    added = page.locator('#added li[data-technique="T1070.001"] .quote-button')
    expect(added).to_have_text("“cleared the Windows Security”")
    stored = page.request.get(page.url.replace("/reports/", "/api/reports/")).json()
    passage = next(a for a in stored["added"] if a["technique"] == "T1070.001")
    assert stored["text"][passage["start"] : passage["end"]] == "cleared the Windows Security"

    # an upload whose file name is the payload (the title then comes from the file)
    tab.goto("/")
    page.check('input[name="source"][value="file"]')
    name = f"{SCRIPT.replace('/', '')}{IMG}.md"
    page.set_input_files(
        "#add-file", files=[{"name": name, "mimeType": "text/markdown", "buffer": TEXT.encode()}]
    )
    page.click("#add-submit")
    page.wait_for_url("**/reports/*")
    expect(page.locator("#report-text")).to_contain_text(IMG)
    assert injected(tab) == {"images": 0, "inline_scripts": 0, "flag": None}

    tab.goto("/")
    expect(page.locator("#reports-body").get_by_text(title, exact=True)).to_be_visible()
    assert injected(tab) == {"images": 0, "inline_scripts": 0, "flag": None}
    assert tab.dialogs == [] and tab.page_errors == [] and tab.csp_violations() == []


def test_an_api_error_is_shown_and_the_pasted_text_kept(tab: Tab) -> None:
    from playwright.sync_api import expect

    page = tab.page
    busy = {"error": {"code": "busy", "message": "the server is busy; try again shortly"}}
    page.route(
        "**/api/reports",
        lambda route: (
            route.fulfill(status=503, json=busy)
            if route.request.method == "POST"
            else route.continue_()
        ),
    )
    tab.goto("/")
    page.fill("#add-text", TEXT)
    page.click("#add-submit")
    expect(page.locator("#messages .message")).to_contain_text("the server is busy")
    expect(page.locator("#add-text")).to_have_value(TEXT)
    expect(page.locator("#add-submit")).to_be_enabled()
    expect(page.locator("#add-progress")).to_be_hidden()

    tab.goto("/reports/987654")  # the real server's 404, in its one error shape
    expect(page.locator("#report-title")).to_have_text("Report not found")
    expect(page.locator("#messages .message")).to_be_visible()


def test_delete_asks_first(tab: Tab) -> None:
    from playwright.sync_api import expect

    page = tab.page
    tab.goto("/")
    page.fill("#add-title", "to be deleted")
    page.fill("#add-text", TEXT)
    page.click("#add-submit")
    page.wait_for_url("**/reports/*")
    tab.goto("/?q=to%20be%20deleted")
    row = page.locator("#reports-body tr", has_text="to be deleted")
    expect(row).to_have_count(1)
    row.get_by_role("button", name=re.compile("Delete")).click()
    dialog = page.locator("#confirm-delete")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("to be deleted")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(row).to_have_count(1)
    row.get_by_role("button", name=re.compile("Delete")).click()
    dialog.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    expect(page.locator("#messages")).to_contain_text("Deleted")


def test_more_suggestions_passages_status_and_a_narrow_window(
    tab: Tab, screenshots: Path, database_url: str
) -> None:
    from playwright.sync_api import expect

    page = tab.page
    tab.goto("/")
    page.fill("#add-text", (Path(__file__).parents[2] / "examples" / "apt-report.md").read_text())
    page.click("#add-submit")
    page.wait_for_url("**/reports/*")
    expect(page.locator("#suggestions .card").first).to_be_visible()
    more = page.locator("#show-more")
    expect(more).to_be_visible()
    page.locator("#report-text").focus()
    page.keyboard.press("m")  # the shortcut for "show more suggestions"
    below = page.locator("#more-suggestions .card").first
    expect(below).to_be_visible()
    technique = below.get_attribute("data-technique")
    below.locator("button.accept").click()
    expect(page.locator(f'#suggestions .card[data-technique="{technique}"]')).to_be_visible()
    # one passage of the top technique accepted on its own, and the report marked reviewed
    top = page.locator("#suggestions .card").first
    top.locator("summary").click()
    top.locator("button.passage-accept").first.click()
    expect(top.locator("button.passage-accept").first).to_have_attribute("aria-pressed", "true")
    page.select_option("#report-status", "reviewed")
    expect(page.locator("#report-counts")).to_contain_text("reviewed:")
    # decided on, the hidden one now stays in the main list and the matrix, after a reload
    page.reload()
    kept = page.locator(f'#suggestions .card[data-technique="{technique}"]')
    expect(kept).to_have_class(re.compile(r"\baccepted\b"))
    expect(kept.locator(".state")).to_contain_text("below the threshold")
    expect(page.locator(f'#matrix .cell[data-technique="{technique}"]').first).to_be_visible()
    passage = page.locator("#suggestions .card").first.locator(".evidence li").first
    expect(passage).to_contain_text("accepted by local")
    expect(page.locator("#report-status")).to_have_value("reviewed")

    page.set_viewport_size({"width": 400, "height": 800})
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the review page scrolls sideways at 400 px: {width}"
    which = database_url.split(":", 1)[0].split("+")[0]
    page.screenshot(path=str(screenshots / f"review-narrow-{which}.png"))
    tab.goto("/")
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the reports list scrolls sideways at 400 px: {width}"
    assert tab.page_errors == [] and tab.csp_violations() == []


def test_reports_come_in_pages(tab: Tab) -> None:
    from playwright.sync_api import expect

    page = tab.page
    for n in (1, 2):
        tab.goto("/")
        page.fill("#add-title", f"paged {n}")
        page.fill("#add-text", TEXT)
        page.click("#add-submit")
        page.wait_for_url("**/reports/*")
    tab.goto("/?q=paged&per_page=1")
    expect(page.locator("#page-info")).to_have_text("Page 1 of 2")
    expect(page.locator("#reports-body tr")).to_have_count(1)
    first = page.locator("#reports-body td.title").inner_text()
    page.click("#page-next")
    expect(page.locator("#page-info")).to_have_text("Page 2 of 2")
    expect(page.locator("#page-next")).to_be_disabled()
    second = page.locator("#reports-body td.title")
    expect(second).not_to_have_text(first)
    assert {first, second.inner_text()} == {"paged 1", "paged 2"}
    page.reload()  # the page number is in the address
    expect(page.locator("#page-info")).to_have_text("Page 2 of 2")
    page.select_option("#search-status", "reviewed")
    expect(page.locator("#list-summary")).to_have_text("0 reports matching “paged”")
