"""Who is asking, and may they: users, roles, browser sessions, API tokens and CSRF.

- Whether the server asks for a login follows the database: as soon as a user with a
  password exists (added by `mitremap serve user add`, the admin page, or another server on
  the same database) the next request needs a login; until then, on loopback, everyone is
  the one local user `local` (admin). The state is read from the database on every request
  while login is off, and kept for `LOGIN_STATE_TTL_S` once it is on. A server that can be
  reached off loopback (a non-loopback bind or `--allow-host`) always asks (`forced`).
- Passwords are hashed with argon2 (`pwdlib`). A logged-in browser holds a random token in
  an HttpOnly, SameSite=Strict cookie (Secure over HTTPS); the database keeps its SHA-256,
  so logging out, a new password, disabling or removing the user ends it at once. API
  tokens are kept the same way, with a role at most the user's and an optional expiry.
- Every state-changing request made by a browser must carry a CSRF token in `X-CSRF-Token`:
  a logged-in session's own token, or, before login (the sign-in form; every page of the
  no-login local mode), an HMAC of a random `mitremap_csrf` cookie under a secret kept in
  the database — so showing a page writes no row. Requests with `Authorization: Bearer
  <token>` need none: a browser never adds that header by itself. A state-changing request
  with neither is refused, on loopback too, so a page elsewhere cannot post to the server.
- Failed logins are counted in the database per user name and per client address
  (`accounts.Accounts.count_login`), before the password is checked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from mitremap.web.workspace.accounts import RANK, SessionInfo, UserInfo
from mitremap.web.workspace.errors import ForbiddenError, InvalidError, UnauthorizedError
from mitremap.web.workspace.store import Store

COOKIE = "mitremap_session"
CSRF_COOKIE = "mitremap_csrf"
CSRF_HEADER = "X-CSRF-Token"
LOCAL_USER = "local"
MIN_PASSWORD = 10
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# password guessing: at most this many failed logins for one user name, and from one client
# address across names, within the window; then 429 until the window ends
MAX_FAILED_LOGINS = 5
MAX_FAILED_PER_ADDRESS = 10
FAILED_LOGIN_WINDOW = timedelta(minutes=15)
FAILED_LOGIN_WINDOW_S = int(FAILED_LOGIN_WINDOW.total_seconds())
LOGIN_STATE_TTL_S = 2.0  # once login is on, how long that is believed before asking again
PURGE_EVERY_S = 600.0  # expired sessions and old login counts are deleted this often
CSRF_SECRET = "csrf_secret"  # the settings key of the HMAC secret


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
    """The user behind a request and how they proved it: 'session', 'token', 'local' (no
    login on this server) or 'anonymous'; `csrf` is the token its changes must carry."""

    user: UserInfo | None
    via: str
    csrf: str = ""
    cookie: str | None = None  # the session cookie, when logged in
    session: SessionInfo | None = None


class Auth:
    """Resolves a request's caller and checks roles and CSRF (used by the API and pages).

    `enabled`: True or False fixes whether login is required; None (the default) follows
    the database."""

    def __init__(self, store: Store, *, enabled: bool | None = None) -> None:
        self.store = store
        self.forced = enabled
        self._csrf_key = store.secret(CSRF_SECRET).encode()
        self._lock = threading.Lock()
        self._on_at: float | None = None  # when login was last seen on (monotonic)
        self._local: UserInfo | None = None
        self._purged_at = time.monotonic()
        store.purge_expired(FAILED_LOGIN_WINDOW)

    @property
    def enabled(self) -> bool:
        """Whether a login is required now."""
        if self.forced is not None:
            return self.forced
        now = time.monotonic()
        if self._on_at is not None and now - self._on_at < LOGIN_STATE_TTL_S:
            return True
        on = self.store.has_login_users()
        self._on_at = now if on else None
        return on

    @property
    def local(self) -> UserInfo:
        """The one user of a server without logins (made on first use)."""
        if self._local is None:
            self._local = self.store.ensure_user(LOCAL_USER, "admin")
        return self._local

    def caller(
        self, cookie: str | None, csrf_cookie: str | None, authorization: str | None
    ) -> Caller:
        """Who is asking: a bearer token wins; then a logged-in session; then, without
        login, the local user; else nobody."""
        self._purge_now_and_then()
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise UnauthorizedError("use 'Authorization: Bearer <API token>'")
            return Caller(self.store.authenticate_token(token.strip()), "token")
        enabled = self.enabled
        session = self.store.session(cookie) if cookie else None
        if session is not None and session.user is not None:
            user = session.user if enabled else self.local
            return Caller(user, "session", session.csrf_token, cookie, session)
        csrf = self.anonymous_csrf(csrf_cookie) if csrf_cookie else ""
        if enabled:
            return Caller(None, "anonymous", csrf)
        return Caller(self.local, "local", csrf)

    def anonymous_csrf(self, csrf_cookie: str) -> str:
        """The CSRF token of a browser that is not logged in: an HMAC of its cookie."""
        return hmac.new(self._csrf_key, csrf_cookie.encode(), hashlib.sha256).hexdigest()

    def require(self, caller: Caller, role: str, method: str, csrf: str | None) -> UserInfo:
        """The caller's user when they may do this (`role` or higher); 401, or 403."""
        changes = method.upper() not in SAFE_METHODS
        if changes and caller.via == "local" and not caller.csrf:
            raise UnauthorizedError(
                "send the page's cookie and X-CSRF-Token (see GET /api/session), or an API token"
            )
        if caller.user is None:
            raise UnauthorizedError("log in first")
        if changes and caller.via != "token":
            self.check_csrf(caller, csrf)
        if RANK.get(caller.user.role, -1) < RANK[role]:
            raise ForbiddenError(f"this needs the {role} role; you are {caller.user.role}")
        return caller.user

    @staticmethod
    def check_csrf(caller: Caller, csrf: str | None) -> None:
        """403 unless `csrf` is the caller's CSRF token (no cookie: no token)."""
        sent = csrf or ""
        if not caller.csrf or not secrets.compare_digest(sent.encode(), caller.csrf.encode()):
            raise ForbiddenError(
                "missing or wrong X-CSRF-Token header; reload the page and try again"
            )

    def login(self, name: str, password: str, address: str) -> tuple[str, SessionInfo]:
        """A new session for a user whose password matches (`check_password`)."""
        return self.store.new_session(self.check_password(name, password, address).name)

    def check_password(self, name: str, password: str, address: str) -> UserInfo:
        """The user, when the password is theirs (401 otherwise, the same message whichever
        part was wrong). The attempt is counted first, for the name and for the client
        `address`: past either limit it is refused (429) without checking."""
        keys = [
            (f"name:{name.strip().lower()[:64]}", MAX_FAILED_LOGINS),
            (f"address:{address[:100]}", MAX_FAILED_PER_ADDRESS),
        ]
        self.store.count_login(keys, FAILED_LOGIN_WINDOW)
        try:
            found = self.store.password_hash(name)
            if found is None:
                verify_password(password, _DUMMY_HASH)  # the same time whether or not they exist
            matches = found is not None and verify_password(password, found[1])
        except BaseException:
            self.store.uncount_login([key for key, _ in keys])  # not a wrong password
            raise
        if found is None or not matches:
            raise UnauthorizedError("wrong user name or password")
        self.store.uncount_login([key for key, _ in keys])
        return found[0]

    def _purge_now_and_then(self) -> None:
        now = time.monotonic()
        if now - self._purged_at < PURGE_EVERY_S:
            return
        with self._lock:
            if now - self._purged_at < PURGE_EVERY_S:
                return
            self._purged_at = now
        self.store.purge_expired(FAILED_LOGIN_WINDOW)


_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$"
    "Pl2d7yRe2H9x4F3c2yOQ3jZx0h8nmZ0q2H3n8XkzB1E"
)
