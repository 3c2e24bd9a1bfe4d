"""The OpenAPI docs at `/docs`, served whole by this server: Swagger UI's files come from the
`fastapi-offline` package (Swagger UI 5, which reads OpenAPI 3.1), the page and its start-up script from here (no CDN, no inline
script, so it works offline and under the strict Content-Security-Policy). "Try it out"
sends the page's CSRF token, so it works with the browser session too.
"""

import html
from typing import TYPE_CHECKING

# no `from __future__ import annotations`: FastAPI reads the routes' annotations at run time
if TYPE_CHECKING:
    from fastapi import FastAPI

ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon.png": "image/png",
}

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="csrf-token" content="{csrf}">
<title>MitreMap API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon.png">
</head><body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>"""

_INIT = """"use strict";
window.addEventListener("load", function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: function (request) {
      if (meta && request.method && request.method.toUpperCase() !== "GET") {
        request.headers["X-CSRF-Token"] = meta.getAttribute("content");
      }
      return request;
    }
  });
});
"""


def add_docs(app: "FastAPI") -> None:
    """Register `/docs`, `/docs/init.js` and `/docs/assets/{name}` on `app` (the page's CSRF
    token is `request.state.csrf_token`, as on every page)."""
    from fastapi import Request, Response
    from fastapi.responses import HTMLResponse

    from mitremap.web.workspace.errors import NotFoundError

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> Response:
        token = getattr(request.state, "csrf_token", "")
        return HTMLResponse(_PAGE.format(csrf=html.escape(token)))

    @app.get("/docs/init.js", include_in_schema=False)
    def init() -> Response:
        return Response(_INIT, media_type="text/javascript; charset=utf-8")

    @app.get("/docs/assets/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in ASSETS:
            raise NotFoundError(f"no docs asset {name!r}")
        from importlib.resources import files

        try:
            data = (files("fastapi_offline") / "static" / name).read_bytes()
        except (ImportError, OSError):
            raise NotFoundError(
                "the API docs need the 'fastapi-offline' package: pip install 'mitremap[web]'"
            ) from None
        return Response(
            data, media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=86400"}
        )
