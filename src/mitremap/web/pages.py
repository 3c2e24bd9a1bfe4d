"""The workspace's HTML pages: shells the browser fills from the JSON API.

Why shells: every piece of a report reaches the page through `fetch` and is put into the DOM
as text (`textContent`), never rendered into HTML by the server, so a report can never become
markup; and the pages, scripts and tests all use the one API. The pages carry no inline script
or style, so they run under the strict Content-Security-Policy (`script-src 'self'`).

- `GET /` — the reports list (add, search, delete; model and retraining for admins).
- `GET /reports/{id}` — the review page of one report.
- `GET /login` — sign in (only when the server runs with users).
- `GET /admin` — users and API tokens (your own password and tokens; admins: every user and
  token, and the audit log).
- `/static/…` — the CSS and JavaScript (`mitremap/web/resources/static`).
"""

import html
import re
from functools import cache
from importlib.resources import files
from string import Template
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

WEB = files("mitremap.web") / "resources"
REPORT_ID = re.compile(r"[1-9][0-9]{0,17}")  # the API's report ids (1 to 2**62, or so)
NOT_FOUND = (
    "<!DOCTYPE html><html lang='en'><meta charset='utf-8'><title>Not found · MitreMap</title>"
    "<h1>Not found</h1><p>There is no such page. <a href='/'>Back to the reports</a></p></html>"
)


@cache
def _template(name: str) -> str:
    return (WEB / name).read_text(encoding="utf-8")


def render_page(*, title: str, main: str, script: str, csrf_token: str) -> str:
    """One page: the shared layout around a page's static `main` fragment.

    Only `title` and `csrf_token` are variable, both escaped; nothing from a report is here."""
    from mitremap import __version__

    return Template(_template("layout.html")).substitute(
        title=html.escape(title),
        csrf_token=html.escape(csrf_token),
        version=html.escape(__version__),
        script=script,
        main=_template(main),
    )


def add_pages(app: "FastAPI") -> None:
    """Register the HTML pages and `/static` on the backend's app."""
    from fastapi import Request
    from fastapi.responses import HTMLResponse, RedirectResponse, Response
    from fastapi.staticfiles import StaticFiles

    app.mount(
        "/static",
        StaticFiles(packages=[("mitremap.web", "resources/static")]),
        name="static",
    )

    def page(request: Request, title: str, main: str, script: str) -> HTMLResponse:
        body = render_page(title=title, main=main, script=script, csrf_token=_csrf(request))
        # the page holds this session's CSRF token: never kept by a shared cache
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def reports_page(request: Request) -> Response:
        return page(request, "Reports", "reports.html", "reports.js")

    @app.get("/reports/{report_id}", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request, report_id: str) -> Response:
        if not REPORT_ID.fullmatch(report_id):  # /reports/abc: no such page, not a JSON 422
            return HTMLResponse(NOT_FOUND, status_code=404)
        return page(request, f"Report {report_id}", "review.html", "review.js")

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    def admin_page(request: Request) -> Response:
        return page(request, "Users and API tokens", "admin.html", "admin.js")

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request) -> Response:
        if not _auth_on(request):
            return RedirectResponse("/", status_code=303)
        return page(request, "Sign in", "login.html", "login.js")


def _csrf(request: "Request") -> str:
    """This session's CSRF token, as the backend's session handling left it on the request
    (empty when it has none: the scripts then read it from `GET /api/session`)."""
    return str(getattr(request.state, "csrf_token", "") or "")


def _auth_on(request: "Request") -> bool:
    """Whether the server runs with users (the backend's session handling says so)."""
    return bool(getattr(request.state, "auth", False))
