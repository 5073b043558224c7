"""`gridwatch users ...` and `gridwatch tokens create`, run in-process against a site's database."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from gridwatch.cli import main
from gridwatch.console.accounts import Accounts
from gridwatch.core.audit import verify
from gridwatch.core.config.loader import load_config
from gridwatch.wiring import build_database

SITE = """\
service:
  data_dir: {data_dir}
  http: {{enabled: false}}
grids:
  - {{id: street, name: Street}}
  - {{id: g1, name: Grid 1, parent: street}}
staff:
  - {{id: wang, name: Wang, grids: [g1], channels: [push]}}
channels:
  - {{id: push, type: kafka}}
registries:
  - name: watch
    purpose: test registry
    legal_basis: test fixture
    retention_days: 30
"""
PASSWORD = "a long enough password"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    config = tmp_path / "gridwatch.yaml"
    config.write_text(SITE.format(data_dir=tmp_path / "data"))
    return config


def run(
    site: Path, *args: str, stdin: str = "", capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    command, action, *rest = args
    code = main([command, action, "-c", str(site), *rest])
    out, err = capsys.readouterr()
    return code, out, err


def test_users_are_added_listed_disabled_and_get_tokens(
    site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def cli(*args: str, stdin: str = "") -> tuple[int, str, str]:
        return run(site, *args, stdin=stdin, capsys=capsys, monkeypatch=monkeypatch)

    code, out, err = cli(
        "users", "add", "ops1", "--role", "operator", "--grid", "g1", "--staff-id", "wang", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert cli("users", "add", "audit1", "--role", "auditor", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    code, out, _ = cli("users", "list")
    listed = [json.loads(line) for line in out.splitlines()]
    assert listed == [
        {"name": "audit1", "role": "auditor", "grids": [], "registries": [], "staff_id": None, "disabled": False},
        {"name": "ops1", "role": "operator", "grids": ["g1"], "registries": [], "staff_id": "wang", "disabled": False},
    ]
    assert "argon2" not in out

    code, out, _ = cli("tokens", "create", "ops1")
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("gwc_")
    loaded = load_config(site)
    with build_database(loaded) as database:
        accounts = Accounts(database)
        user = accounts.user_of_token(token)
        assert user is not None
        assert user.name == "ops1"
        assert accounts.verify_password("ops1", PASSWORD) is not None

    assert cli("users", "passwd", "ops1", "--password-stdin", stdin="the new password\n")[0] == 0
    assert cli("users", "disable", "ops1")[0] == 0
    with build_database(loaded) as database:
        accounts = Accounts(database)
        assert accounts.user_of_token(token) is None
        assert accounts.verify_password("ops1", "the new password") is None
    code, out, _ = cli("users", "list")
    assert json.loads(out.splitlines()[1])["disabled"] is True

    audit = site.parent / "data" / "audit.jsonl"
    assert verify(audit).ok
    text = audit.read_text()
    assert PASSWORD not in text
    assert token not in text
    actions = [json.loads(line)["action"] for line in text.splitlines()]
    assert actions == [
        "console.user.added",
        "console.user.added",
        "console.token.created",
        "console.user.password_set",
        "console.user.disabled",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--role", "root"), "unknown role 'root'"),
        (("--role", "operator", "--grid", "g9"), "unknown grid 'g9'"),
        (("--role", "registrar", "--registry", "nope"), "unknown registry 'nope'"),
        (("--role", "staff", "--staff-id", "ghost"), "unknown staff id 'ghost'"),
        (("--role", "operator"), "an operator needs at least one --grid"),
        (("--role", "registrar"), "a registrar needs at least one --registry"),
        (("--role", "staff"), "a staff user needs --staff-id"),
    ],
)
def test_unknown_roles_grids_registries_and_staff_are_refused(
    site: Path,
    args: tuple[str, ...],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = run(
        site, "users", "add", "x1", *args, "--password-stdin", stdin=PASSWORD, capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 2
    assert message in err


def test_a_short_password_and_unknown_users_are_refused(
    site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(
        site, "users", "add", "x1", "--role", "admin", "--password-stdin", stdin="short\n", capsys=capsys,
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 2
    assert "at least 8" in err
    code, _, err = run(site, "tokens", "create", "ghost", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1
    assert "no user 'ghost'" in err
