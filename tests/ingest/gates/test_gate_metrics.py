"""A gate's events, rejections and duplicates move its metrics: ``isapi_push`` on a real uvicorn server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.ingest.gates.conftest import PUSH_PASSWORD, PUSH_USER, PushServer, _serve, push_config
from tests.ingest.polling import eventually
from tests.support.gate_payloads import face_jpeg, isapi_event, isapi_push_body
from tests.support.metrics import sample

# A gate id of this module alone: the metrics registry is shared by the whole test session.
GATE = f"gate-{uuid.uuid4().hex[:8]}"
NAMES = ("events", "rejections", "duplicates")


@pytest.fixture
def server() -> Iterator[PushServer]:
    yield from _serve(push_config(id=GATE))


def counts() -> dict[str, float]:
    return {name: sample(f"gridwatch_gate_{name}_total", gate=GATE) for name in NAMES}


async def test_events_rejections_and_duplicates_are_counted_per_gate(server: PushServer) -> None:
    body, content_type = isapi_push_body(isapi_event(7001), [face_jpeg("kit")])
    headers = {"Content-Type": content_type}
    before = counts()
    async with httpx.AsyncClient(timeout=10) as http:
        accepted = await http.post(server.url, content=body, headers=headers, auth=(PUSH_USER, PUSH_PASSWORD))
        unauthorised = await http.post(server.url, content=body, headers=headers, auth=(PUSH_USER, "wrong"))
        replayed = await http.post(server.url, content=body, headers=headers, auth=(PUSH_USER, PUSH_PASSWORD))
    assert (accepted.status_code, unauthorised.status_code, replayed.status_code) == (200, 401, 200)
    await eventually(lambda: len(server.events) == 1, 5, "the accepted event")

    moved = {name: counts()[name] - before[name] for name in NAMES}
    # The replay of a taken event is a duplicate, answered 200 again (our first answer was lost), not a rejection.
    assert moved == {"events": 1, "rejections": 1, "duplicates": 1}
    assert (server.counter("events"), server.counter("rejected"), server.counter("duplicates")) == (1, 1, 1)
