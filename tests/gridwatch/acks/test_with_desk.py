"""The staff API against the real case desk (SQLite): two-person confirmation, acknowledgement, resolution.

The fake desk of ``test_http.py`` checks the HTTP side; here the answers come from the case desk itself,
through the ``CaseStage`` port the service mounts, so the status codes are the desk's decisions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gridwatch.acks.http import ack_router
from gridwatch.core.audit import AuditLog
from gridwatch.core.db import Database
from gridwatch.core.events import CaseState
from gridwatch.http import create_app
from notifier.ack_links import AckLinks, UsedLinks
from notifier.case_stage import CaseStage
from tests.notifier.test_desk import Rig, alert

SECRET = "0123456789abcdef0123"


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Rig, AckLinks, httpx.AsyncClient]]:
    with Database(f"sqlite:///{tmp_path / 'gridwatch.sqlite3'}") as database:
        rig = Rig(
            database, [{"match": {"registry": "welfare"}, "notify": ["on_duty"], "require_ack": True}], confirmations=2
        )
        links = AckLinks(SECRET, 600, "http://gridwatch.test")
        audit = AuditLog(tmp_path / "audit.jsonl")
        stage = CaseStage(rig.desk)
        router = ack_router(stage, links, UsedLinks(database), audit, rig.desk.router.staff_ids)
        app = create_app(status=dict, routers=[router])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gridwatch.test"
        ) as client:
            yield rig, links, client
        audit.close()


def bearer(links: AckLinks, staff_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {links.staff_token(staff_id)}"}


async def test_two_distinct_operators_confirm_before_anyone_is_notified(
    setup: tuple[Rig, AckLinks, httpx.AsyncClient],
) -> None:
    rig, links, client = setup
    a = alert()
    assert rig.raise_alert(a).notifications == []
    url = f"/api/alerts/{a.alert_id}"

    # Nobody can acknowledge an unconfirmed match.
    assert (await client.post(f"{url}/ack", headers=bearer(links, "wang"))).status_code == 409
    first = await client.post(f"{url}/confirm", headers=bearer(links, "zhao"))
    assert first.status_code == 200, first.text
    assert first.json()["confirmations"] == 1
    assert first.json()["state"] == CaseState.PENDING_CONFIRMATION
    again = await client.post(f"{url}/confirm", headers=bearer(links, "zhao"))
    assert again.status_code == 409  # the same person twice
    second = await client.post(f"{url}/confirm", headers=bearer(links, "chen"))
    assert second.json()["state"] == CaseState.NOTIFIED

    # Now the grid worker acknowledges, then resolves; a resolved case refuses.
    ack = await client.post(f"{url}/ack", headers=bearer(links, "wang"), json={"comment": "on my way"})
    assert ack.json()["state"] == CaseState.ACKNOWLEDGED
    resolved = await client.post(f"{url}/resolve", headers=bearer(links, "wang"), json={"outcome": "person_ok"})
    assert resolved.json()["state"] == CaseState.RESOLVED
    assert (await client.post(f"{url}/ack", headers=bearer(links, "wang"))).status_code == 409
    types = [e.type.split(".")[2] for e in rig.desk.timeline(a.alert_id)]
    assert types == ["confirmed", "confirmed", "notified", "acknowledged", "resolved"]


async def test_staff_of_another_grid_get_404_and_a_forged_token_401(
    setup: tuple[Rig, AckLinks, httpx.AsyncClient],
) -> None:
    rig, links, client = setup
    a = alert()
    rig.raise_alert(a)
    url = f"/api/alerts/{a.alert_id}"
    assert (await client.post(f"{url}/ack", headers=bearer(links, "li"))).status_code == 404  # grid g2
    forged = {"Authorization": "Bearer gws_wang_" + "A" * 43}
    assert (await client.post(f"{url}/ack", headers=forged)).status_code == 401
    assert (await client.post("/api/alerts/no-such-alert/ack", headers=bearer(links, "wang"))).status_code == 404
