"""The web tests' client: one that behaves like the pages."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

LOCAL = "http://127.0.0.1"  # a loopback name, as the server is reached by default


def browser(app: Any, base: str = LOCAL, address: str = "testclient") -> TestClient:
    """A client with the session cookie and its CSRF token on every call, as the pages send
    them; `address` is the client's own (throttling counts by it)."""
    client = TestClient(app, base_url=base, client=(address, 50000))
    client.headers["X-CSRF-Token"] = client.get("/api/session").json()["csrf_token"]
    return client
