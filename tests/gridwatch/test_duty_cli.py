"""`gridwatch duty who` and the duty warnings of `gridwatch config check`, as an integrator runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gridwatch.cli import EXIT_CONFIG, main
from tests.support.paths import REPO_ROOT

# Two grids under one community; g1 has day and night shifts with an evening gap (18:00-22:00), which
# `config check` warns of. 2026-12-02 is a Wednesday. The holiday override is in the past, so that the
# warnings, which look at the week from the real now, do not depend on the day the tests run.
SITE = """\
grids:
  - {id: community, name: Riverside community}
  - {id: g1, name: Grid 1, parent: community}
  - {id: g2, name: Grid 2, parent: community}
channels:
  - {id: push, type: console}
staff:
  - {id: wang, name: Wang, channels: [push]}
  - {id: li, name: Li, channels: [push]}
  - {id: zhao, name: Zhao, channels: [push]}
duty:
  - grid: community
    timezone: Asia/Shanghai
    shifts:
      - {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00", staff: [zhao]}
  - grid: g1
    timezone: Asia/Shanghai
    shifts:
      - {days: [mon, tue, wed, thu, fri, sat, sun], from: "08:00", to: "18:00", staff: [li]}
      - {days: [mon, tue, wed, thu, fri, sat, sun], from: "22:00", to: "08:00", staff: [wang]}
    overrides:
      - {date: 2025-12-25, staff: [zhao, li]}
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    directory = tmp_path / "site"
    directory.mkdir()
    (directory / "site.yaml").write_text(SITE)
    return directory


@pytest.mark.parametrize(
    ("grid", "at", "expected"),
    [
        pytest.param("g1", "2026-12-02T10:00+08:00", ["li"], id="day-shift"),
        pytest.param("g1", "2026-12-02T02:00Z", ["li"], id="utc-z"),
        pytest.param("g1", "2026-12-02T18:00+08:00", [], id="gap-is-nobody"),
        pytest.param("g1", "2026-12-02T23:59+08:00", ["wang"], id="night-before-midnight"),
        pytest.param("g1", "2026-12-03T00:30+08:00", ["wang"], id="night-after-midnight"),
        pytest.param("g1", "2025-12-25T19:00+08:00", ["li", "zhao"], id="holiday-override"),
        pytest.param("g2", "2026-12-02T10:00+08:00", [], id="grid-without-roster"),
        pytest.param("community", "2026-12-02T10:00+01:00", ["zhao"], id="berlin-offset"),
    ],
)
def test_duty_who_prints_the_staff_on_duty(
    site: Path, capsys: pytest.CaptureFixture[str], grid: str, at: str, expected: list[str]
) -> None:
    assert main(["duty", "who", "-c", str(site), "--grid", grid, "--at", at]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == expected
    assert err == ""


def test_duty_who_defaults_to_now(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["duty", "who", "-c", str(site), "--grid", "community"]) == 0
    assert json.loads(capsys.readouterr().out) == ["zhao"]  # on duty around the clock


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--grid", "nope"], "unknown grid 'nope' (grids: community, g1, g2)", id="unknown-grid"),
        pytest.param(["--grid", "g1", "--at", "2026-12-02T10:00"], "has no offset: give one", id="naive-at"),
        pytest.param(["--grid", "g1", "--at", "tomorrow"], "not an ISO 8601 date and time", id="bad-at"),
    ],
)
def test_duty_who_refuses_bad_input(
    site: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["duty", "who", "-c", str(site), *argv]) == EXIT_CONFIG
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err


def test_duty_who_reports_config_errors_at_file_and_line(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = site / "site.yaml"
    config.write_text(SITE.replace("staff: [wang]", "staff: [nobody]"))
    assert main(["duty", "who", "-c", str(site), "--grid", "g1", "--at", "2026-12-02T10:00Z"]) == EXIT_CONFIG
    line = SITE.splitlines().index(
        '      - {days: [mon, tue, wed, thu, fri, sat, sun], from: "22:00", to: "08:00", staff: [wang]}'
    )
    assert f"{config}:{line + 1}: duty[1].shifts[1].staff[0]: unknown staff 'nobody'" in capsys.readouterr().err


def test_duty_who_as_a_command(site: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridwatch",
            "duty",
            "who",
            "-c",
            str(site),
            "--grid",
            "g1",
            "--at",
            "2026-12-02T23:00+08:00",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["wang"]
    unknown = subprocess.run(
        [sys.executable, "-m", "gridwatch", "duty", "who", "-c", str(site), "--grid", "nope"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=60,
        check=False,
    )
    assert unknown.returncode == EXIT_CONFIG
    assert "unknown grid 'nope'" in unknown.stderr


def test_config_check_warns_of_a_roster_gap_at_its_line(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(site)]) == 0
    out, err = capsys.readouterr()
    assert ": ok (" in out
    line = SITE.splitlines().index("  - grid: g1") + 1
    warning = re.search(rf"^warning: {re.escape(str(site / 'site.yaml'))}:{line}: duty\[1\]: (.*)$", err, re.MULTILINE)
    assert warning is not None, err
    assert warning.group(1).startswith("nobody is on duty for grid g1 every day 18:00-22:00 (Asia/Shanghai)")
    assert warning.group(1).endswith("alerts then climb to the parent grid at once (community)")
    assert err.count("warning:") == 1  # the community roster covers the whole week


def test_config_check_warns_of_an_override_naming_nobody(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (site / "site.yaml").write_text(SITE.replace("staff: [zhao, li]", "staff: []"))
    assert main(["config", "check", str(site)]) == 0
    err = capsys.readouterr().err
    line = next(i for i, text in enumerate(SITE.splitlines(), 1) if "date: 2025-12-25" in text)
    assert "duty[1].overrides[0]: this override names nobody: nobody is on duty for grid g1 on 2025-12-25" in err
    assert f"site.yaml:{line}: duty[1].overrides[0]" in err
