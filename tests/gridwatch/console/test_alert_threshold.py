"""The console shows an alert's registry threshold as it decides now: a `threshold: auto` registry's solved
threshold (the running registries'), never the 0.45 stand-in of its config."""

from __future__ import annotations

from pathlib import Path

import httpx

from gridwatch.core.config.registries import RegistryConfig
from recognition.calibration import read_calibration, shipped_calibration_path
from recognition.thresholds import AutoThresholds, solve_threshold
from tests.gridwatch.console.rig import ConsoleRig


async def test_an_alert_of_an_auto_registry_shows_its_solved_threshold(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path)
    try:
        index, welfare = next((i, r) for i, r in enumerate(rig.config.registries) if r.name == "welfare")
        fields = welfare.model_dump(exclude={"threshold", "calibration"})
        auto = RegistryConfig.model_validate(
            fields
            | {"threshold": "auto", "max_false_alerts_per_day": 0.1, "faces_per_day": 100_000, "expected_size": 1000}
        )
        rig.config.registries[index] = auto
        calibration = read_calibration(shipped_calibration_path("insightface"))
        rig.parts.registries.use_thresholds(AutoThresholds(calibration, {}))
        rig.parts.registries.reconfigure(rig.config.registries)
        solved = solve_threshold(calibration, size=1000, faces_per_day=100_000, max_false_alerts_per_day=0.1)
        assert auto.threshold == 0.45 != solved.threshold

        alert = rig.raise_alert("g1")
        transport = httpx.ASGITransport(app=rig.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            item = (await client.get(f"/api/alerts/{alert.alert_id}", headers=rig.bearer("op_a"))).json()
            listed = (await client.get("/api/alerts", headers=rig.bearer("op_a"))).json()["alerts"]
        assert item["threshold"] == solved.threshold
        assert [a["threshold"] for a in listed] == [solved.threshold]
    finally:
        rig.close()
