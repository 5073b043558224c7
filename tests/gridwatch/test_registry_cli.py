"""`gridwatch registry enroll|update|list` with per-person conditions, as an operator runs them.

The commands run in-process (``main([...])``) on real photos; the model pack is the session's shared one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gridwatch.cli import main
from gridwatch.core.audit import verify
from tests.support.models import shared_analyzer
from tests.support.paths import TESTDATA

PHOTO = TESTDATA / "faces" / "obama" / "obama.jpg"
NAME = "Display-Name-9c2d"

SITE = """\
service:
  data_dir: {data_dir}
  http: {{enabled: false}}
cameras:
  - {{id: gate-north, kind: file, location_class: compound_entrance, signage_verified_at: 2026-01-15, path: a.mp4}}
  - {{id: lobby-b3, kind: file, location_class: lobby, signage_verified_at: 2026-01-15, path: b.mp4}}
gates:
  - {{id: gate-north-face, kind: mqtt, topic: t/+/capture}}
zones:
  - {{id: estate-north, sources: [gate-north, gate-north-face]}}
  - {{id: lobbies, sources: [lobby-b3]}}
schedules:
  - id: night
    timezone: Asia/Shanghai
    intervals: [{{days: [mon, tue, wed, thu, fri, sat, sun], from: 22:00, to: 06:00}}]
  - id: office-hours
    timezone: Asia/Shanghai
    intervals: [{{days: [mon, tue, wed, thu, fri], from: 08:00, to: 18:00}}]
registries:
  - name: watch
    purpose: test registry
    legal_basis: test fixture
    retention_days: 30
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "gridwatch.yaml"
    config.write_text(SITE.format(data_dir=tmp_path / "data"))
    # The commands build their analyzer from the config; the session's loaded one is the same pack.
    monkeypatch.setattr("gridwatch.wiring.build_analyzer", lambda *args, **kwargs: shared_analyzer())
    return config


def run(site: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    action, *rest = args
    code = main(["registry", action, "-c", str(site), "--actor", "officer-7", *rest])
    out, err = capsys.readouterr()
    return code, out, err


def audit_records(site: Path) -> list[dict[str, Any]]:
    path = site.parent / "data" / "audit.jsonl"
    if not path.exists():
        return []
    assert verify(path).ok
    return [json.loads(line) for line in path.read_text().splitlines()]


def enrol(site: Path, capsys: pytest.CaptureFixture[str], *conditions: str) -> str:
    code, out, err = run(site, "enroll", "--registry", "watch", "--name", NAME, *conditions, str(PHOTO), capsys=capsys)
    assert code == 0, err
    return out.split()[1]  # "enrolled p_... in watch ..."


def listed(site: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code, out, err = run(site, "list", capsys=capsys)
    assert code == 0, err
    return out.splitlines()


def test_enrol_with_conditions_then_list(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    person_id = enrol(
        site,
        capsys,
        *("--home", "gate-north", "--home", "lobby-b3", "--zone", "estate-north"),
        *("--hours", "night", "--case-ref", "2026-WS-0173"),
    )
    header, row = listed(site, capsys)
    # The columns of before, unchanged, then the conditions.
    assert header.startswith(f"{'person_id':<20} {'registry':<20} {'photos':>6}  {'expires':<10}  name")
    assert header.endswith("  conditions")
    assert row.startswith(f"{person_id:<20} {'watch':<20} {1:>6}  ")
    assert row.endswith(f"{NAME}  home=gate-north,lobby-b3 zones=estate-north hours=night case=2026-WS-0173")

    enrolled = audit_records(site)[0]
    assert (enrolled["action"], enrolled["target"]) == ("registry.enroll", person_id)
    assert enrolled["details"]["conditions"] == {
        "home_sources": ["gate-north", "lobby-b3"],
        "allowed_zones": ["estate-north"],
        "allowed_hours": "night",
        "case_ref": "2026-WS-0173",
    }


def test_an_entry_without_conditions_lists_a_dash(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    enrol(site, capsys)
    assert listed(site, capsys)[1].endswith(f"{NAME}  -")


REFUSALS = [
    pytest.param(("--home", "gate-west"), "--home: unknown source 'gate-west' (known: gate-north, ", id="source"),
    pytest.param(("--home", "*"), "--home: unknown source '*'", id="source-wildcard"),
    pytest.param(
        ("--zone", "estate-south"), "--zone: unknown zone 'estate-south' (known: estate-north, lobbies)", id="zone"
    ),
    pytest.param(
        ("--hours", "weekend"), "--hours: unknown schedule 'weekend' (known: night, office-hours)", id="schedule"
    ),
    pytest.param(("--case-ref", "seen near the school"), "--case-ref: a case reference is", id="case-ref"),
]


@pytest.mark.parametrize(("conditions", "message"), REFUSALS)
def test_enrolment_with_unknown_references_is_refused(
    site: Path, capsys: pytest.CaptureFixture[str], conditions: tuple[str, ...], message: str
) -> None:
    code, out, err = run(site, "enroll", "--registry", "watch", "--name", NAME, *conditions, str(PHOTO), capsys=capsys)
    assert code == 2
    assert f"error: {message}" in err
    assert out == ""
    assert listed(site, capsys)[1:] == []
    assert [r["action"] for r in audit_records(site)] == ["registry.list"]


def test_update_changes_and_clears_conditions(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    person_id = enrol(site, capsys, "--zone", "lobbies", "--hours", "night")

    code, out, err = run(
        site, "update", person_id, "--zone", "estate-north", "--zone", "lobbies", "--case-ref", "C-7", capsys=capsys
    )
    assert (code, err) == (0, "")
    assert out == f"updated {person_id} in watch: allowed_zones, case_ref\n"
    assert listed(site, capsys)[1].endswith(f"{NAME}  zones=estate-north,lobbies hours=night case=C-7")

    code, out, _ = run(site, "update", person_id, "--clear-zones", "--clear-hours", "--home", "lobby-b3", capsys=capsys)
    assert code == 0
    assert out == f"updated {person_id} in watch: home_sources, allowed_zones, allowed_hours\n"
    assert listed(site, capsys)[1].endswith(f"{NAME}  home=lobby-b3 case=C-7")

    code, out, _ = run(site, "update", person_id, "--clear-case-ref", "--clear-home", capsys=capsys)
    assert code == 0
    assert listed(site, capsys)[1].endswith(f"{NAME}  -")

    code, out, _ = run(site, "update", person_id, "--clear-case-ref", capsys=capsys)
    assert (code, out) == (0, f"{person_id}: nothing changed\n")

    updates = [r for r in audit_records(site) if r["action"] == "registry.update"]
    assert {(r["actor"], r["target"], r["details"]["registry"]) for r in updates} == {("officer-7", person_id, "watch")}
    assert [r["details"]["changed"] for r in updates] == [
        {"allowed_zones": ["estate-north", "lobbies"], "case_ref": "C-7"},
        {"home_sources": ["lobby-b3"], "allowed_zones": [], "allowed_hours": None},
        {"home_sources": [], "case_ref": None},
    ]
    assert NAME not in (site.parent / "data" / "audit.jsonl").read_text()


@pytest.mark.parametrize(("conditions", "message"), REFUSALS)
def test_update_with_unknown_references_is_refused(
    site: Path, capsys: pytest.CaptureFixture[str], conditions: tuple[str, ...], message: str
) -> None:
    person_id = enrol(site, capsys, "--zone", "lobbies")
    code, out, err = run(site, "update", person_id, *conditions, capsys=capsys)
    assert (code, out) == (2, "")
    assert f"error: {message}" in err
    assert listed(site, capsys)[1].endswith(f"{NAME}  zones=lobbies")
    assert "registry.update" not in [r["action"] for r in audit_records(site)]


def test_update_of_an_unknown_person(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(site, "update", "p_0000000000000000", "--zone", "lobbies", capsys=capsys)
    assert code == 1
    assert "error: no person with id 'p_0000000000000000'" in err


def test_update_needs_something_to_change(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(site, "update", "p_0000000000000000", capsys=capsys)
    assert code == 2
    assert "error: nothing to update" in err


def test_setting_and_clearing_one_field_is_a_usage_error(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run(site, "update", "p_0000000000000000", "--hours", "night", "--clear-hours", capsys=capsys)
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
