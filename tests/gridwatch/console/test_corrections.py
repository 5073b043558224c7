"""A corrections registry in the console: enrolment needs the approval record, extensions are new records."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gridwatch.core.config.registries import RegistryConfig
from tests.gridwatch.console.rig import ConsoleRig
from tests.support.paths import TESTDATA

PHOTO = ("photos", ("obama.jpg", (TESTDATA / "faces" / "obama" / "obama.jpg").read_bytes(), "image/jpeg"))
CORRECTIONS = RegistryConfig(
    name="corr",
    kind="corrections",
    purpose="community corrections supervision",
    legal_basis="Community Corrections Law art. 29",
    retention_days=365,
)
TODAY = dt.datetime.now(dt.UTC).date()


def approval(start: dt.date = TODAY, days: int = 92, doc: str = "JZ-2026-017") -> dict[str, str]:
    return {
        "approval_doc": doc,
        "approver": "county bureau of justice",
        "situation_code": "4",
        "start": start.isoformat(),
        "end": (start + dt.timedelta(days=days)).isoformat(),
    }


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[ConsoleRig]:
    rig = ConsoleRig(tmp_path)
    rig.config.registries.append(CORRECTIONS)
    rig.parts.registries.reconfigure(rig.config.registries)
    yield rig
    rig.close()


@pytest.fixture
async def client(rig: ConsoleRig) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=rig.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test", timeout=60) as client:
        yield client


async def test_enrolment_needs_an_approval_of_at_most_92_days(rig: ConsoleRig, client: httpx.AsyncClient) -> None:
    who = rig.bearer("admin1")
    missing = await client.post("/api/registries/corr/persons", data={"name": "N"}, files=[PHOTO], headers=who)
    assert missing.status_code == 422
    assert "corrections registry: enrolment needs an approval record" in missing.json()["detail"]
    too_long = await client.post(
        "/api/registries/corr/persons", data={"name": "N", **approval(days=93)}, files=[PHOTO], headers=who
    )
    assert too_long.status_code == 422
    assert too_long.json()["detail"].startswith("end: at most 92 days after start")
    partial = {k: v for k, v in approval().items() if k != "approver"}
    incomplete = await client.post(
        "/api/registries/corr/persons", data={"name": "N", **partial}, files=[PHOTO], headers=who
    )
    assert incomplete.status_code == 422
    assert "missing approver" in incomplete.json()["detail"]
    on_watchlist = await client.post(
        "/api/registries/watch/persons", data={"name": "N", **approval()}, files=[PHOTO], headers=who
    )
    assert on_watchlist.status_code == 422
    assert rig.parts.store.list_persons("corr") == []
    assert rig.parts.store.list_persons("watch") == []


async def test_enrol_then_extend_and_read_the_approvals(rig: ConsoleRig, client: httpx.AsyncClient) -> None:
    who = rig.bearer("admin1")
    made = await client.post(
        "/api/registries/corr/persons", data={"name": "N", **approval()}, files=[PHOTO], headers=who
    )
    assert made.status_code == 201, made.text
    url = f"/api/registries/corr/persons/{made.json()['person_id']}/approvals"

    [first] = (await client.get(url, headers=who)).json()["approvals"]
    assert (first["approval_doc"], first["situation_code"], first["supersedes"]) == ("JZ-2026-017", 4, None)
    later = TODAY + dt.timedelta(days=92)
    body = {**approval(start=later, doc="JZ-2026-017-X"), "situation_code": 4}
    extended = await client.post(url, json=body, headers=who)
    assert extended.status_code == 201, extended.text
    assert extended.json()["supersedes"] == first["approval_id"]
    too_long = await client.post(url, json={**body, "end": (later + dt.timedelta(days=93)).isoformat()}, headers=who)
    assert too_long.status_code == 422
    listed = (await client.get(url, headers=who)).json()["approvals"]
    assert listed[0] == first  # the first approval was not edited
    assert [a["approval_doc"] for a in listed] == ["JZ-2026-017", "JZ-2026-017-X"]
    # A registrar of another registry: the same 404 as an unknown person.
    assert (await client.get(url, headers=rig.bearer("registrar1"))).status_code == 404

    records = [json.loads(line) for line in rig.audit.path.read_text().splitlines()]
    actions = [(r["action"], r["actor"]) for r in records if str(r["action"]).startswith("registry.approval")]
    assert actions == [
        ("registry.approval.add", "admin1"),
        ("registry.approval.read", "admin1"),
        ("registry.approval.extend", "admin1"),
        ("registry.approval.read", "admin1"),
    ]
