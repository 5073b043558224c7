"""`gridwatch run --role`: a role other than `all` needs Kafka and PostgreSQL, said as a config error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gridwatch.core.config.issues import ConfigError
from gridwatch.core.config.loader import load_config
from gridwatch.roles import Role, check_role


def write(tmp_path: Path, transport: str, url: str) -> Path:
    config = tmp_path / "gridwatch.yaml"
    config.write_text(
        f"service:\n  data_dir: {tmp_path / 'data'}\n  http: {{enabled: false}}\n"
        f"  database:\n    url: {url}\n  transport:\n    driver: {transport}\n"
    )
    return config


@pytest.mark.parametrize(
    ("transport", "url", "wrong"),
    [
        ("inprocess", "sqlite:///x.db", ["service.transport.driver", "service.database.url"]),
        ("kafka", "sqlite:///x.db", ["service.database.url"]),
        ("inprocess", "postgresql://u@127.0.0.1/db", ["service.transport.driver"]),
        ("kafka", "postgresql://u@127.0.0.1/db", []),
    ],
)
def test_roles_other_than_all_need_kafka_and_postgresql(
    tmp_path: Path, transport: str, url: str, wrong: list[str]
) -> None:
    loaded = load_config(write(tmp_path, transport, url))
    check_role(loaded, Role.ALL)  # the embedded single process runs on anything
    for role in (Role.RECOGNITION, Role.RULES, Role.NOTIFIER, Role.CONSOLE):
        if not wrong:
            check_role(loaded, role)
            continue
        with pytest.raises(ConfigError) as raised:
            check_role(loaded, role)
        assert [issue.key_path for issue in raised.value.issues] == wrong
        assert all(issue.line is not None for issue in raised.value.issues)  # file:line of the key


def test_the_cli_says_what_is_missing_with_file_and_line(tmp_path: Path) -> None:
    config = write(tmp_path, "inprocess", "sqlite:///x.db")
    result = subprocess.run(
        [sys.executable, "-m", "gridwatch", "run", "-c", str(config), "--role", "rules", "--for", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert f"{config}:7: service.transport.driver: --role rules needs the kafka transport" in result.stderr
    assert f"{config}:5: service.database.url: --role rules needs a PostgreSQL database" in result.stderr
    assert "Traceback" not in result.stderr
