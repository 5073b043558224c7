"""Scope on every object: an operator of grid A never sees grid B's alert — not by id, not in the list,
not in a count, not on the live feed (read over a real uvicorn listener on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx

from gridwatch.http import HttpServer
from tests.gridwatch.console.rig import ConsoleRig


def client_of(rig: ConsoleRig) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.app), base_url="http://console.test")


async def test_an_operator_sees_the_alerts_of_their_grids_and_the_grids_below(console: ConsoleRig) -> None:
    a, b = console.raise_alert("g1"), console.raise_alert("g2")
    async with client_of(console) as client:

        async def ids(user: str, query: str = "") -> list[str]:
            answer = await client.get(f"/api/alerts{query}", headers=console.bearer(user))
            assert answer.status_code == 200
            return [item["alert_id"] for item in answer.json()["alerts"]]

        assert await ids("op_a") == [a.alert_id]
        assert await ids("op_b") == [b.alert_id]
        assert await ids("op_top") == [b.alert_id, a.alert_id]  # community is above g1 and g2
        assert await ids("op_a", "?grid=g2") == []  # asking for another grid shows nothing of it
        assert await ids("op_top", "?grid=g2") == [b.alert_id]
        assert await ids("staff_wang") == [a.alert_id]  # notified of a only
        assert await ids("op_a", "?state=notified&registry=welfare&rule=seen") == [a.alert_id]
        assert await ids("op_a", "?state=resolved") == []

        other = await client.get(f"/api/alerts/{b.alert_id}", headers=console.bearer("op_a"))
        unknown = await client.get("/api/alerts/no-such-alert", headers=console.bearer("op_a"))
        assert (
            (other.status_code, other.json())
            == (unknown.status_code, unknown.json())
            == (404, {"detail": "no such alert"})
        )

        item = (await client.get(f"/api/alerts/{a.alert_id}", headers=console.bearer("op_a"))).json()
        assert item["grid"] == "g1"
        assert item["state"] == "notified"
        assert item["recipients"] == ["wang"]
        assert item["threshold"] is not None
        assert item["created_at"].endswith("Z")
        assert [t["type"] for t in item["timeline"]] == ["notified"]

        duty = (await client.get("/api/duty", headers=console.bearer("op_a"))).json()
        assert [g["id"] for g in duty["grids"]] == ["g1"]
        sources = (await client.get("/api/sources", headers=console.bearer("op_b"))).json()
        assert sources["cameras"] == []  # gate-1's camera is in g1


async def events_of(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, object]]]:
    kind = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: ") and kind is not None:
            yield kind, json.loads(line.removeprefix("data: "))
            kind = None


async def test_the_live_feed_carries_only_alerts_in_scope(console: ConsoleRig) -> None:
    server = HttpServer(console.app, "127.0.0.1", 0, name="console")
    await server.start()
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client,
            client.stream("GET", "/api/alerts/stream", headers=console.bearer("op_a")) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            received = events_of(response)
            # Connected once the subscription exists; then grid B's alert, then grid A's.
            await wait_for_subscriber(console)
            b = console.raise_alert("g2", publish=True)
            a = console.raise_alert("g1", publish=True)
            kind, item = await asyncio.wait_for(anext(received), 30)
            # b came first on the feed: had it been sent, it would be here.
            assert (kind, item["alert_id"]) == ("alert", a.alert_id)

            acked = await client.post(f"/api/alerts/{a.alert_id}/ack", json={}, headers=console.bearer("op_a"))
            assert acked.status_code == 200
            await client.post(f"/api/alerts/{b.alert_id}/ack", json={}, headers=console.bearer("op_b"))
            kind, item = await asyncio.wait_for(anext(received), 30)
            assert (kind, item["alert_id"], item["state"]) == ("case", a.alert_id, "acknowledged")
            # b's acknowledgement (published after a's) is not sent either: the stream closes next.
            console.feed.close()
            rest = [event async for event in received]
            assert all(event[1]["alert_id"] != b.alert_id for event in rest)
    finally:
        await server.stop()


async def wait_for_subscriber(rig: ConsoleRig) -> None:
    while rig.feed.subscribers == 0:
        await asyncio.sleep(0.01)
