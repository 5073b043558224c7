"""`threshold: auto` in the running service: solved from the shipped calibration for the registry's size,
and solved again after a config reload changes the target."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridwatch.core.config.loader import load_config
from gridwatch.service import Service
from recognition.calibration import read_calibration, shipped_calibration_path
from recognition.thresholds import solve_threshold
from tests.support.models import shared_analyzer


def write_config(root: Path, target: float, data: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "gridwatch.yaml"
    config.write_text(
        f"""
service:
  name: auto-threshold
  data_dir: {data}
  http: {{enabled: false}}
registries:
  - name: watch
    purpose: auto threshold test
    legal_basis: test fixture
    retention_days: 1
    threshold: auto
    max_false_alerts_per_day: {target}
    faces_per_day: 50000
    expected_size: 1000
notifier:
  console: {{enabled: true}}
  kafka: {{enabled: false}}
"""
    )
    return config


async def test_the_service_decides_with_the_solved_threshold_and_resolves_on_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gridwatch.wiring.build_analyzer", lambda *args, **kwargs: shared_analyzer())
    calibration = read_calibration(shipped_calibration_path("insightface"))
    data = tmp_path / "data"
    service = Service(load_config(write_config(tmp_path / "before", 1.0, data)))
    await service.start()
    try:
        lenient = service.registries.registries.configs["watch"].threshold
        expected = solve_threshold(calibration, size=1000, faces_per_day=50000, max_false_alerts_per_day=1.0)
        assert lenient == expected.threshold
        await service.apply_config(load_config(write_config(tmp_path / "after", 0.01, data)))
        strict = service.registries.registries.configs["watch"].threshold
        assert strict > lenient
    finally:
        await service.stop()
