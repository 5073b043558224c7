"""Sign-in and out, the cookie's flags, CSRF, bearer tokens, sign-in limits, strict bodies."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.gridwatch.console.rig import PASSWORD, ConsoleRig


def client_of(app: FastAPI, base_url: str = "http://console.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def sign_in(client: httpx.AsyncClient, user: str = "op_a", password: str = PASSWORD) -> str:
    answer = await client.post("/api/session", json={"username": user, "password": password})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["csrf"])


async def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session(console: ConsoleRig) -> None:
    client = client_of(console.app)
    answer = await client.post("/api/session", json={"username": "op_a", "password": PASSWORD})
    assert answer.status_code == 200
    body = answer.json()
    assert body["user"] == {"name": "op_a", "role": "operator", "grids": ["g1"], "registries": [], "staff_id": None}
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("gw_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # no TLS here
    me = await client.get("/api/me")
    assert me.status_code == 200
    assert me.json()["csrf"] == body["csrf"]
    assert me.headers["cache-control"] == "no-store"
    assert me.headers["x-frame-options"] == "DENY"

    assert (await client.delete("/api/session")).status_code == 403  # no CSRF token
    out = await client.delete("/api/session", headers={"X-CSRF-Token": body["csrf"]})
    assert out.status_code == 204
    assert 'gw_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert (await client.get("/api/me")).status_code == 401


async def test_the_cookie_is_secure_under_tls(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path)
    try:
        rig.deps.secure_cookies = True
        from gridwatch.console.app import create_console_app

        client = client_of(create_console_app(rig.deps), "https://console.test")
        answer = await client.post("/api/session", json={"username": "op_a", "password": PASSWORD})
        assert "Secure" in answer.headers["set-cookie"]
    finally:
        rig.close()


async def test_state_changing_requests_with_the_cookie_need_the_csrf_token(console: ConsoleRig) -> None:
    alert = console.raise_alert("g1")
    client = client_of(console.app)
    csrf = await sign_in(client)
    url = f"/api/alerts/{alert.alert_id}/comment"
    assert (await client.post(url, json={"comment": "x"})).status_code == 403
    assert (await client.post(url, json={"comment": "x"}, headers={"X-CSRF-Token": "wrong"})).status_code == 403
    assert (await client.post(url, json={"comment": "x"}, headers={"X-CSRF-Token": csrf})).status_code == 200
    # Reads need none.
    assert (await client.get(f"/api/alerts/{alert.alert_id}")).status_code == 200


async def test_bearer_tokens_need_no_csrf_and_a_wrong_one_is_401(console: ConsoleRig) -> None:
    alert = console.raise_alert("g1")
    client = client_of(console.app)
    answer = await client.post(
        f"/api/alerts/{alert.alert_id}/ack", json={"comment": "on my way"}, headers=console.bearer("op_a")
    )
    assert answer.status_code == 200
    assert answer.json()["state"] == "acknowledged"
    assert answer.json()["acked_by"] == "op_a"
    wrong = await client.get("/api/me", headers={"Authorization": "Bearer gwc_nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    detail = (await client.get(f"/api/alerts/{alert.alert_id}", headers=console.bearer("op_a"))).json()
    assert [(t["type"], t["actor"], t["channel"]) for t in detail["timeline"]] == [
        ("notified", "gridwatch", None),
        ("acknowledged", "op_a", "console"),
    ]
    assert detail["timeline"][1]["comment"] == "on my way"


async def test_wrong_passwords_are_limited_per_user_and_audited(console: ConsoleRig) -> None:
    client = client_of(console.app)
    for _ in range(5):
        answer = await client.post("/api/session", json={"username": "op_a", "password": "not the password"})
        assert answer.status_code == 401
        assert answer.json() == {"detail": "invalid username or password"}
    locked = await client.post("/api/session", json={"username": "op_a", "password": PASSWORD})
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["retry-after"]) <= 300
    records = [json.loads(line) for line in console.audit.path.read_text().splitlines()]
    sign_ins = [r["action"] for r in records if r["action"].startswith("console.sign_in")]
    assert sign_ins == ["console.sign_in.failed"] * 5 + ["console.sign_in.locked"]
    assert "not the password" not in console.audit.path.read_text()


async def test_unknown_fields_in_bodies_are_422_not_privileges(console: ConsoleRig) -> None:
    alert = console.raise_alert("g1")
    client = client_of(console.app)
    escalated = await client.post("/api/session", json={"username": "op_a", "password": PASSWORD, "role": "admin"})
    assert escalated.status_code == 422
    for action, body in [
        ("ack", {"role": "admin"}),
        ("comment", {"comment": "x", "role": "admin"}),
        ("confirm", {"role": "admin"}),
        ("escalate", {"grids": ["g2"]}),
        ("resolve", {"outcome": "assisted", "role": "admin"}),
        ("resolve", {"outcome": "arrested"}),
    ]:
        answer = await client.post(f"/api/alerts/{alert.alert_id}/{action}", json=body, headers=console.bearer("op_a"))
        assert answer.status_code == 422, (action, answer.text)


async def test_health_is_public_and_tells_nothing_more(console: ConsoleRig) -> None:
    client = client_of(console.app)
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/")).status_code == 200
    assert (await client.get("/static/index.html")).status_code == 200
    assert (await client.get("/api/status")).status_code == 401
    assert (await client.get("/docs")).status_code == 404
    assert (await client.get("/openapi.json")).status_code == 404
    assert (await client.get("/api/openapi.json")).status_code == 401
    assert (await client.get("/api/openapi.json", headers=console.bearer("auditor1"))).status_code == 200
