"""Evidence through the console: served to the roles that may see the alert, audited, never across scopes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gridwatch.core.crypto import Keyring, new_data_key
from gridwatch.core.registry_keys import RegistryKeys
from recognition.evidence import EvidenceStore
from tests.gridwatch.console.rig import EVIDENCE_JPEG, ConsoleRig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[ConsoleRig]:
    rig = ConsoleRig(tmp_path)
    yield rig
    rig.close()


@pytest.fixture
async def client(rig: ConsoleRig) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=rig.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        yield client


def viewed(rig: ConsoleRig) -> list[dict[str, object]]:
    records = [json.loads(line) for line in rig.audit.path.read_text().splitlines()]
    return [r for r in records if r["action"] == "evidence.viewed"]


async def test_the_operator_of_the_grid_sees_the_face_and_frame_and_every_view_is_audited(
    rig: ConsoleRig, client: httpx.AsyncClient
) -> None:
    alert = rig.raise_alert("g1")
    url = f"/api/alerts/{alert.alert_id}/evidence"
    for part in ("face", "frame"):
        answer = await client.get(url, params={"part": part}, headers=rig.bearer("op_a"))
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/jpeg"
        assert answer.content == EVIDENCE_JPEG
        assert answer.headers["cache-control"] == "no-store"
    detail = (await client.get(f"/api/alerts/{alert.alert_id}", headers=rig.bearer("op_a"))).json()
    assert detail["has_evidence"] is True
    assert (await client.get(url, params={"part": "reference"}, headers=rig.bearer("op_a"))).status_code == 404
    records = viewed(rig)
    assert [(r["actor"], r["target"], r["details"]["part"]) for r in records] == [  # type: ignore[index]
        ("op_a", alert.alert_id, "face"),
        ("op_a", alert.alert_id, "frame"),
    ]


async def test_other_grids_and_roles_get_nothing_and_leave_no_view(rig: ConsoleRig, client: httpx.AsyncClient) -> None:
    alert = rig.raise_alert("g1")
    url = f"/api/alerts/{alert.alert_id}/evidence"
    assert (await client.get(url, headers=rig.bearer("op_b"))).status_code == 404  # grid g2
    for user in ("registrar1", "auditor1", "admin1"):
        assert (await client.get(url, headers=rig.bearer(user))).status_code == 403
    assert (await client.get(url, params={"part": "embedding"}, headers=rig.bearer("op_a"))).status_code == 422
    assert viewed(rig) == []


async def test_evidence_sealed_with_another_key_is_not_served(rig: ConsoleRig, client: httpx.AsyncClient) -> None:
    alert = rig.raise_alert("g1")
    # The master key was lost or swapped: the registry's data key no longer unwraps.
    rig.deps.evidence = EvidenceStore(rig.database, RegistryKeys(Keyring(new_data_key()), rig.keys.path))
    answer = await client.get(f"/api/alerts/{alert.alert_id}/evidence", headers=rig.bearer("op_a"))
    assert answer.status_code == 404
    assert viewed(rig) == []
