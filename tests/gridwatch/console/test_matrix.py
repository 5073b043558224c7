"""The authorization matrix: every route of the console × every role × own/other grid → the expected status.

Built from one table. ``test_every_route_is_in_the_matrix`` fails when a route is added to the app
without a row here, so no route ships unchecked. Each cell gets fresh alerts (one in the caller's
grid, one outside), so the answer of a step never depends on the cells before it.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from tests.gridwatch.console.rig import ConsoleRig
from tests.support.paths import TESTDATA

ROLES = ("admin", "integrator", "operator", "registrar", "auditor", "staff")
# The user who plays each role; their own grid's alert is in g1 (op_a's grid, the grid wang is notified for).
PLAYER = {
    "admin": "admin1",
    "integrator": "integrator1",
    "operator": "op_a",
    "registrar": "registrar1",
    "auditor": "auditor1",
    "staff": "staff_wang",
}
OWN_GRID, OTHER_GRID = "g1", "g2"

# Public: no sign-in needed (POST /api/session is the sign-in itself, tested in test_session.py).
PUBLIC = {("GET", "/healthz"), ("GET", "/"), ("POST", "/api/session")}
PUBLIC_MOUNTS = {"/static"}

ALL = dict.fromkeys(ROLES, 200)
OWN_REGISTRY, OTHER_REGISTRY_NAME = "welfare", "watch"
PHOTO = (TESTDATA / "faces" / "obama" / "obama.jpg").read_bytes()


def only(*roles: str, ok: int = 200) -> dict[str, int]:
    return {role: ok if role in roles else 403 for role in ROLES}


# Another registry: the registrar gets the same 404 as for an unknown one; admins see every registry.
OTHER_REGISTRY = {**only("registrar", "admin", ok=404), "admin": 200}


# (method, path) → (body, {role: status for the caller's own grid}, {role: status for another grid}).
# Routes without an object have one answer for both.
MATRIX: dict[tuple[str, str], tuple[dict[str, Any] | None, dict[str, int], dict[str, int]]] = {
    ("DELETE", "/api/session"): (None, dict.fromkeys(ROLES, 204), dict.fromkeys(ROLES, 204)),
    ("GET", "/api/me"): (None, ALL, ALL),
    ("GET", "/api/openapi.json"): (None, ALL, ALL),
    ("GET", "/api/alerts"): (None, only("operator", "staff"), only("operator", "staff")),
    ("GET", "/api/alerts/stream"): (None, only("operator", "staff"), only("operator", "staff")),
    ("GET", "/api/alerts/{alert_id}"): (None, only("operator", "staff"), only("operator", "staff", ok=404)),
    ("GET", "/api/alerts/{alert_id}/evidence"): (None, only("operator", "staff"), only("operator", "staff", ok=404)),
    ("POST", "/api/alerts/{alert_id}/ack"): ({}, only("operator", "staff"), only("operator", "staff", ok=404)),
    ("POST", "/api/alerts/{alert_id}/comment"): (
        {"comment": "checking"},
        only("operator", "staff"),
        only("operator", "staff", ok=404),
    ),
    # The case does not await confirmation (its registry needs one): a conflict, but only in scope.
    ("POST", "/api/alerts/{alert_id}/confirm"): (
        {},
        only("operator", "staff", ok=409),
        only("operator", "staff", ok=404),
    ),
    ("POST", "/api/alerts/{alert_id}/escalate"): ({}, only("operator"), only("operator", ok=404)),
    ("POST", "/api/alerts/{alert_id}/resolve"): (
        {"outcome": "assisted"},
        only("operator", "staff"),
        only("operator", "staff", ok=404),
    ),
    ("GET", "/api/sources"): (None, only("operator", "integrator", "admin"), only("operator", "integrator", "admin")),
    ("GET", "/api/duty"): (
        None,
        only("operator", "staff", "integrator", "admin"),
        only("operator", "staff", "integrator", "admin"),
    ),
    ("GET", "/api/status"): (None, only("admin", "integrator"), only("admin", "integrator")),
    ("GET", "/api/audit"): (None, only("auditor"), only("auditor")),
    ("GET", "/api/users"): (None, only("admin"), only("admin")),
    # Registries: "own" is registrar1's registry (welfare), "other" one it does not have (watch).
    ("GET", "/api/registries"): (None, only("registrar", "admin"), only("registrar", "admin")),
    ("GET", "/api/registries/{name}/persons"): (None, only("registrar", "admin"), OTHER_REGISTRY),
    ("POST", "/api/registries/{name}/persons"): (
        {"_multipart": "enrol"},
        only("registrar", "admin", ok=201),
        {**OTHER_REGISTRY, "admin": 201},
    ),
    ("PATCH", "/api/registries/{name}/persons/{person_id}"): ({}, only("registrar", "admin"), OTHER_REGISTRY),
    ("DELETE", "/api/registries/{name}/persons/{person_id}"): (
        None,
        only("registrar", "admin", ok=204),
        {**OTHER_REGISTRY, "admin": 204},
    ),
    ("GET", "/api/registries/{name}/persons/{person_id}/approvals"): (None, only("registrar", "admin"), OTHER_REGISTRY),
    # The registries of the rig are watchlists: an approval (corrections only) is refused, but only in scope.
    ("POST", "/api/registries/{name}/persons/{person_id}/approvals"): (
        {
            "approval_doc": "SJ-2026-17",
            "approver": "judicial office",
            "situation_code": 2,
            "start": "2026-12-01",
            "end": "2027-01-31",
        },
        only("registrar", "admin", ok=422),
        {**OTHER_REGISTRY, "admin": 422},
    ),
    ("POST", "/api/registries/{name}/imports"): (
        {"_multipart": "import"},
        only("registrar", "admin", ok=202),
        {**OTHER_REGISTRY, "admin": 202},
    ),
    ("GET", "/api/registries/{name}/imports/{import_id}"): (None, only("registrar", "admin"), OTHER_REGISTRY),
}


def app_routes(rig: ConsoleRig) -> tuple[set[tuple[str, str]], set[str]]:
    routes: set[tuple[str, str]] = set()
    mounts: set[str] = set()
    pending = list(rig.app.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)  # an included router (the registries')
        if included is not None:
            pending += included.routes
        elif isinstance(route, APIRoute):
            routes |= {(method, route.path) for method in route.methods if method != "HEAD"}
        elif isinstance(route, Mount):
            mounts.add(route.path)
        else:
            raise AssertionError(f"a route of an unexpected kind: {route!r}")
    return routes, mounts


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleRig]:
    # One console for the module (building one migrates a database); every cell raises its own alerts.
    rig = ConsoleRig(tmp_path_factory.mktemp("console"))
    rig.feed.close()  # streams end at once, so a 200 on the stream route is a finite answer here
    yield rig
    rig.close()


def client_of(rig: ConsoleRig) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.app), base_url="http://console.test")


def test_every_route_is_in_the_matrix(rig: ConsoleRig) -> None:
    routes, mounts = app_routes(rig)
    assert routes - PUBLIC - set(MATRIX) == set(), "routes without a row in the authorization matrix"
    assert set(MATRIX) - routes == set(), "rows for routes the app does not have"
    assert mounts == PUBLIC_MOUNTS


CELLS = [
    pytest.param(method, path, role, grid, id=f"{method} {path} {role} {grid}")
    for (method, path) in MATRIX
    for role in ROLES
    for grid in ("own", "other")
]


@pytest.mark.parametrize(("method", "path", "role", "grid"), CELLS)
async def test_the_matrix(rig: ConsoleRig, method: str, path: str, role: str, grid: str) -> None:
    own, other = rig.raise_alert(OWN_GRID), rig.raise_alert(OTHER_GRID)
    alert = own if grid == "own" else other
    body, own_status, other_status = MATRIX[(method, path)]
    expected = (own_status if grid == "own" else other_status)[role]
    registry = OWN_REGISTRY if grid == "own" else OTHER_REGISTRY_NAME
    async with client_of(rig) as client:
        url = await concrete(rig, client, path, alert.alert_id, registry)
        answer = await send(client, method, url, body, rig.bearer(PLAYER[role]))
    assert answer.status_code == expected, answer.text


async def concrete(rig: ConsoleRig, client: httpx.AsyncClient, path: str, alert_id: str, registry: str) -> str:
    """The path with its placeholders filled: the cell's alert, registry, a fresh person and import of it."""
    url = path.replace("{alert_id}", alert_id).replace("{name}", registry)
    if "{person_id}" in url:
        url = url.replace("{person_id}", rig.enrol(registry))
    if "{import_id}" in url:
        started = await send(client, "POST", f"/api/registries/{registry}/imports", IMPORT, rig.bearer("admin1"))
        url = url.replace("{import_id}", started.json()["import_id"])
    return url


IMPORT = {"_multipart": "import"}


async def send(
    client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None, headers: dict[str, str]
) -> httpx.Response:
    if body is not None and body.get("_multipart") == "enrol":
        files = [("photos", ("obama.jpg", PHOTO, "image/jpeg"))]
        return await client.request(method, url, data={"name": "Enrolled"}, files=files, headers=headers)
    if body is not None and body.get("_multipart") == "import":
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("Imported Person.jpg", PHOTO)
        files = [("archive", ("persons.zip", archive.getvalue(), "application/zip"))]
        return await client.request(method, url, files=files, headers=headers)
    return await client.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX))
async def test_every_non_public_route_is_401_without_sign_in(rig: ConsoleRig, method: str, path: str) -> None:
    alert = rig.raise_alert(OWN_GRID)
    body = MATRIX[(method, path)][0]
    async with client_of(rig) as client:
        url = await concrete(rig, client, path, alert.alert_id, OWN_REGISTRY)
        anonymous = await send(client, method, url, body, {})
        forged = await send(client, method, url, body, {"Cookie": "gw_session=forged"})
    assert anonymous.status_code == 401
    assert forged.status_code == 401


async def test_a_cookie_session_gets_the_same_answers_as_a_token(rig: ConsoleRig) -> None:
    alert = rig.raise_alert(OTHER_GRID)
    async with client_of(rig) as client:
        csrf = (
            await client.post("/api/session", json={"username": "op_a", "password": "console test password"})
        ).json()["csrf"]
        headers = {"X-CSRF-Token": csrf}
        assert (await client.get(f"/api/alerts/{alert.alert_id}")).status_code == 404
        assert (await client.post(f"/api/alerts/{alert.alert_id}/ack", json={}, headers=headers)).status_code == 404
        assert (await client.get("/api/users")).status_code == 403
