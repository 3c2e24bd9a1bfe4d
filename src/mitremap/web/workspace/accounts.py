"""Accounts in the database: users, browser sessions, API tokens, login throttling and the
audit log of who changed which user or token.

Everything here is read from the database on each request (nothing is held in memory), so a
change made by `mitremap serve user …` or by another server process on the same database
takes effect on the next request, and survives restarts:
- a session or token of a disabled or removed user stops working at once, and a user's
  role is read with their session or token (a token's own role only ever lowers it);
- login attempts are counted per user name and per client address *before* the password is
  checked, in one atomic upsert (`count_login`), so parallel guesses cannot pass the limit;
- browser sessions are rows only once someone logs in; expired rows are purged.

`Store` (the service layer) inherits these methods, so `store.add_user(...)` reads as before.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, exists, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import Insert

from mitremap.web.workspace.db import Database
from mitremap.web.workspace.errors import (
    ConflictError,
    InvalidError,
    NotFoundError,
    TooManyAttemptsError,
    UnauthorizedError,
)
from mitremap.web.workspace.models import (
    ROLES,
    ApiToken,
    AuditEvent,
    BrowserSession,
    IdempotencyKey,
    LoginAttempt,
    Setting,
    User,
    utcnow,
)

SESSION_LIFETIME = timedelta(hours=12)
TOKEN_TOUCH = timedelta(minutes=1)  # a token's `last_used_at` is written at most this often
IDEMPOTENCY_LIFETIME = timedelta(hours=24)
MAX_TOKEN_DAYS = 3650
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
RANK = {role: rank for rank, role in enumerate(ROLES)}


def digest(secret: str) -> str:
    """SHA-256 of a random token: what is stored, so a database leak reveals no token."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: str
    has_password: bool = False
    disabled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "has_password": self.has_password,
            "disabled": self.disabled,
        }


@dataclass(frozen=True)
class SessionInfo:
    user: UserInfo | None
    csrf_token: str


@dataclass(frozen=True)
class TokenInfo:
    """An API token as listed: never the token itself (only its digest is kept)."""

    id: int
    user: str
    label: str
    role: str  # the role it acts with now: its own cap, lowered by the user's role
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and _aware(self.expires_at) <= utcnow()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "label": self.label,
            "role": self.role,
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
            "expires_at": iso(self.expires_at),
            "expired": self.expired,
        }


def iso(moment: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z (SQLite hands back naive datetimes: they are UTC)."""
    if moment is None:
        return None
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lower_role(*roles: str) -> str:
    """The lowest of `roles`."""
    return min(roles, key=lambda r: RANK.get(r, -1))


class Accounts:
    """Users, sessions, tokens, login counting and the audit log (mixed into `Store`)."""

    db: Database

    # ---- users ----------------------------------------------------------------------------

    def add_user(
        self, name: str, role: str, password_hash: str | None, *, actor: str = ""
    ) -> UserInfo:
        if not _NAME.match(name):
            raise InvalidError(f"{name!r} is not a user name (letters, digits, . _ @ -; up to 64)")
        _check_role(role)
        try:
            with self.db.session() as s:
                s.add(User(name=name, role=role, password_hash=password_hash))
                _audit(s, actor, "user.add", name, f"role {role}")
        except ConflictError:
            raise ConflictError(f"the user {name!r} exists already") from None
        return UserInfo(name, role, password_hash is not None)

    def ensure_user(self, name: str, role: str) -> UserInfo:
        """The user `name`, created (without a password) when missing."""
        with self.db.session(read=True) as s:
            found = s.scalar(select(User).where(User.name == name))
            if found is not None:
                return _user(found)
        try:
            with self.db.session() as s:
                s.add(User(name=name, role=role, password_hash=None))
        except ConflictError:
            pass  # made meanwhile by another process
        with self.db.session(read=True) as s:
            return _user(_find_user(s, name))

    def remove_user(self, name: str, *, actor: str = "", keep_an_admin: bool = False) -> None:
        """Remove a user; their sessions and tokens go with them."""
        with self.db.session() as s:
            user = _find_user(s, name)
            if keep_an_admin:
                _keep_an_admin(s, user, "removing")
            s.delete(user)
            _audit(s, actor, "user.remove", name)

    def users(self) -> list[UserInfo]:
        with self.db.session(read=True) as s:
            return [_user(u) for u in s.scalars(select(User).order_by(User.name))]

    def has_login_users(self) -> bool:
        """Whether anyone can log in (a user with a password, disabled or not): then the
        server runs with authentication."""
        with self.db.session(read=True) as s:
            return bool(s.scalar(select(exists().where(User.password_hash.is_not(None)))))

    def password_hash(self, name: str) -> tuple[UserInfo, str] | None:
        """The user and their password hash, when they may log in."""
        with self.db.session(read=True) as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None or user.password_hash is None or user.disabled:
                return None
            return _user(user), user.password_hash

    def set_role(self, name: str, role: str, *, actor: str, keep_an_admin: bool = False) -> None:
        _check_role(role)
        with self.db.session() as s:
            user = _find_user(s, name)
            if keep_an_admin and role != "admin":
                _keep_an_admin(s, user, "demoting")
            before, user.role = user.role, role
            _audit(s, actor, "user.role", name, f"{before} → {role}")

    def set_disabled(
        self, name: str, disabled: bool, *, actor: str, keep_an_admin: bool = False
    ) -> None:
        """Disable a user (their sessions end; their tokens stop working) or enable them."""
        with self.db.session() as s:
            user = _find_user(s, name)
            if disabled and keep_an_admin:
                _keep_an_admin(s, user, "disabling")
            user.disabled = disabled
            if disabled:
                s.execute(delete(BrowserSession).where(BrowserSession.user_id == user.id))
            _audit(s, actor, "user.disable" if disabled else "user.enable", name)

    def set_password(
        self, name: str, password_hash: str, *, actor: str, keep_session: str | None = None
    ) -> None:
        """A new password; every session of the user ends but `keep_session` (the cookie of
        the one that changed it)."""
        with self.db.session() as s:
            user = _find_user(s, name)
            user.password_hash = password_hash
            ended = delete(BrowserSession).where(BrowserSession.user_id == user.id)
            if keep_session:
                ended = ended.where(BrowserSession.token_hash != digest(keep_session))
            s.execute(ended)
            action = "password.change" if actor == name else "password.reset"
            _audit(s, actor, action, name)

    # ---- API tokens ---------------------------------------------------------------------

    def issue_token(
        self,
        name: str,
        label: str = "",
        *,
        role: str | None = None,
        expires_days: float | None = None,
        actor: str = "",
    ) -> str:
        """A new API token for `name`; only its digest is kept, so it is shown once."""
        return self.new_token(
            name, label, role=role, expires_days=expires_days, actor=actor or name
        )[0]

    def new_token(
        self,
        name: str,
        label: str = "",
        *,
        role: str | None = None,
        expires_days: float | None = None,
        actor: str,
    ) -> tuple[str, TokenInfo]:
        """A new token and how it is listed. `role` at most the user's (empty: the user's
        role, whatever it becomes); `expires_days` empty: it never expires."""
        if role is not None:
            _check_role(role)
        if expires_days is not None and not 0 < expires_days <= MAX_TOKEN_DAYS:
            raise InvalidError(f"a token expires within 1 to {MAX_TOKEN_DAYS} days, or never")
        token = "mm_" + secrets.token_urlsafe(32)
        now = utcnow()
        with self.db.session() as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None:
                raise NotFoundError(f"no user {name!r}; add one with `mitremap serve user add`")
            if role is not None and RANK[role] > RANK[user.role]:
                raise InvalidError(f"a token for {name} can have at most their role, {user.role}")
            row = ApiToken(
                user_id=user.id,
                token_hash=digest(token),
                label=label.strip()[:100],
                created_at=now,
                role=role,
                expires_at=now + timedelta(days=expires_days) if expires_days else None,
            )
            s.add(row)
            s.flush()
            detail = f"#{row.id} {row.label!r} role {role or 'as the user'}"
            if row.expires_at is not None:
                detail += f", expires {row.expires_at:%Y-%m-%d %H:%M} UTC"
            _audit(s, actor, "token.issue", name, detail)
            return token, _token(row, user)

    def authenticate_token(self, token: str) -> UserInfo:
        """The user a bearer token acts as, with the role it may use; 401 when it is unknown,
        expired, or its user is disabled. Notes when it was used (at most once a minute)."""
        with self.db.session(read=True) as s:
            found = s.execute(
                select(ApiToken, User)
                .join(User, ApiToken.user_id == User.id)
                .where(ApiToken.token_hash == digest(token))
            ).first()
            if found is None:
                raise UnauthorizedError("the API token is not valid")
            row, user = found
            info = _token(row, user)
            if info.expired:
                raise UnauthorizedError("the API token has expired; ask for a new one")
            if user.disabled:
                raise UnauthorizedError("the API token's user is disabled")
            acting = UserInfo(user.name, info.role, user.password_hash is not None)
        now = utcnow()
        if info.last_used_at is None or now - _aware(info.last_used_at) >= TOKEN_TOUCH:
            with self.db.session() as s:
                s.execute(update(ApiToken).where(ApiToken.id == info.id).values(last_used_at=now))
        return acting

    def token_user(self, token: str) -> UserInfo | None:
        try:
            return self.authenticate_token(token)
        except UnauthorizedError:
            return None

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        """API tokens, newest first: one user's, or everyone's."""
        query = select(ApiToken, User).join(User, ApiToken.user_id == User.id)
        if user is not None:
            query = query.where(User.name == user)
        with self.db.session(read=True) as s:
            rows = s.execute(query.order_by(ApiToken.id.desc())).all()
            return [_token(t, u) for t, u in rows]

    def revoke_token(self, token_id: int, *, actor: str, owner: str | None = None) -> None:
        """Revoke one token (`owner`: only if it is theirs)."""
        with self.db.session() as s:
            found = s.execute(
                select(ApiToken, User)
                .join(User, ApiToken.user_id == User.id)
                .where(ApiToken.id == token_id)
            ).first()
            if found is None or (owner is not None and found[1].name != owner):
                raise NotFoundError(f"no API token #{token_id}")
            s.delete(found[0])
            _audit(s, actor, "token.revoke", found[1].name, f"#{token_id} {found[0].label!r}")

    # ---- browser sessions ---------------------------------------------------------------

    def new_session(self, user: str) -> tuple[str, SessionInfo]:
        """A logged-in browser session: the cookie value and what it holds."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        with self.db.session() as s:
            owner = _find_user(s, user)
            s.add(
                BrowserSession(
                    token_hash=digest(token),
                    csrf_token=csrf,
                    user_id=owner.id,
                    created_at=now,
                    expires_at=now + SESSION_LIFETIME,
                )
            )
            return token, SessionInfo(_user(owner), csrf)

    def session(self, token: str) -> SessionInfo | None:
        """The live session of this cookie (its user enabled), else None."""
        with self.db.session(read=True) as s:
            found = s.execute(
                select(BrowserSession, User)
                .outerjoin(User, BrowserSession.user_id == User.id)
                .where(BrowserSession.token_hash == digest(token))
            ).first()
            if found is None or _aware(found[0].expires_at) < utcnow():
                return None
            row, user = found
            if user is not None and user.disabled:
                return None
            return SessionInfo(_user(user) if user else None, row.csrf_token)

    def end_session(self, token: str) -> None:
        with self.db.session() as s:
            s.execute(delete(BrowserSession).where(BrowserSession.token_hash == digest(token)))

    def purge_expired(self, login_window: timedelta) -> None:
        """Delete expired sessions, login counts older than `login_window` and idempotency
        keys past their lifetime."""
        now = utcnow()
        with self.db.session() as s:
            s.execute(delete(BrowserSession).where(BrowserSession.expires_at < now))
            s.execute(delete(LoginAttempt).where(LoginAttempt.window_start < now - login_window))
            s.execute(
                delete(IdempotencyKey).where(IdempotencyKey.created_at < now - IDEMPOTENCY_LIFETIME)
            )

    # ---- login counting -----------------------------------------------------------------

    def count_login(self, limits: Sequence[tuple[str, int]], window: timedelta) -> None:
        """Count one login attempt against each (key, limit), atomically; when any key is
        past its limit, nothing is counted and the attempt is refused (429)."""
        now = utcnow()
        with self.db.session() as s:
            for key, limit in limits:
                count, start = s.execute(_count_statement(self.db.kind, key, now, window)).one()
                if count > limit:  # the session rolls back: this attempt is not counted
                    left = _aware(start) + window - now
                    minutes = max(1, int(left.total_seconds() // 60) + 1)
                    raise TooManyAttemptsError(
                        f"too many failed logins {_what(key)}; try again in {minutes} min"
                    )

    def uncount_login(self, keys: Sequence[str]) -> None:
        """Take back one counted attempt of each key (the login succeeded)."""
        with self.db.session() as s:
            s.execute(
                update(LoginAttempt)
                .where(LoginAttempt.key.in_(keys), LoginAttempt.count > 0)
                .values(count=LoginAttempt.count - 1)
            )

    # ---- audit and secrets --------------------------------------------------------------

    def audit_events(self, page: int = 1, per_page: int = 50) -> dict[str, Any]:
        """The audit log, newest first."""
        with self.db.session(read=True) as s:
            total = s.scalar(select(func.count()).select_from(AuditEvent)) or 0
            rows = s.scalars(
                select(AuditEvent)
                .order_by(AuditEvent.id.desc())
                .offset((page - 1) * per_page)
                .limit(per_page)
            )
            items = [
                {
                    "id": e.id,
                    "at": iso(e.at),
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "detail": e.detail,
                }
                for e in rows
            ]
        return {"items": items, "total": total, "page": page, "per_page": per_page}

    def secret(self, key: str) -> str:
        """A random secret kept in the settings (made once, shared by every server process
        on this database)."""
        with self.db.session(read=True) as s:
            found = s.get(Setting, key)
            if found is not None:
                return found.value
        try:
            with self.db.session() as s:
                s.add(Setting(key=key, value=secrets.token_hex(32)))
        except ConflictError:
            pass  # another process made it first
        with self.db.session(read=True) as s:
            made = s.get(Setting, key)
            assert made is not None
            return made.value


# ---- helpers ------------------------------------------------------------------------------


def _count_statement(kind: str, key: str, now: datetime, window: timedelta) -> Insert:
    """`INSERT … ON CONFLICT (key) DO UPDATE … RETURNING count, window_start`: one statement
    that starts a new window or adds one to the current one."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if kind == "postgresql" else sqlite.insert
    table = LoginAttempt.__table__
    old = table.c.window_start < now - window
    statement = insert(LoginAttempt).values(key=key[:200], count=1, window_start=now)
    return statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "count": case((old, 1), else_=table.c.count + 1),
            "window_start": case((old, now), else_=table.c.window_start),
        },
    ).returning(table.c.count, table.c.window_start)


def _what(key: str) -> str:
    kind = key.partition(":")[0]
    return "for this user" if kind == "name" else "from this address"


def _audit(s: Session, actor: str, action: str, target: str, detail: str = "") -> None:
    s.add(
        AuditEvent(
            at=utcnow(),
            actor=(actor or "cli")[:64],
            action=action,
            target=target[:200],
            detail=detail[:2000],
        )
    )


def _keep_an_admin(s: Session, user: User, doing: str) -> None:
    """Refuse to leave no enabled admin who can log in."""
    if user.role != "admin" or user.disabled or user.password_hash is None:
        return
    others = s.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.id != user.id,
            User.role == "admin",
            User.disabled.is_(False),
            User.password_hash.is_not(None),
        )
    )
    if not others:
        raise ConflictError(f"{doing} {user.name} would leave no admin who can log in")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")


def _find_user(s: Session, name: str) -> User:
    user = s.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"no user {name!r}")
    return user


def _user(user: User) -> UserInfo:
    return UserInfo(user.name, user.role, user.password_hash is not None, bool(user.disabled))


def _token(row: ApiToken, user: User) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        user=user.name,
        label=row.label,
        role=lower_role(row.role or user.role, user.role),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
