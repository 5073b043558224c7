"""`gridwatch rules simulate --acks`: the README's worked example on `configs/example`, record by record.

Two residents living alone, both last seen at 03:00 local time (UTC+8) on Monday; 48 h later, at 03:00 on
Wednesday, both welfare alerts go to Li Na (the night shift of grid-north). Nobody answers for p_r2: at
03:30 the community's on-call officer of the week (Zhou Hong) is told, at 04:30 the street office's
control room. For p_r1 Zhou Hong acknowledges at 03:40: its ladder stops after the first step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gridwatch.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "example"
FIXTURES = Path(__file__).parent / "fixtures" / "simulate_routing"


def run(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[dict[str, Any]], str]:
    args = ["rules", "simulate", "-c", str(EXAMPLE), "--entries", str(FIXTURES / "entries.jsonl")]
    code = main([*args, str(FIXTURES / "sightings.jsonl"), "--until", "2026-12-01T21:00:00Z", *extra])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def brief(record: dict[str, Any]) -> tuple[Any, ...]:
    kind = record["type"]
    if kind == "alert":
        return (record["at"], kind, record["person_id"], tuple(record["recipients"]))
    if kind == "notification":
        return (record["at"], kind, record["person_id"], record["to"], record["channel"], record["level"])
    if kind == "escalation":
        return (record["at"], kind, record["person_id"], record["level"], tuple(record["to"]))
    return (record["at"], kind, record["person_id"], record["by"])


def test_the_worked_example_climbs_the_ladder_until_someone_acknowledges(capsys: pytest.CaptureFixture[str]) -> None:
    code, records, err = run(capsys, "--acks", str(FIXTURES / "acks.jsonl"))
    assert code == 0, err
    # Within one instant the cases come in a fixed but arbitrary order; each case's records keep theirs.
    assert sorted((brief(r) for r in records), key=lambda b: (b[0], b[2])) == [
        ("2026-12-01T19:00:00Z", "alert", "p_r1", ("li.na",)),
        ("2026-12-01T19:00:00Z", "notification", "p_r1", "li.na", "push", 0),
        ("2026-12-01T19:00:00Z", "alert", "p_r2", ("li.na",)),
        ("2026-12-01T19:00:00Z", "notification", "p_r2", "li.na", "push", 0),
        ("2026-12-01T19:30:00Z", "escalation", "p_r1", 1, ("zhou.hong",)),
        ("2026-12-01T19:30:00Z", "notification", "p_r1", "zhou.hong", "push", 1),
        ("2026-12-01T19:30:00Z", "notification", "p_r1", "zhou.hong", "lakeside-wecom", 1),
        ("2026-12-01T19:30:00Z", "escalation", "p_r2", 1, ("zhou.hong",)),
        ("2026-12-01T19:30:00Z", "notification", "p_r2", "zhou.hong", "push", 1),
        ("2026-12-01T19:30:00Z", "notification", "p_r2", "zhou.hong", "lakeside-wecom", 1),
        ("2026-12-01T19:40:00Z", "acknowledged", "p_r1", "zhou.hong"),
        ("2026-12-01T20:30:00Z", "escalation", "p_r2", 2, ("control-room",)),
        ("2026-12-01T20:30:00Z", "notification", "p_r2", "control-room", "push", 2),
        ("2026-12-01T20:30:00Z", "notification", "p_r2", "control-room", "street-dingtalk", 2),
        ("2026-12-01T20:30:00Z", "notification", "p_r2", "control-room", "console", 2),
    ]


def test_without_acknowledgements_every_ladder_runs_to_its_end(capsys: pytest.CaptureFixture[str]) -> None:
    code, records, err = run(capsys)
    assert code == 0, err
    escalations = sorted((r["at"], r["person_id"], r["level"]) for r in records if r["type"] == "escalation")
    assert escalations == [
        ("2026-12-01T19:30:00Z", "p_r1", 1),
        ("2026-12-01T19:30:00Z", "p_r2", 1),
        ("2026-12-01T20:30:00Z", "p_r1", 2),
        ("2026-12-01T20:30:00Z", "p_r2", 2),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(
            {"at": "2026-12-01T19:40:00Z", "rule": "welfare-not-seen-48h", "person_id": "p_r1", "by": "nobody"},
            "acks.jsonl:1: by: unknown staff 'nobody'",
            id="unknown-staff",
        ),
        pytest.param(
            {"at": "2026-12-01T19:40:00Z", "rule": "no-such-rule", "person_id": "p_r1", "by": "li.na"},
            "acks.jsonl:1: rule: unknown rule 'no-such-rule'",
            id="unknown-rule",
        ),
        pytest.param(
            {"at": "2026-12-01T18:00:00Z", "rule": "welfare-not-seen-48h", "person_id": "p_r1", "by": "li.na"},
            "acks.jsonl:1: no open alert of rule 'welfare-not-seen-48h' for 'p_r1'",
            id="before-the-alert",
        ),
        pytest.param(
            {"at": "2026-12-01T19:40:00Z", "rule": "welfare-not-seen-48h", "person_id": "p_r1", "by": "sun.min"},
            "acks.jsonl:1: by: no alert",
            id="staff-of-another-grid",
        ),
    ],
)
def test_acknowledgements_the_service_would_refuse_are_errors(
    line: dict[str, str], reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    acks = tmp_path / "acks.jsonl"
    acks.write_text(json.dumps(line) + "\n")
    code, _, err = run(capsys, "--acks", str(acks))
    assert code == 2
    assert reason in err
