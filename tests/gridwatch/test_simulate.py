"""`gridwatch rules simulate`: scenarios per rule kind against hand-worked alert lists, input errors, isolation.

A scenario is a folder of ``fixtures/simulate``: ``config/`` (YAML), ``entries.jsonl``, ``sightings.jsonl``,
``expected.jsonl`` (one alert a line: the fields compared exactly, and ``explanation`` as a substring) and
optionally ``args.txt`` (more arguments, e.g. ``--until``). The expected lists were worked out by hand
from the rules' documented behaviour, each line's reason is in the scenario's comments and inputs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridwatch.cli import main
from tests.support.paths import REPO_ROOT

FIXTURES = Path(__file__).parent / "fixtures" / "simulate"
SCENARIOS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
EXACT = ("at", "rule", "kind", "person_id", "source", "severity", "suppressed")
SEEN = FIXTURES / "seen_cooldown"


def simulate(
    config: Path, entries: Path, sightings: Path, *extra: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, Any]], str]:
    """The CLI in-process: exit code, the alerts printed, stderr."""
    code = main(["rules", "simulate", "-c", str(config), "--entries", str(entries), str(sightings), *extra])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def scenario_args(folder: Path) -> list[str]:
    args = folder / "args.txt"
    return args.read_text().split() if args.exists() else []


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_alerts(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """The fields ``expected`` names are equal (``explanation``: contained), alert by alert, none more."""
    assert len(actual) == len(expected), [(a["at"], a["rule"], a["person_id"]) for a in actual]
    for a, e in zip(actual, expected, strict=True):
        assert {k: a[k] for k in EXACT if k in e} == {k: e[k] for k in EXACT if k in e}
        assert e["explanation"] in a["explanation"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_makes_the_expected_alerts(scenario: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = FIXTURES / scenario
    code, alerts, err = simulate(
        folder / "config",
        folder / "entries.jsonl",
        folder / "sightings.jsonl",
        *scenario_args(folder),
        capsys=capsys,
    )
    assert code == 0, err
    assert_alerts(alerts, read_jsonl(folder / "expected.jsonl"))


def test_every_kind_has_a_scenario() -> None:
    from rules.engine import RULE_KINDS

    kinds = {
        rule["kind"]
        for scenario in SCENARIOS
        for rule in yaml.safe_load((FIXTURES / scenario / "config" / "rules.yaml").read_text())["rules"]
    }
    assert kinds == set(RULE_KINDS)


def test_output_lines_carry_the_contract_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, alerts, _ = simulate(SEEN / "config", SEEN / "entries.jsonl", SEEN / "sightings.jsonl", capsys=capsys)
    assert code == 0
    for alert in alerts:
        assert {"at", "rule", "kind", "person_id", "source", "severity", "explanation"} <= alert.keys()
        assert alert["at"].endswith("Z")
    assert alerts[0]["sightings"] == ["line-1"]  # the line of the sighting that made it
    assert len({a["alert_id"] for a in alerts}) == len(alerts)


def test_same_input_same_output(capsys: pytest.CaptureFixture[str]) -> None:
    folder = FIXTURES / "not_seen_repeat_until"
    runs = [
        simulate(
            folder / "config",
            folder / "entries.jsonl",
            folder / "sightings.jsonl",
            *scenario_args(folder),
            capsys=capsys,
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_the_clock_runs_on_without_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = FIXTURES / "not_seen_repeat_until"
    empty = tmp_path / "sightings.jsonl"
    empty.write_text("")
    code, alerts, _ = simulate(
        folder / "config", folder / "entries.jsonl", empty, "--until", "2026-11-22T06:00:00Z", capsys=capsys
    )
    assert code == 0
    # Enrolled 2026-11-20 06:00, absent 24 h, then every 12 h; the clock stops at --until (included).
    assert [a["at"] for a in alerts] == ["2026-11-21T06:00:00Z", "2026-11-21T18:00:00Z", "2026-11-22T06:00:00Z"]
    code, alerts, _ = simulate(folder / "config", folder / "entries.jsonl", empty, capsys=capsys)
    assert (code, alerts) == (0, [])  # no event and no --until: no time passes


# --- input errors ---------------------------------------------------------------------------------

LINE_1 = '{"captured_at": "2026-11-22T08:00:00Z", "source": "gate-north", "person_id": "p_w1"}'


@pytest.mark.parametrize(
    ("second_line", "message"),
    [
        ('{"captured_at": "2026-11-22T08:01:00Z", "source": ', "sightings.jsonl:2: invalid JSON: "),
        ('["2026-11-22T08:01:00Z"]', "sightings.jsonl:2: expected a JSON object"),
        ('{"captured_at": "2026-11-22T08:01:00Z", "person_id": "p_w1"}', "sightings.jsonl:2: source: Field required"),
        ('{"source": "gate-north", "person_id": "p_w1"}', "sightings.jsonl:2: captured_at: Field required"),
        (
            '{"captured_at": "22/11/2026 08:01", "source": "gate-north", "person_id": "p_w1"}',
            "sightings.jsonl:2: captured_at: invalid datetime",
        ),
        (
            '{"captured_at": "2026-11-22T08:01:00", "source": "gate-north", "person_id": "p_w1"}',
            "sightings.jsonl:2: captured_at: invalid datetime: no time zone",
        ),
        (
            '{"captured_at": "2026-11-22T07:59:59Z", "source": "gate-north", "person_id": "p_w1"}',
            "sightings.jsonl:2: captured_at: out of time order: 2026-11-22T07:59:59Z is before "
            "2026-11-22T08:00:00Z (line 1)",
        ),
        (
            '{"captured_at": "2026-11-22T08:01:00Z", "source": "cam-x", "person_id": "p_w1"}',
            "sightings.jsonl:2: source: unknown source 'cam-x' (known: gate-north, ",
        ),
        (
            '{"captured_at": "2026-11-22T08:01:00Z", "source": "gate-north", "person_id": "p_nobody"}',
            "sightings.jsonl:2: person_id: unknown person 'p_nobody' (not in entries.jsonl)",
        ),
        (
            '{"captured_at": "2026-11-22T08:01:00Z", "source": "gate-north", "person_id": "p_w1", "similarity": 0.3}',
            "sightings.jsonl:2: similarity: below the threshold 0.50 of registry 'watch'",
        ),
        (
            '{"captured_at": "2026-11-22T08:01:00Z", "source": "gate-north", "person_id": "p_w1", '
            '"similarity": "high"}',
            "sightings.jsonl:2: similarity: Input should be a valid number",
        ),
        (
            '{"captured_at": "2026-11-22T08:01:00Z", "source": "square", "person_id": "p_c1"}',
            "sightings.jsonl:2: source: registry 'court' is not searched at 'square'",
        ),
        (
            '{"captured_at": "2026-11-22T08:01:00Z", "source": "square", "gate_verdict": "denied"}',
            "sightings.jsonl:2: gate_verdict: 'square' is a camera: only a gate denies",
        ),
        (
            '{"captured_at": "2026-11-22T08:01:00Z", "source": "gate-north-face", "gate_verdict": "granted"}',
            "sightings.jsonl:2: gate_verdict: Input should be 'denied'",
        ),
        (
            '{"captured_at": "2026-11-22T08:01:00Z", "source": "gate-north-face", "stranger": "a", '
            '"person_id": "p_w1"}',
            "sightings.jsonl:2: has person_id and stranger: a line is one event",
        ),
        (
            '{"captured_at": "2026-11-22T08:01:00Z", "source": "gate-north-face"}',
            "sightings.jsonl:2: needs one of person_id (a sighting), stranger (an unknown face) or gate_verdict",
        ),
        (
            '{"captured_at": "2026-11-22T08:01:00Z", "source": "gate-north", "person_id": "p_w1", "colour": "red"}',
            "sightings.jsonl:2: colour: Extra inputs are not permitted",
        ),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
def test_a_bad_event_line_is_named_by_file_line_and_field(
    second_line: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sightings = tmp_path / "sightings.jsonl"
    sightings.write_text(f"{LINE_1}\n{second_line}\n")
    code, alerts, err = simulate(SEEN / "config", SEEN / "entries.jsonl", sightings, capsys=capsys)
    assert (code, alerts) == (2, [])
    assert err.startswith("invalid simulation input:\n")
    assert f"{sightings}:2: " in err
    assert message in err, err


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            '{"person_id": "p_x", "registry": "unknown-reg", "enrolled_at": "2026-11-20T00:00:00Z"}',
            "entries.jsonl:4: registry: unknown registry 'unknown-reg' (known: court, residents, watch)",
        ),
        (
            '{"person_id": "p_x", "registry": "watch", "enrolled_at": "2026-11-20T00:00:00Z", '
            '"home_sources": ["cam-9"]}',
            "entries.jsonl:4: home_sources[0]: unknown source 'cam-9'",
        ),
        (
            '{"person_id": "p_x", "registry": "watch", "enrolled_at": "2026-11-20T00:00:00Z", '
            '"allowed_zones": ["estate-north", "moon"]}',
            "entries.jsonl:4: allowed_zones[1]: unknown zone 'moon' (known: estate-north, estate-south)",
        ),
        (
            '{"person_id": "p_x", "registry": "watch", "enrolled_at": "2026-11-20T00:00:00Z", '
            '"allowed_hours": "lunch"}',
            "entries.jsonl:4: allowed_hours: unknown schedule 'lunch' (known: night, office-hours)",
        ),
        (
            '{"person_id": "p_w1", "registry": "watch", "enrolled_at": "2026-11-20T00:00:00Z"}',
            "entries.jsonl:4: person_id: duplicate person 'p_w1' (first at line 1)",
        ),
        (
            '{"person_id": "p_x", "registry": "watch", "enrolled_at": "last week"}',
            "entries.jsonl:4: enrolled_at: invalid datetime",
        ),
        ('{"person_id": "p_x", "enrolled_at": "2026-11-20T00:00:00Z"}', "entries.jsonl:4: registry: Field required"),
        (
            '{"person_id": "no spaces allowed", "registry": "watch", "enrolled_at": "2026-11-20T00:00:00Z"}',
            "entries.jsonl:4: person_id: String should match pattern",
        ),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
def test_a_bad_entry_line_is_named_by_file_line_and_field(
    entry: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = tmp_path / "entries.jsonl"
    entries.write_text((SEEN / "entries.jsonl").read_text() + entry + "\n")
    code, alerts, err = simulate(SEEN / "config", entries, SEEN / "sightings.jsonl", capsys=capsys)
    assert (code, alerts) == (2, [])
    assert message in err, err


def test_every_problem_of_both_files_is_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = tmp_path / "entries.jsonl"
    entries.write_text('{"person_id": "p_w1", "registry": "nope", "enrolled_at": "2026-11-20T00:00:00Z"}\n')
    sightings = tmp_path / "sightings.jsonl"
    sightings.write_text(
        "\n".join(
            [
                '{"captured_at": "2026-11-22T08:00:00Z", "source": "cam-x", "stranger": "a"}',
                "",  # blank lines are skipped, and still counted
                "not json",
                '{"captured_at": "2026-11-22T08:00:00Z", "source": "gate-north-face", "stranger": ""}',
            ]
        )
    )
    code, _, err = simulate(SEEN / "config", entries, sightings, capsys=capsys)
    assert code == 2
    problems = err.splitlines()[1:]
    assert [p.split(": ")[0].rsplit("/", 1)[-1] for p in problems] == [
        "entries.jsonl:1",
        "sightings.jsonl:1",
        "sightings.jsonl:3",
        "sightings.jsonl:4",
    ]
    assert problems[-1].endswith("stranger: String should have at least 1 character")


def test_a_sighting_before_the_enrolment_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sightings = tmp_path / "sightings.jsonl"
    sightings.write_text('{"captured_at": "2026-11-19T23:59:59Z", "source": "gate-north", "person_id": "p_w1"}\n')
    code, _, err = simulate(SEEN / "config", SEEN / "entries.jsonl", sightings, capsys=capsys)
    assert code == 2
    assert "sightings.jsonl:1: captured_at: before the person's enrolment (entries.jsonl:1)" in err


def test_until_before_the_last_event_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, alerts, err = simulate(
        SEEN / "config",
        SEEN / "entries.jsonl",
        SEEN / "sightings.jsonl",
        "--until",
        "2026-11-22T08:00:00Z",
        capsys=capsys,
    )
    assert (code, alerts) == (2, [])
    assert "--until: before the last event" in err


def test_until_must_be_a_datetime_with_a_zone(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        simulate(
            SEEN / "config", SEEN / "entries.jsonl", SEEN / "sightings.jsonl", "--until", "2026-11-23", capsys=capsys
        )
    assert exit_.value.code == 2
    assert "argument --until: invalid datetime: no time zone" in capsys.readouterr().err


def test_a_missing_file_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = simulate(SEEN / "config", tmp_path / "absent.jsonl", SEEN / "sightings.jsonl", capsys=capsys)
    assert code == 2
    assert f"{tmp_path / 'absent.jsonl'}: cannot read: No such file or directory" in err


def test_an_invalid_config_is_reported_as_config_check_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(SEEN / "config", config)
    rules = config / "rules.yaml"
    rules.write_text(rules.read_text().replace("cooldown_s: 600", "cooldown_s: -1"))
    code, alerts, err = simulate(config, SEEN / "entries.jsonl", SEEN / "sightings.jsonl", capsys=capsys)
    assert (code, alerts) == (2, [])
    assert err.startswith("invalid configuration:\n")
    assert f"{rules}:2: rules[0].cooldown_s: Input should be greater than or equal to 0" in err


# --- isolation from the real site -----------------------------------------------------------------


def test_the_sites_data_dir_and_database_are_never_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    shutil.copytree(SEEN / "config", config)
    data_dir, database = tmp_path / "site-data", tmp_path / "site-db" / "gridwatch.sqlite3"
    (config / "service.yaml").write_text(
        f"service:\n  data_dir: {data_dir}\n  database:\n    url: sqlite:///{database}\n"
    )
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, alerts, _ = simulate(config, SEEN / "entries.jsonl", SEEN / "sightings.jsonl", capsys=capsys)
    assert code == 0
    assert alerts
    assert not data_dir.exists()
    assert not database.parent.exists()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written anywhere


# --- as an operator runs it -----------------------------------------------------------------------


def test_subprocess_on_the_example_site_without_its_secrets(tmp_path: Path) -> None:
    """`python -m gridwatch.cli` on configs/example: its ${VAR}s are not needed, its data dir is not made."""
    entries = tmp_path / "entries.jsonl"
    entries.write_text(
        '{"person_id": "p_1a2b", "registry": "court_orders", "enrolled_at": "2026-11-20T00:00:00Z",'
        ' "allowed_zones": ["estate-south"], "allowed_hours": "office-hours"}\n'
    )
    sightings = tmp_path / "sightings.jsonl"
    sightings.write_text(
        '{"captured_at": "2026-11-23T02:00:00Z", "source": "gate-north", "person_id": "p_1a2b", "similarity": 0.58}\n'
        '{"captured_at": "2026-11-23T02:05:00Z", "source": "gate-north", "person_id": "p_1a2b", "similarity": 0.61}\n'
        '{"captured_at": "2026-11-23T02:20:00Z", "source": "gate-south", "person_id": "p_1a2b"}\n'
    )
    data_dir = tmp_path / "site-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAM_", "KAFKA_", "GATE_", "MQTT_", "GRIDWATCH_"))}
    env |= {"PYTHONPATH": str(REPO_ROOT), "GRIDWATCH_DATA_DIR": str(data_dir)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridwatch.cli",
            "rules",
            "simulate",
            "-c",
            str(REPO_ROOT / "configs" / "example"),
            "--entries",
            str(entries),
            str(sightings),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    alerts = [r for r in records if r["type"] == "alert"]  # the example routes them: notifications follow
    assert {r["type"] for r in records} == {"alert", "notification", "escalation"}
    # restricted-person-at-gate: seen, cooldown 900 s: the second sighting is suppressed, the third is counted.
    # protection-order-area: gate-north is outside the entry's estate-south (cooldown 600 s: the second is
    # suppressed); gate-south is inside. 02:00 UTC is 10:00 in Shanghai on a Monday: within office hours.
    assert [(a["at"], a["rule"], a["source"], a["suppressed"]) for a in alerts] == [
        ("2026-11-23T02:00:00Z", "restricted-person-at-gate", "gate-north", 0),
        ("2026-11-23T02:00:00Z", "protection-order-area", "gate-north", 0),
        ("2026-11-23T02:20:00Z", "restricted-person-at-gate", "gate-south", 1),
    ]
    assert not data_dir.exists()
