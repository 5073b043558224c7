"""The case actions through the console: two-person confirmation, escalation by hand, resolution, conflicts."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.gridwatch.console.rig import ConsoleRig


async def test_two_operators_confirm_then_the_case_is_escalated_and_resolved(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path, confirmations=2)
    try:
        alert = rig.raise_alert("g1")
        url = f"/api/alerts/{alert.alert_id}"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.app), base_url="http://c.test") as client:

            async def post(user: str, action: str, body: dict[str, object]) -> httpx.Response:
                return await client.post(f"{url}/{action}", json=body, headers=rig.bearer(user))

            item = (await client.get(url, headers=rig.bearer("op_a"))).json()
            assert (item["state"], item["recipients"]) == ("pending_confirmation", [])
            # Nobody was notified yet: a staff member sees nothing of it.
            assert (await client.get(url, headers=rig.bearer("staff_wang"))).status_code == 404
            assert (await post("op_a", "ack", {})).status_code == 409  # awaits confirmation

            first = await post("op_a", "confirm", {})
            assert (first.status_code, first.json()["confirmations"]) == (200, 1)
            again = await post("op_a", "confirm", {})
            assert again.status_code == 409
            assert "second operator" in again.json()["detail"]
            second = await post("op_top", "confirm", {})
            assert second.status_code == 200
            assert (second.json()["state"], second.json()["recipients"]) == ("notified", ["wang"])

            escalated = await post("op_a", "escalate", {})
            assert (escalated.status_code, escalated.json()["level"]) == (200, 1)
            assert escalated.json()["state"] == "escalated"

            resolved = await post("staff_wang", "resolve", {"outcome": "person_ok", "comment": "all fine"})
            assert (resolved.status_code, resolved.json()["state"]) == (200, "resolved")
            assert (await post("op_a", "resolve", {"outcome": "other"})).status_code == 409

            timeline = (await client.get(url, headers=rig.bearer("op_a"))).json()["timeline"]
            assert [(t["type"], t["actor"]) for t in timeline] == [
                ("confirmed", "op_a"),
                ("confirmed", "op_top"),
                ("notified", "gridwatch"),
                ("escalated", "gridwatch"),
                ("commented", "op_a"),
                ("resolved", "wang"),
            ]
            assert timeline[-1]["outcome"] == "person_ok"
    finally:
        rig.close()
