"""`rules simulate` checks a `threshold: auto` registry's matched lines against the threshold solved from the
pack's calibration (for the registry's entries, at least its expected_size), not the 0.45 stand-in, and says
so; without a calibration it keeps the stand-in and says that. `config check` says where no store was read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gridwatch.cli import main
from recognition.calibration import read_calibration, shipped_calibration_path
from recognition.thresholds import solve_threshold
from tests.gridwatch.test_simulate import SEEN

AUTO_WATCH = """\
registries:
  - name: watch
    purpose: simulated watchlist
    legal_basis: test fixture
    retention_days: 30
    threshold: auto
    max_false_alerts_per_day: 0.1
    faces_per_day: 100000
    expected_size: 1000
"""
ENTRIES = '{"person_id": "p_w1", "registry": "watch", "enrolled_at": "2026-11-20T00:00:00Z"}\n'
RULES = "rules:\n  - {id: watch-seen, kind: seen, registries: [watch], severity: warning, cooldown_s: 0}\n"


def site(tmp_path: Path, *, model: str = "") -> Path:
    """The simulated site of the scenarios, with its one registry `watch` on `threshold: auto`."""
    config = tmp_path / "config"
    shutil.copytree(SEEN / "config", config)
    text = (config / "site.yaml").read_text()
    (config / "site.yaml").write_text(text[: text.index("registries:")] + AUTO_WATCH + model)
    (config / "rules.yaml").write_text(RULES)
    (tmp_path / "entries.jsonl").write_text(ENTRIES)
    return config


def simulate_similarity(
    tmp_path: Path, similarity: float, capsys: pytest.CaptureFixture[str], *, model: str = ""
) -> tuple[int, list[dict[str, object]], str]:
    config = site(tmp_path, model=model)
    line = {
        "captured_at": "2026-11-22T08:00:00Z",
        "source": "gate-north",
        "person_id": "p_w1",
        "similarity": similarity,
    }
    (tmp_path / "sightings.jsonl").write_text(json.dumps(line) + "\n")
    code = main(
        [
            "rules",
            "simulate",
            "-c",
            str(config),
            "--entries",
            str(tmp_path / "entries.jsonl"),
            str(tmp_path / "sightings.jsonl"),
        ]
    )
    out, err = capsys.readouterr()
    return code, [json.loads(row) for row in out.splitlines() if row.strip()], err


def solved() -> float:
    calibration = read_calibration(shipped_calibration_path("insightface"))
    # One entry in the file, expected_size 1000: solved for the larger.
    return solve_threshold(calibration, size=1000, faces_per_day=100_000, max_false_alerts_per_day=0.1).threshold


def test_simulate_checks_an_auto_registry_against_its_solved_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    threshold = solved()
    assert threshold > 0.45 + 0.05  # the stand-in would let the line below through
    code, _, err = simulate_similarity(tmp_path / "below", round(threshold - 0.05, 4), capsys)
    assert code != 0
    assert f"similarity: below the threshold {threshold:.4f} of registry 'watch': no match" in err
    assert f"registry 'watch' has threshold: auto: similarities checked against {threshold:.4f}" in err
    assert "1 in entries.jsonl; expected_size 1000" in err
    assert "no store here" in err
    code, alerts, err = simulate_similarity(tmp_path / "above", round(threshold + 0.01, 4), capsys)
    assert code == 0, err
    assert [a["rule"] for a in alerts if "rule" in a] == ["watch-seen"]


def test_without_a_calibration_simulate_keeps_the_stand_in_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"model:\n  calibration: {tmp_path / 'missing.json'}\n"
    code, alerts, err = simulate_similarity(tmp_path, 0.46, capsys, model=missing)
    assert code == 0, err
    assert "similarities checked against the stand-in 0.4500" in err
    assert "not solvable here" in err
    assert [a["rule"] for a in alerts if "rule" in a] == ["watch-seen"]


def test_config_check_says_an_auto_threshold_was_solved_without_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = site(tmp_path, model=f"service:\n  data_dir: {tmp_path / 'var'}\n")
    assert main(["config", "check", str(config)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith("watch "))
    assert f"{solved():.4f}" in row
    assert "no store here: solved for expected_size (the service solves it for the enrolled templates)" in row
