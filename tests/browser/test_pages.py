"""The page shells without a browser: what they carry, what they leave out (inline script or
style, event-handler attributes, unlabelled inputs), and that every element id a script looks
up exists on its page."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from mitremap.web.pages import WEB, add_pages, render_page

PAGES = {"reports.html": "reports.js", "review.html": "review.js", "login.html": "login.js"}
HOSTILE_TOKEN = '"><script>alert(1)</script>'


def app_with(csrf: str = "tok", auth: bool = False) -> TestClient:
    """The pages on a bare app, with what the backend's session middleware would set."""
    app = FastAPI()

    @app.middleware("http")
    async def session(request: Request, call_next: Any) -> Any:
        request.state.csrf_token = csrf
        request.state.auth = auth
        return await call_next(request)

    add_pages(app)
    return TestClient(app, base_url="http://127.0.0.1")


class Markup(HTMLParser):
    """Collects what the checks below look at."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.label_for: set[str] = set()
        self.controls: list[tuple[str, dict[str, str | None], bool]] = []
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.metas: dict[str, str] = {}
        self._labels = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "label":
            self._labels += 1
            if found.get("for"):
                self.label_for.add(str(found["for"]))
        if tag in ("input", "select", "textarea") and found.get("type") not in ("hidden",):
            self.controls.append((tag, found, self._labels > 0))
        if tag == "script":
            self.scripts.append(found)
        if tag == "style" or "style" in found:
            self.inline.append(f"<{tag}> style")
        self.inline += [f"<{tag}> {name}" for name in found if name.startswith("on")]
        if tag == "meta" and found.get("name"):
            self.metas[str(found["name"])] = str(found.get("content") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._labels -= 1


def parse(text: str) -> Markup:
    markup = Markup()
    markup.feed(text)
    return markup


@pytest.mark.parametrize(("main", "script"), PAGES.items())
def test_pages_have_no_inline_script_or_style_and_label_every_input(main: str, script: str):
    markup = parse(render_page(title="t", main=main, script=script, csrf_token="x"))
    assert markup.inline == []
    assert markup.scripts == [{"type": "module", "src": f"/static/{script}?v={_version()}"}]
    for tag, attrs, wrapped in markup.controls:
        named = wrapped or attrs.get("id") in markup.label_for or attrs.get("aria-label")
        assert named, f"<{tag} {attrs}> has no label"


@pytest.mark.parametrize(("main", "script"), PAGES.items())
def test_every_element_a_script_looks_up_is_on_its_page(main: str, script: str):
    ids = parse(render_page(title="t", main=main, script=script, csrf_token="x")).ids
    code = (WEB / "static" / script).read_text(encoding="utf-8")
    shared = (WEB / "static" / "app.js").read_text(encoding="utf-8")
    wanted = set(re.findall(r"""(?:\$|getElementById)\(\s*["']([\w-]+)["']""", code + shared))
    assert wanted, "the pattern found no lookups: the test would prove nothing"
    assert wanted <= ids, f"{script} looks up ids missing from {main}: {sorted(wanted - ids)}"


def test_scripts_never_parse_markup():
    """Report data reaches the DOM only as text: no script builds HTML from strings."""
    scripts = [path for path in (WEB / "static").iterdir() if path.name.endswith(".js")]
    assert scripts
    for path in scripts:
        code = path.read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in code, f"{path.name} uses {sink}"


def test_the_pages_carry_the_sessions_csrf_token_escaped():
    client = app_with(csrf=HOSTILE_TOKEN)
    for path in ("/", "/reports/7"):
        answer = client.get(path)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["cache-control"] == "no-store"
        markup = parse(answer.text)
        assert markup.metas["csrf-token"] == HOSTILE_TOKEN  # the attribute holds it, as text
        assert "<script>alert(1)" not in answer.text
    assert "review.js" in client.get("/reports/7").text
    not_a_report = client.get("/reports/not-a-number")  # a page, not the API's JSON 422
    assert not_a_report.status_code == 404
    assert not_a_report.headers["content-type"].startswith("text/html")


def test_login_page_only_when_auth_is_on():
    off = app_with(auth=False).get("/login", follow_redirects=False)
    assert off.status_code == 303 and off.headers["location"] == "/"
    on = app_with(auth=True).get("/login")
    assert on.status_code == 200 and 'id="login-form"' in on.text


def test_static_files_are_served_with_their_types():
    client = app_with()
    types = {
        "app.js": "text/javascript",
        "review.js": "text/javascript",
        "app.css": "text/css",
        "favicon.svg": "image/svg+xml",
    }
    for name, media_type in types.items():
        answer = client.get(f"/static/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].startswith(media_type), name
    assert client.get("/static/../pages.py").status_code == 404


def _version() -> str:
    from mitremap import __version__

    return __version__
