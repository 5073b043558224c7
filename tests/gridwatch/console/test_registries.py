"""Registries in the console: enrolment from uploads with the CLI's refusals, bounded uploads, conditions,
erasure, and a bulk import of the shared test photos whose progress reaches 100% with the refusals listed."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gridwatch.console.registries import MAX_PHOTO_BYTES
from tests.gridwatch.console.rig import ConsoleRig
from tests.support.paths import TESTDATA

FACES = TESTDATA / "faces"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[ConsoleRig]:
    rig = ConsoleRig(tmp_path)
    yield rig
    rig.close()


@pytest.fixture
async def client(rig: ConsoleRig) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=rig.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test", timeout=60) as client:
        yield client


def audit(rig: ConsoleRig) -> list[dict[str, object]]:
    return [json.loads(line) for line in rig.audit.path.read_text().splitlines()]


async def test_enrol_update_and_erase_one_person(rig: ConsoleRig, client: httpx.AsyncClient) -> None:
    who = rig.bearer("registrar1")
    photo = ("photos", ("obama.jpg", (FACES / "obama" / "obama.jpg").read_bytes(), "image/jpeg"))
    made = await client.post("/api/registries/welfare/persons", data={"name": "B. Obama"}, files=[photo], headers=who)
    assert made.status_code == 201, made.text
    person = made.json()
    assert (person["name"], person["photos"], person["registry"]) == ("B. Obama", 1, "welfare")
    assert "embedding" not in json.dumps(person)

    changed = await client.patch(
        f"/api/registries/welfare/persons/{person['person_id']}", json={"home_sources": ["gate-1"]}, headers=who
    )
    assert changed.json()["home_sources"] == ["gate-1"]
    unknown = await client.patch(
        f"/api/registries/welfare/persons/{person['person_id']}", json={"allowed_zones": ["nowhere"]}, headers=who
    )
    assert unknown.status_code == 422
    escalation = await client.patch(
        f"/api/registries/welfare/persons/{person['person_id']}", json={"role": "admin"}, headers=who
    )
    assert escalation.status_code == 422  # strict bodies: not a privilege

    listed = (await client.get("/api/registries/welfare/persons", headers=who)).json()["persons"]
    assert [p["person_id"] for p in listed] == [person["person_id"]]
    assert (
        await client.delete(f"/api/registries/welfare/persons/{person['person_id']}", headers=who)
    ).status_code == 204
    actions = [(r["action"], r["actor"]) for r in audit(rig) if str(r["action"]).startswith("registry.")]
    assert ("registry.enroll", "registrar1") in actions
    assert ("registry.update", "registrar1") in actions
    assert ("registry.list", "registrar1") in actions
    assert ("registry.remove", "registrar1") in actions


async def test_a_refused_photo_enrols_nobody_and_says_why(rig: ConsoleRig, client: httpx.AsyncClient) -> None:
    files = [
        ("photos", ("biden.jpg", (FACES / "biden" / "biden.jpg").read_bytes(), "image/jpeg")),
        ("photos", ("group.jpg", (FACES / "group" / "two_people.jpg").read_bytes(), "image/jpeg")),
    ]
    answer = await client.post(
        "/api/registries/welfare/persons", data={"name": "X"}, files=files, headers=rig.bearer("registrar1")
    )
    assert answer.status_code == 422
    [refusal] = answer.json()["refusals"]
    assert refusal["photo"] == "group.jpg"
    assert "faces found" in refusal["reason"]
    assert rig.parts.store.list_persons("welfare") == []


async def test_an_oversized_upload_is_413_and_nothing_is_decoded(rig: ConsoleRig, client: httpx.AsyncClient) -> None:
    big = ("photos", ("big.jpg", b"\xff\xd8" + b"\0" * MAX_PHOTO_BYTES, "image/jpeg"))
    answer = await client.post(
        "/api/registries/welfare/persons", data={"name": "X"}, files=[big], headers=rig.bearer("registrar1")
    )
    assert answer.status_code == 413


async def test_a_bulk_import_reaches_100_percent_with_its_refusals(rig: ConsoleRig, client: httpx.AsyncClient) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for photo in sorted((FACES).glob("*/*")):
            if photo.suffix.lower() in {".jpg", ".jpeg", ".png"}:
                zf.write(photo, f"{photo.parent.name}-{photo.name}")
    who = rig.bearer("registrar1")
    files = [("archive", ("faces.zip", archive.getvalue(), "application/zip"))]
    started = await client.post("/api/registries/welfare/imports", files=files, headers=who)
    assert started.status_code == 202, started.text
    url = f"/api/registries/welfare/imports/{started.json()['import_id']}"
    for _ in range(600):
        report = (await client.get(url, headers=who)).json()
        if report["state"] == "done":
            break
        await asyncio.sleep(0.1)
    assert report["state"] == "done"
    assert report["done"] == report["total"] == 19
    refused = {r["photo"] for r in report["refused"]}
    assert {"group-two_people.jpg", "group-test_obama_and_biden.jpg", "group-test_kit_with_rose.jpg"} <= refused
    assert report["enrolled"] + len(report["refused"]) == report["total"]
    assert (await client.get(url, headers=rig.bearer("op_a"))).status_code == 403
