"""What recognition is told about stranger rules: per gate, the known registries, the threshold and the window."""

from __future__ import annotations

from pathlib import Path

from gridwatch.core.config.loader import load_config
from gridwatch.core.config.root import GridwatchConfig
from gridwatch.wiring import stranger_watch
from recognition.strangers import StrangerWatch

SITE = """\
cameras:
  - {{id: cam-1, kind: file, location_class: lobby, signage_verified_at: 2026-01-15, path: clip.mp4}}
gates:
  - {{id: gate-a, kind: isapi_push, username: u, password: "${{GATE_PASSWORD}}"}}
  - {{id: gate-b, kind: isapi_push, username: u, password: "${{GATE_PASSWORD}}"}}
  - {{id: gate-c, kind: isapi_push, username: u, password: "${{GATE_PASSWORD}}"}}
registries:
  - {{name: residents, purpose: access, legal_basis: consent, retention_days: 30, threshold: 0.5, sources: [gate-a]}}
  - {{name: staff, purpose: access, legal_basis: contract, retention_days: 30, threshold: 0.6}}
  - {{name: watch, purpose: welfare, legal_basis: consent, retention_days: 30, threshold: 0.7}}
rules:
  - {{id: seen, kind: seen, registries: [watch]}}
{rules}
"""


def config(tmp_path: Path, rules: str) -> GridwatchConfig:
    (tmp_path / "gridwatch.yaml").write_text(SITE.format(rules=rules))
    return load_config(tmp_path / "gridwatch.yaml", {"GATE_PASSWORD": "secret"}).config


def test_every_gate_but_no_camera_under_a_wildcard(tmp_path: Path) -> None:
    watch = stranger_watch(
        config(tmp_path, "  - {id: s, kind: stranger_at_gate, known_registries: [residents], within_s: 300}")
    )
    expected = StrangerWatch(frozenset({"residents"}), 0.5, 300.0)
    assert watch == {"gate-a": expected, "gate-b": expected, "gate-c": expected}


def test_rules_on_one_gate_combine_their_known_registries_threshold_and_window(tmp_path: Path) -> None:
    rules = (
        "  - {id: s1, kind: stranger_at_gate, known_registries: [residents], sources: [gate-a, gate-b],"
        " within_s: 300}\n"
        "  - {id: s2, kind: stranger_at_gate, known_registries: [staff], sources: [gate-b], within_s: 900}"
    )
    watch = stranger_watch(config(tmp_path, rules))
    assert watch == {
        "gate-a": StrangerWatch(frozenset({"residents"}), 0.5, 300.0),
        "gate-b": StrangerWatch(frozenset({"residents", "staff"}), 0.6, 900.0),
    }


def test_no_stranger_rule_watches_nothing(tmp_path: Path) -> None:
    assert stranger_watch(config(tmp_path, "")) == {}
