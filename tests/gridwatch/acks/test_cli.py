"""`gridwatch staff token`: a staff member's API token, from the real signing secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridwatch.cli import main
from notifier.ack_links import AckLinks

SECRET = "a-test-signing-secret-of-32-chars!"
CONFIG = """\
service:
  data_dir: data
channels:
  - id: console
    type: console
staff:
  - id: wang
    name: Wang
    channels: [console]
notifier:
  acks:
    signing_secret: ${GW_TEST_ACK_SECRET}
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "gridwatch.yaml").write_text(CONFIG)
    return tmp_path


def test_prints_the_token_on_its_last_line(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GW_TEST_ACK_SECRET", SECRET)
    assert main(["staff", "token", "-c", str(config_dir), "wang"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert AckLinks(SECRET, 60, "").staff_of_token(token) == "wang"


def test_unknown_staff_is_exit_2(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GW_TEST_ACK_SECRET", SECRET)
    assert main(["staff", "token", "-c", str(config_dir), "li"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "li" in captured.err


def test_needs_the_real_secret(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GW_TEST_ACK_SECRET", raising=False)
    assert main(["staff", "token", "-c", str(config_dir), "wang"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "GW_TEST_ACK_SECRET" in captured.err


def test_no_secret_configured_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "gridwatch.yaml").write_text(CONFIG.split("notifier:")[0])
    assert main(["staff", "token", "-c", str(tmp_path), "wang"]) == 2
    assert "signing_secret" in capsys.readouterr().err
