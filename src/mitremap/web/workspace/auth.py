"""Who is asking, and may they: users, roles, browser sessions, API tokens and CSRF.

- On loopback with no user who can log in, everyone is the one local user `local` (admin):
  no login. Bound to any other address, `mitremap serve` refuses to start without users.
- Passwords are hashed with argon2 (`pwdlib`). A browser session is a random token in an
  HttpOnly, SameSite=Strict cookie (Secure off loopback); the database keeps only its
  SHA-256, so logging out or removing a user ends it at once. API tokens are kept the same way.
- Every state-changing request made with the session cookie must carry the session's CSRF
  token in `X-CSRF-Token` (pages have it in `<meta name="csrf-token">`, scripts in
  `GET /api/session`). Requests with `Authorization: Bearer <token>` need none: a browser
  never adds that header by itself. A state-changing request with neither is refused, on
  loopback too, so a page elsewhere cannot post to the local server.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from mitremap.web.workspace.errors import (
    ForbiddenError,
    InvalidError,
    TooManyAttemptsError,
    UnauthorizedError,
)
from mitremap.web.workspace.models import ROLES
from mitremap.web.workspace.store import SessionInfo, Store, UserInfo

COOKIE = "mitremap_session"
CSRF_HEADER = "X-CSRF-Token"
LOCAL_USER = "local"
MIN_PASSWORD = 10
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
# password guessing: after this many failed logins for one user name within the window, that
# name is refused (429) until the oldest failure leaves the window
MAX_FAILED_LOGINS = 5
FAILED_LOGIN_WINDOW_S = 15 * 60


def hash_password(password: str) -> str:
    from pwdlib import PasswordHash

    if len(password) < MIN_PASSWORD:
        raise InvalidError(f"a password needs at least {MIN_PASSWORD} characters")
    return PasswordHash.recommended().hash(password)


def verify_password(password: str, hashed: str) -> bool:
    from pwdlib import PasswordHash

    try:
        return PasswordHash.recommended().verify(password, hashed)
    except Exception:  # a hash this library cannot read is a failed login, not a crash
        return False


@dataclass(frozen=True)
class Caller:
    """The user behind a request and how they proved it ('local', 'session' or 'token')."""

    user: UserInfo | None
    via: str
    session: SessionInfo | None = None
    cookie: str | None = None


class Auth:
    """Resolves a request's caller and checks roles and CSRF (used by the API and pages)."""

    def __init__(self, store: Store, *, enabled: bool) -> None:
        self.store = store
        self.enabled = enabled
        self.local = None if enabled else store.ensure_user(LOCAL_USER, "admin")
        self._failures: dict[str, deque[float]] = {}  # user name → times of failed logins
        self._failures_lock = threading.Lock()

    def caller(self, cookie: str | None, authorization: str | None) -> Caller:
        """Who is asking: a bearer token wins; then the session cookie; then, without
        authentication, the local user."""
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise UnauthorizedError("use 'Authorization: Bearer <API token>'")
            user = self.store.token_user(token.strip())
            if user is None:
                raise UnauthorizedError("the API token is not valid")
            return Caller(user, "token")
        session = self.store.session(cookie) if cookie else None
        if session is not None:
            user = session.user if self.enabled else self.local
            return Caller(user, "session", session, cookie)
        return Caller(None if self.enabled else self.local, "local")

    def require(self, caller: Caller, role: str, method: str, csrf: str | None) -> UserInfo:
        """The caller's user when they may do this (`role` or higher); 401, or 403."""
        changes = method.upper() not in SAFE_METHODS
        if changes and caller.via == "local":
            raise UnauthorizedError(
                "send the session cookie and X-CSRF-Token (see GET /api/session), or an API token"
            )
        if caller.user is None:
            raise UnauthorizedError("log in first")
        if changes and caller.via == "session":
            self.check_csrf(caller, csrf)
        if _RANK.get(caller.user.role, -1) < _RANK[role]:
            raise ForbiddenError(f"this needs the {role} role; you are {caller.user.role}")
        return caller.user

    @staticmethod
    def check_csrf(caller: Caller, csrf: str | None) -> None:
        """403 unless `csrf` is the caller's session's CSRF token (no session: no token)."""
        expected = caller.session.csrf_token if caller.session else ""
        sent = csrf or ""
        if not expected or not secrets.compare_digest(sent.encode(), expected.encode()):
            raise ForbiddenError(
                "missing or wrong X-CSRF-Token header; reload the page and try again"
            )

    def login(self, name: str, password: str) -> tuple[str, SessionInfo]:
        """A new session for a user whose password matches (401 otherwise, the same message
        whichever part was wrong); too many failures for one name in a while: 429."""
        key = name.strip().lower()[:200]
        now = time.monotonic()
        with self._failures_lock:
            recent = self._failures.setdefault(key, deque())
            while recent and now - recent[0] > FAILED_LOGIN_WINDOW_S:
                recent.popleft()
            if len(recent) >= MAX_FAILED_LOGINS:
                wait = int(FAILED_LOGIN_WINDOW_S - (now - recent[0])) // 60 + 1
                raise TooManyAttemptsError(
                    f"too many failed logins for this user; try again in {wait} min"
                )
        found = self.store.password_hash(name)
        if found is None or not verify_password(password, found[1]):
            if found is None:
                verify_password(password, _DUMMY_HASH)  # the same time whether or not they exist
            with self._failures_lock:
                self._failures.setdefault(key, deque()).append(now)
                if len(self._failures) > 10_000:  # bounded: forget the names guessed longest ago
                    self._failures.pop(next(iter(self._failures)))
            raise UnauthorizedError("wrong user name or password")
        with self._failures_lock:
            self._failures.pop(key, None)
        return self.store.new_session(found[0].name)


_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$"
    "Pl2d7yRe2H9x4F3c2yOQ3jZx0h8nmZ0q2H3n8XkzB1E"
)
