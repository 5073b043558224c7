"""Console accounts: users (argon2id hashes), bearer tokens, server-side sessions, sign-in limits.

Nothing secret is stored in the clear: a password only as its argon2id hash, a bearer token and a
session id only as their SHA-256 (both are 32 random bytes, so a plain hash is enough; a stolen
database gives no credential). A session carries its own CSRF token, returned at sign-in and
required on every state-changing request made with the cookie.

``SignIn`` checks a username and password, keeps failed attempts per user and per client address
(``SignInLimiter``, in memory: a restart forgets them, and several service instances count apart)
and audits every success, failure and lockout — never the password.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, select, update

from gridwatch.console.roles import ROLES
from gridwatch.core.audit import AuditLog
from gridwatch.core.db import Database
from gridwatch.core.db.schema import api_tokens, sessions, users

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes anything; a megabyte "password" only burns CPU
TOKEN_PREFIX = "gwc_"  # noqa: S105 - a prefix that marks console tokens, not a secret


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AccountError(ValueError):
    """A refused account change (unknown user, name taken, bad role or password)."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    grids: tuple[str, ...]
    registries: tuple[str, ...]
    staff_id: str | None
    disabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime

    def public(self) -> dict[str, Any]:
        """What the console shows of a user (``GET /api/me``): never a hash."""
        return {
            "name": self.name,
            "role": self.role,
            "grids": list(self.grids),
            "registries": list(self.registries),
            "staff_id": self.staff_id,
        }

    @classmethod
    def from_row(cls, row: Any) -> User:
        m = row._mapping
        return cls(
            name=m["name"],
            role=m["role"],
            grids=tuple(m["grids"]),
            registries=tuple(m["registries"]),
            staff_id=m["staff_id"],
            disabled=bool(m["disabled"]),
            created_at=m["created_at"],
            updated_at=m["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class SessionInfo:
    user: User
    csrf: str
    expires_at: dt.datetime


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"a password has at most {MAX_PASSWORD} characters")


class Accounts:
    """Users, tokens and sessions in the service database (synchronous: call from a worker thread)."""

    def __init__(
        self,
        database: Database,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._db = database
        self._hasher = hasher or PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) defaults
        self._clock = clock
        self._dummy_hash: str | None = None

    # -- users --------------------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        role: str,
        password: str,
        *,
        grids: Sequence[str] = (),
        registries: Sequence[str] = (),
        staff_id: str | None = None,
    ) -> User:
        if not NAME_PATTERN.match(name):
            raise AccountError(f"user name {name!r} must be 1-64 letters, digits, '_', '.', '@' or '-'")
        if role not in ROLES:
            raise AccountError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        check_password(password)
        password_hash = self._hasher.hash(password)
        now = self._clock()

        def add(conn: Connection) -> None:
            if conn.execute(select(users.c.name).where(users.c.name == name)).first() is not None:
                raise AccountError(f"user {name!r} exists already")
            conn.execute(
                users.insert().values(
                    name=name,
                    role=role,
                    grids=list(dict.fromkeys(grids)),
                    registries=list(dict.fromkeys(registries)),
                    staff_id=staff_id,
                    password_hash=password_hash,
                    disabled=0,
                    created_at=now,
                    updated_at=now,
                )
            )

        self._db.transaction(add, what="user add")
        user = self.user(name)
        assert user is not None
        return user

    def user(self, name: str) -> User | None:
        row = self._db.transaction(
            lambda c: c.execute(select(users).where(users.c.name == name)).first(), what="user read", read_only=True
        )
        return None if row is None else User.from_row(row)

    def list_users(self) -> list[User]:
        rows = self._db.transaction(
            lambda c: c.execute(select(users).order_by(users.c.name)).all(), what="user list", read_only=True
        )
        return [User.from_row(row) for row in rows]

    def set_password(self, name: str, password: str) -> None:
        """A new password; the user's sessions end (whoever knew the old one is signed out)."""
        check_password(password)
        password_hash = self._hasher.hash(password)
        self._change(name, password_hash=password_hash)

    def disable(self, name: str) -> None:
        """The user can no longer sign in; their sessions end and their tokens stop working."""
        self._change(name, disabled=1)

    def _change(self, name: str, **values: Any) -> None:
        now = self._clock()

        def change(conn: Connection) -> None:
            done = conn.execute(update(users).where(users.c.name == name).values(**values, updated_at=now))
            if done.rowcount == 0:
                raise AccountError(f"no user {name!r}")
            conn.execute(delete(sessions).where(sessions.c.user == name))

        self._db.transaction(change, what="user change")

    def verify_password(self, name: str, password: str) -> User | None:
        """The user, if enabled and ``password`` is theirs. Unknown names cost a hash too (no timing oracle)."""
        row = self._db.transaction(
            lambda c: c.execute(select(users).where(users.c.name == name)).first(), what="sign-in", read_only=True
        )
        if row is None or len(password) > MAX_PASSWORD:
            self._burn(password[:MAX_PASSWORD])
            return None
        stored = str(row._mapping["password_hash"])
        try:
            self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        user = User.from_row(row)
        if user.disabled:
            return None
        if self._hasher.check_needs_rehash(stored):
            self._change(name, password_hash=self._hasher.hash(password))
        return user

    def _burn(self, password: str) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        with contextlib.suppress(VerificationError, InvalidHashError):
            self._hasher.verify(self._dummy_hash, password)

    # -- bearer tokens ----------------------------------------------------------------------------------

    def create_token(self, name: str) -> str:
        """A new bearer token acting as user ``name``; returned once, only its SHA-256 is kept."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()

        def create(conn: Connection) -> None:
            if conn.execute(select(users.c.name).where(users.c.name == name)).first() is None:
                raise AccountError(f"no user {name!r}")
            conn.execute(
                api_tokens.insert().values(
                    token_id=secrets.token_hex(16), token_sha256=sha256_hex(token), name=name, created_at=now, revoked=0
                )
            )

        self._db.transaction(create, what="token create")
        return token

    def user_of_token(self, token: str) -> User | None:
        """The enabled user a live token acts as (its last use is recorded), or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        digest = sha256_hex(token)
        now = self._clock()

        def find(conn: Connection) -> Any:
            row = conn.execute(
                select(users)
                .join(api_tokens, api_tokens.c.name == users.c.name)
                .where(api_tokens.c.token_sha256 == digest, api_tokens.c.revoked == 0, users.c.disabled == 0)
            ).first()
            if row is not None:
                conn.execute(update(api_tokens).where(api_tokens.c.token_sha256 == digest).values(last_used_at=now))
            return row

        row = self._db.transaction(find, what="token check")
        return None if row is None else User.from_row(row)

    # -- sessions -----------------------------------------------------------------------------------

    def create_session(self, name: str, ttl_s: float) -> tuple[str, str]:
        """``(session_id, csrf)`` of a new session of ``name``; only the id's SHA-256 is stored."""
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock()

        def create(conn: Connection) -> None:
            conn.execute(delete(sessions).where(sessions.c.expires_at <= now))  # the table stays small
            conn.execute(
                sessions.insert().values(
                    session_id_sha256=sha256_hex(session_id),
                    user=name,
                    csrf=csrf,
                    created_at=now,
                    expires_at=now + dt.timedelta(seconds=ttl_s),
                )
            )

        self._db.transaction(create, what="session create")
        return session_id, csrf

    def session(self, session_id: str) -> SessionInfo | None:
        if not session_id or len(session_id) > 128:
            return None
        digest = sha256_hex(session_id)
        now = self._clock()
        row = self._db.transaction(
            lambda c: c.execute(
                select(users, sessions.c.csrf, sessions.c.expires_at)
                .join(sessions, sessions.c.user == users.c.name)
                .where(sessions.c.session_id_sha256 == digest, sessions.c.expires_at > now, users.c.disabled == 0)
            ).first(),
            what="session check",
            read_only=True,
        )
        if row is None:
            return None
        return SessionInfo(User.from_row(row), str(row._mapping["csrf"]), row._mapping["expires_at"])

    def end_session(self, session_id: str) -> None:
        digest = sha256_hex(session_id)
        self._db.transaction(
            lambda c: c.execute(delete(sessions).where(sessions.c.session_id_sha256 == digest)), what="session end"
        )


class SignInLimiter:
    """Failed sign-ins per user and per client address in a sliding window (in memory, per process).

    After ``max_failures`` failures within ``window_s`` for a user or for an address, further attempts
    on that key are refused, without checking the password, until the oldest failure leaves the window.
    """

    def __init__(
        self, *, max_failures: int = 5, window_s: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max = max_failures
        self._window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, username: str, address: str) -> float | None:
        """Seconds until an attempt is allowed again, or None when it is allowed now."""
        now = self._clock()
        with self._lock:
            waits = [self._wait(key, now) for key in self._keys(username, address)]
        longest = max(waits)
        return longest if longest > 0 else None

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in self._keys(username, address):
                self._failures.setdefault(key, deque()).append(now)
            if len(self._failures) > 10_000:  # bounded memory against a spray of names
                self._prune(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{username}", None)

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return f"user:{username}", f"addr:{address}"

    def _wait(self, key: str, now: float) -> float:
        times = self._failures.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - self._window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        if len(times) < self._max:
            return 0.0
        return times[-self._max] + self._window_s - now

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            self._wait(key, now)


class SignInRefusedError(Exception):
    def __init__(self, status: int, detail: str, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s


INVALID = "invalid username or password"


class SignIn:
    """Username + password → a new session, rate-limited and audited (synchronous: run in a worker thread)."""

    def __init__(self, accounts: Accounts, limiter: SignInLimiter, audit: AuditLog, *, session_ttl_s: float) -> None:
        self._accounts = accounts
        self._limiter = limiter
        self._audit = audit
        self._ttl_s = session_ttl_s

    @property
    def audit(self) -> AuditLog:
        return self._audit

    def __call__(self, username: str, password: str, address: str) -> tuple[User, str, str]:
        """``(user, session_id, csrf)``; ``SignInRefusedError`` 401 (wrong) or 429 (limited)."""
        wait = self._limiter.retry_after(username, address)
        if wait is not None:
            self._audit.append(
                "console.sign_in.locked", actor=_actor(username), target="console", details={"address": address}
            )
            raise SignInRefusedError(429, "too many failed sign-ins; try again later", max(1, int(wait + 0.999)))
        user = self._accounts.verify_password(username, password)
        if user is None:
            self._limiter.failed(username, address)
            self._audit.append(
                "console.sign_in.failed", actor=_actor(username), target="console", details={"address": address}
            )
            raise SignInRefusedError(401, INVALID)
        self._limiter.succeeded(username)
        session_id, csrf = self._accounts.create_session(user.name, self._ttl_s)
        self._audit.append(
            "console.sign_in", actor=user.name, target="console", details={"address": address, "role": user.role}
        )
        return user, session_id, csrf


def _actor(username: str) -> str:
    """A claimed name as an audit actor: only a well-formed one, else a placeholder (no junk in the log)."""
    return username if NAME_PATTERN.match(username) else "unknown"
