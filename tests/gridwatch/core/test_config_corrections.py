"""`kind: corrections` registries in the config: errors at file:line:key, and the routes `config check` warns about."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gridwatch.core.config.loader import ConfigError, load_config
from notifier.routing import corrections_route_warnings
from tests.support.paths import REPO_ROOT

REGISTRY = """\
registries:
  - name: corr
    kind: {kind}
    purpose: community corrections supervision
    legal_basis: Community Corrections Law art. 29
    retention_days: 365
"""

ROUTING = """\
grids:
  - {{id: community, name: Community}}
  - {{id: g1, name: Grid 1, parent: community}}
staff:
  - {{id: wang, name: Wang, roles: [grid_worker], grids: [g1], channels: [push]}}
  - {{id: sun, name: Sun, roles: [{role}], grids: [community], channels: [push]}}
channels:
  - {{id: push, type: kafka}}
notifier:
  acks:
    signing_secret: ${{GW_ACK_SECRET}}
routes:
  - match: {{registry: corr}}
    notify: [role:corrections, on_duty]
    require_ack: true
    escalate:
      - {{after_s: 300, notify: [staff:sun]}}
      - {{after_s: 600, notify: [on_duty_parent]}}
  - match: {{registry: corr}}
    notify: [staff:sun]
"""

ENV = {"GW_ACK_SECRET": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "site.yaml").write_text(text)
    return tmp_path


def issues_of(tmp_path: Path, text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), ENV)
    return [(i.line, i.key_path, i.reason) for i in caught.value.issues]


def test_a_corrections_registry_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, REGISTRY.format(kind="corrections")), {}).config
    assert config.registries[0].corrections
    assert not load_config(write(tmp_path, REGISTRY.format(kind="watchlist")), {}).config.registries[0].corrections


def test_an_unknown_kind_is_an_error_at_file_line_and_key(tmp_path: Path) -> None:
    [(line, key, reason)] = issues_of(tmp_path, REGISTRY.format(kind="probation"))
    assert (line, key) == (3, "registries[0].kind")
    assert reason == "Input should be 'watchlist' or 'corrections'"


def test_routes_without_anybody_in_the_corrections_role_are_an_error_at_the_registry(tmp_path: Path) -> None:
    issues = issues_of(tmp_path, REGISTRY.format(kind="corrections") + ROUTING.format(role="officer"))
    assert (3, "registries[0].kind") in [(line, key) for line, key, _ in issues]
    reason = next(r for _, key, r in issues if key == "registries[0].kind")
    assert (
        reason
        == "a corrections registry's alerts go only to staff with the role 'corrections', and no staff member has it"
    )


def test_targets_that_may_reach_other_staff_are_warned_about_at_their_line(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, REGISTRY.format(kind="corrections") + ROUTING.format(role="corrections")), ENV)
    issues = [loaded.issue(key, reason) for key, reason in corrections_route_warnings(loaded.config)]
    assert [(i.line, i.key_path) for i in issues] == [
        (20, "routes[0].notify[1]"),
        (24, "routes[0].escalate[1].notify[0]"),
    ]
    assert issues[0].reason.startswith("on_duty may notify staff without the role 'corrections'")
    assert "narrowed" in issues[0].reason


def test_a_route_without_notify_defaults_to_on_duty_and_is_warned_about(tmp_path: Path) -> None:
    text = REGISTRY.format(kind="corrections") + ROUTING.format(role="corrections").replace(
        "    notify: [staff:sun]\n", "    continue: true\n"
    )
    loaded = load_config(write(tmp_path, text), ENV)
    assert ("routes", 1) in [key for key, _ in corrections_route_warnings(loaded.config)]


def test_config_check_prints_the_warnings_with_file_and_line(tmp_path: Path) -> None:
    site = write(tmp_path, REGISTRY.format(kind="corrections") + ROUTING.format(role="corrections"))
    done = subprocess.run(
        [sys.executable, "-m", "gridwatch", "config", "check", str(site)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"warning: {site / 'site.yaml'}:20: routes[0].notify[1]: on_duty may notify staff without" in done.stderr
