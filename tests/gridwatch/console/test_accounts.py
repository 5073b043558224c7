"""Console accounts on SQLite and PostgreSQL: hashes, tokens, sessions, sign-in limits and their audit."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from gridwatch.console.accounts import (
    AccountError,
    Accounts,
    SignIn,
    SignInLimiter,
    SignInRefusedError,
    sha256_hex,
)
from gridwatch.core.audit import AuditLog
from gridwatch.core.db.schema import api_tokens, sessions, users
from tests.support.db import Databases

PASSWORD = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def test_a_password_is_kept_only_as_an_argon2id_hash(databases: Databases) -> None:
    database = databases()
    accounts = Accounts(database)
    user = accounts.add_user("ops1", "operator", PASSWORD, grids=["g1"], staff_id="wang")
    assert user.public() == {"name": "ops1", "role": "operator", "grids": ["g1"], "registries": [], "staff_id": "wang"}
    with database.engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert accounts.verify_password("ops1", PASSWORD) == user
    assert accounts.verify_password("ops1", "wrong password") is None
    assert accounts.verify_password("nobody", PASSWORD) is None


def test_bad_accounts_are_refused(databases: Databases) -> None:
    accounts = Accounts(databases(), hasher=FAST)
    accounts.add_user("ops1", "operator", PASSWORD)
    with pytest.raises(AccountError, match="exists already"):
        accounts.add_user("ops1", "operator", PASSWORD)
    with pytest.raises(AccountError, match="unknown role"):
        accounts.add_user("ops2", "root", PASSWORD)
    with pytest.raises(AccountError, match="at least"):
        accounts.add_user("ops2", "operator", "short")
    with pytest.raises(AccountError, match="user name"):
        accounts.add_user("../x", "operator", PASSWORD)
    with pytest.raises(AccountError, match="no user"):
        accounts.disable("ghost")


def test_disabling_and_a_new_password_end_sessions_and_tokens(databases: Databases) -> None:
    accounts = Accounts(databases(), hasher=FAST)
    accounts.add_user("ops1", "operator", PASSWORD)
    session_id, csrf = accounts.create_session("ops1", 3600)
    info = accounts.session(session_id)
    assert info is not None
    assert info.user.name == "ops1"
    assert info.csrf == csrf
    accounts.set_password("ops1", "another long password")
    assert accounts.session(session_id) is None
    assert accounts.verify_password("ops1", PASSWORD) is None
    assert accounts.verify_password("ops1", "another long password") is not None

    token = accounts.create_token("ops1")
    assert accounts.user_of_token(token) is not None
    accounts.disable("ops1")
    assert accounts.user_of_token(token) is None
    assert accounts.verify_password("ops1", "another long password") is None


def test_only_hashes_of_tokens_and_session_ids_are_stored(databases: Databases) -> None:
    database = databases()
    clock = Clock()
    accounts = Accounts(database, hasher=FAST, clock=clock)
    accounts.add_user("bot", "integrator", PASSWORD)
    token = accounts.create_token("bot")
    assert token.startswith("gwc_")
    session_id, _ = accounts.create_session("bot", 60)
    with database.engine.connect() as conn:
        token_row = conn.execute(select(api_tokens)).one()._mapping
        session_row = conn.execute(select(sessions)).one()._mapping
    assert token_row["token_sha256"] == sha256_hex(token)
    assert token not in json.dumps({k: str(v) for k, v in token_row.items()})
    assert session_row["session_id_sha256"] == sha256_hex(session_id)
    assert token_row["last_used_at"] is None
    user = accounts.user_of_token(token)
    assert user is not None
    assert user.name == "bot"
    assert accounts.user_of_token(token + "x") is None
    assert accounts.user_of_token("not-a-token") is None
    # Sessions expire.
    clock.now += dt.timedelta(seconds=61)
    assert accounts.session(session_id) is None
    with pytest.raises(AccountError):
        accounts.create_token("ghost")


def test_sign_in_is_limited_per_user_and_per_address_and_audited(databases: Databases, tmp_path: Path) -> None:
    accounts = Accounts(databases(), hasher=FAST)
    accounts.add_user("ops1", "operator", PASSWORD)
    accounts.add_user("ops2", "operator", PASSWORD)
    now = [1000.0]
    limiter = SignInLimiter(max_failures=5, window_s=300, clock=lambda: now[0])
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        sign_in = SignIn(accounts, limiter, audit, session_ttl_s=60)
        user, session_id, csrf = sign_in("ops1", PASSWORD, "10.0.0.1")
        assert user.name == "ops1"
        assert session_id
        assert csrf
        for _ in range(5):
            with pytest.raises(SignInRefusedError) as refused:
                sign_in("ops1", "wrong password", "10.0.0.2")
            assert refused.value.status == 401
        # The user is locked, even with the right password, from any address.
        with pytest.raises(SignInRefusedError) as locked:
            sign_in("ops1", PASSWORD, "10.0.0.3")
        assert locked.value.status == 429
        assert locked.value.retry_after_s == 300
        # The address is locked for every user.
        with pytest.raises(SignInRefusedError) as by_address:
            sign_in("ops2", PASSWORD, "10.0.0.2")
        assert by_address.value.status == 429
        sign_in("ops2", PASSWORD, "10.0.0.4")
        now[0] += 301
        sign_in("ops1", PASSWORD, "10.0.0.2")

    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    actions = [r["action"] for r in records]
    assert actions == [
        "console.sign_in",
        *["console.sign_in.failed"] * 5,
        "console.sign_in.locked",
        "console.sign_in.locked",
        "console.sign_in",
        "console.sign_in",
    ]
    assert records[1]["actor"] == "ops1"
    assert records[1]["details"] == {"address": "10.0.0.2"}
    text = (tmp_path / "audit.jsonl").read_text()
    assert PASSWORD not in text
    assert "wrong password" not in text
