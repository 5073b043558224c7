"""A gate whose clock stands still: ten visits a cooldown apart are ten alerts, not one and nine "replays".

The real service in-process, an ISAPI push gate, a real enrolled photo; every event carries the same
device time (the terminal's clock is stuck), distinct serials, and comes after the previous alert's
cooldown (counted from its delivery to the JSONL sink) has run out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from gridwatch.core.config.loader import load_config
from gridwatch.service import Service
from tests.e2e.test_warning_models import ENROLLED_PHOTO, ENV, SAME_PERSON, alerts_in, free_port, push, write_config
from tests.ingest.polling import eventually
from tests.support.e2e import enrol

pytestmark = pytest.mark.e2e

VISITS = 10
COOLDOWN_S = 1


async def test_ten_visits_with_a_stuck_clock_are_ten_alerts(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        port=port,
        notifier="  console: {enabled: false}\n  jsonl: {enabled: true}",
        rules=f"  - {{id: seen-home, kind: seen, registries: [living_alone], cooldown_s: {COOLDOWN_S}}}",
    )
    person_id = enrol(config, ENROLLED_PHOTO, "Resident", registry="living_alone", env=ENV)
    jsonl = tmp_path / "data" / "alerts.jsonl"
    stuck = dt.datetime(2019, 1, 1, 0, 0, tzinfo=dt.UTC)  # the terminal's clock, every time
    service = Service(load_config(config, ENV))
    await service.start()
    try:
        for visit in range(VISITS):
            await push(port, 100 + visit, SAME_PERSON, stuck)
            await eventually(lambda n=visit: len(alerts_in(jsonl)) == n + 1, 30.0, f"alert of visit {visit + 1}")
            await asyncio.sleep(COOLDOWN_S + 0.2)  # past the cooldown, counted from the delivery
        rules = service.status()["rules"]
    finally:
        await service.stop()
    alerts = alerts_in(jsonl)
    assert len(alerts) == VISITS
    assert len({a.alert_id for a in alerts}) == VISITS
    assert {a.person_id for a in alerts} == {person_id}
    assert isinstance(rules, dict)
    assert rules["alerts"] == VISITS
