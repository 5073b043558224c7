"""The six rule kinds in config: every kind loads; references to schedules, zones and gates are checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridwatch.core.config.loader import ConfigError, load_config
from gridwatch.core.config.rules import (
    FrequencyRuleConfig,
    NotSeenRuleConfig,
    OutsideAreaRuleConfig,
    OutsideHoursRuleConfig,
    SeenRuleConfig,
    StrangerAtGateRuleConfig,
)
from gridwatch.core.config.schema import config_json_schema
from tests.gridwatch.core.test_config_loader import read_env_file
from tests.gridwatch.core.test_config_zones_schedules import SCHEDULES, SOURCES, ZONES

REGISTRIES = """\
registries:
  - {name: watch, purpose: welfare, legal_basis: consent, retention_days: 30, threshold: 0.5}
  - {name: residents, purpose: access, legal_basis: consent, retention_days: 30, threshold: 0.5}
"""

RULES = """\
rules:
  - {id: r-seen, kind: seen, registries: [watch]}
  - {id: r-absent, kind: not_seen, registries: [watch], after_s: 172800, repeat_s: 86400, active: night}
  - {id: r-area, kind: outside_area, registries: [watch], allowed_zones: [estate-north]}
  - {id: r-hours, kind: outside_hours, registries: [watch], allowed_hours: office-hours}
  - {id: r-freq, kind: frequency, registries: [watch], count: 3, within_s: 3600, zones: [lobbies]}
  - {id: r-stranger, kind: stranger_at_gate, known_registries: [residents], sources: [gate-north-face]}
"""


def write_site(tmp_path: Path, rules: str = RULES) -> Path:
    for name, text in (
        ("sources.yaml", SOURCES),
        ("zones.yaml", ZONES),
        ("schedules.yaml", SCHEDULES),
        ("registries.yaml", REGISTRIES),
        ("rules.yaml", rules),
    ):
        (tmp_path / name).write_text(text)
    return tmp_path


def test_every_kind_loads(tmp_path: Path) -> None:
    rules = load_config(write_site(tmp_path), {}).config.rules
    assert [type(r) for r in rules] == [
        SeenRuleConfig,
        NotSeenRuleConfig,
        OutsideAreaRuleConfig,
        OutsideHoursRuleConfig,
        FrequencyRuleConfig,
        StrangerAtGateRuleConfig,
    ]


RULE_ERRORS = [
    pytest.param(
        "rules:\n  - id: r\n    kind: seen\n    registries: [watch]\n    active: weekends\n",
        (5, "rules[0].active", "unknown schedule 'weekends' (known: night, office-hours)"),
        id="unknown-active-schedule",
    ),
    pytest.param(
        "rules:\n  - id: r\n    kind: outside_hours\n    registries: [watch]\n    allowed_hours: lunch\n",
        (5, "rules[0].allowed_hours", "unknown schedule 'lunch'"),
        id="unknown-allowed-hours",
    ),
    pytest.param(
        "rules:\n  - id: r\n    kind: outside_area\n    registries: [watch]\n    allowed_zones:\n      - estate-west\n",
        (6, "rules[0].allowed_zones[0]", "unknown zone 'estate-west' (known: estate-north, lobbies)"),
        id="unknown-zone",
    ),
    pytest.param(
        "rules:\n  - id: r\n    kind: frequency\n    registries: [watch]\n    count: 2\n    within_s: 60\n"
        "    zones: [nowhere]\n",
        (7, "rules[0].zones[0]", "unknown zone 'nowhere'"),
        id="unknown-frequency-zone",
    ),
    pytest.param(
        "rules:\n  - id: r\n    kind: stranger_at_gate\n    known_registries: [residents]\n    sources:\n"
        "      - lobby-b3\n",
        (6, "rules[0].sources[0]", "'lobby-b3' is a camera: stranger_at_gate counts attempts at gates"),
        id="stranger-at-a-camera",
    ),
    pytest.param(
        "rules:\n  - id: r\n    kind: stranger_at_gate\n    known_registries: [tenants]\n",
        (4, "rules[0].known_registries[0]", "unknown registry 'tenants'"),
        id="unknown-known-registry",
    ),
    pytest.param(
        "rules:\n  - id: r\n    kind: not_seen\n    registries: [watch]\n    after_s: 5\n",
        (5, "rules[0].after_s", "greater than or equal to 10"),
        id="absence-too-short",
    ),
    pytest.param(
        "rules:\n  - id: r\n    kind: frequency\n    registries: [watch]\n    count: 1\n    within_s: 60\n",
        (5, "rules[0].count", "greater than or equal to 2"),
        id="frequency-of-one",
    ),
    pytest.param(
        "rules:\n  - id: r\n    kind: sometimes\n    registries: [watch]\n",
        (3, "rules[0].kind", "does not match any of the expected tags"),
        id="unknown-kind",
    ),
]


@pytest.mark.parametrize(("rules", "expected"), RULE_ERRORS)
def test_rule_mistakes_name_file_line_and_key(tmp_path: Path, rules: str, expected: tuple[int, str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_site(tmp_path, rules), {})
    [issue] = caught.value.issues
    assert (issue.file.name, issue.line, issue.key_path) == ("rules.yaml", *expected[:2])
    assert expected[2] in issue.reason


def test_the_example_site_has_every_kind() -> None:
    example = Path(__file__).resolve().parents[3] / "configs" / "example"
    kinds = {rule.kind for rule in load_config(example, read_env_file(example / ".env.example")).config.rules}
    assert kinds == {"seen", "not_seen", "outside_area", "outside_hours", "frequency", "stranger_at_gate"}


def test_the_json_schema_describes_every_kind() -> None:
    text = json.dumps(config_json_schema())
    for kind in ("seen", "not_seen", "outside_area", "outside_hours", "frequency", "stranger_at_gate"):
        assert f'"const": "{kind}"' in text or f'"enum": ["{kind}"]' in text, kind
    for key in (
        "after_s",
        "repeat_s",
        "pause_timers_when_inactive",
        "allowed_zones",
        "allowed_hours",
        "known_registries",
    ):
        assert f'"{key}"' in text, key
