"""Acknowledgement over HTTP: one-click links and the staff API, against an in-memory case desk."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from gridwatch.acks.http import ack_router
from gridwatch.core.audit import AuditLog, verify
from gridwatch.core.config.service import HttpConfig
from gridwatch.core.db import Database
from gridwatch.core.events import CaseState, Outcome
from gridwatch.http import HttpServer, create_app
from notifier.ack_links import AckLinks, UsedLinks
from tests.gridwatch.acks.fakes import FakeCase, FakeDesk, Step

SECRET = "a-test-signing-secret-of-32-chars!"
BASE = "http://gridwatch.test"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    desk: FakeDesk
    links: AckLinks
    audit_path: Path
    clock: Clock
    staff: set[str]
    client: httpx.AsyncClient
    app: object

    def link(self, alert_id: str = "alert-1", staff_id: str = "wang") -> str:
        """The path of a fresh link (the part after the base URL)."""
        return self.links.issue(alert_id, staff_id, self.clock.now).removeprefix(BASE)

    def audit(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]

    def bearer(self, staff_id: str = "wang") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.links.staff_token(staff_id)}"}


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with Database(f"sqlite:///{tmp_path / 'gridwatch.sqlite3'}") as db:
        yield db


@pytest.fixture
async def setup(tmp_path: Path, database: Database) -> AsyncIterator[Setup]:
    staff = {"wang", "li"}
    desk = FakeDesk(staff, {"alert-1": FakeCase(), "alert-2": FakeCase()})
    links = AckLinks(SECRET, ttl_s=3600, base_url=BASE)
    clock = Clock(1_800_000_000.0)
    audit_path = tmp_path / "audit.jsonl"
    with AuditLog(audit_path) as audit:
        router = ack_router(desk, links, UsedLinks(database), audit, lambda: staff, clock=clock)
        app = create_app(status=dict, routers=[router])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield Setup(desk, links, audit_path, clock, staff, client, app)


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- one-click links -----------------------------------------------------------------------------------


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_opening_a_link_acknowledges_nothing_and_offers_the_button(setup: Setup) -> None:
    """Link previewers and mail scanners GET every URL: a robot must not stop an escalation."""
    path = setup.link()
    for _ in range(3):
        page = await setup.client.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<form method="post">' in page.text
        assert "alert-1" in page.text
        assert page.headers["cache-control"] == "no-store"
    assert setup.desk.steps == []
    assert setup.audit() == []


async def test_the_pages_button_acknowledges_and_audits(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    before = _count("gridwatch_acks_total", channel="link")
    path = setup.link()
    token = path.removeprefix("/a/")

    response = await setup.client.post(path, content=b"acknowledge=1", headers=FORM)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "acknowledged" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert setup.desk.steps == [Step("acknowledge", "alert-1", "wang", "link")]
    assert _count("gridwatch_acks_total", channel="link") == before + 1
    (record,) = setup.audit()
    assert (record["action"], record["actor"], record["target"]) == ("ack_link.used", "wang", "alert-1")
    assert verify(setup.audit_path).ok
    # The capability itself is in neither the audit log nor the logs.
    assert token not in setup.audit_path.read_text()
    service_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]  # not the client's
    assert all(token not in r.getMessage() for r in service_records)
    # Once used, the page says so instead of offering the button again.
    spent = await setup.client.get(path)
    assert spent.status_code == 409
    assert "<form" not in spent.text


async def test_link_post_answers_json(setup: Setup) -> None:
    response = await setup.client.post(setup.link(staff_id="li"))
    assert response.status_code == 200
    assert response.json() == {
        "alert_id": "alert-1",
        "state": "acknowledged",
        "level": 0,
        "acked_by": "li",
        "confirmations": 0,
        "changed": True,
    }


async def test_reused_link_is_409_and_changes_nothing(setup: Setup) -> None:
    path = setup.link()
    assert (await setup.client.post(path)).status_code == 200
    setup.desk.cases["alert-1"] = FakeCase()  # even had the case reopened, the link stays spent
    before = _count("gridwatch_acks_rejected_total", channel="link", reason="reused")

    again = await setup.client.post(path)

    assert again.status_code == 409
    assert again.json() == {"detail": "this link was used already"}
    assert setup.desk.cases["alert-1"].state is CaseState.NOTIFIED
    assert len(setup.desk.steps) == 1
    assert _count("gridwatch_acks_rejected_total", channel="link", reason="reused") == before + 1
    assert [(r["action"], r["details"]["reason"]) for r in setup.audit()[1:]] == [("ack_link.refused", "reused")]


def _forged(path: str) -> str:
    body, _, mac = path.removeprefix("/a/").partition(".")
    return f"/a/{body}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"


REFUSED_LINKS: list[tuple[Callable[[Setup], str], int, str]] = [
    (lambda s: _forged(s.link()), 400, "invalid"),
    (lambda s: "/a/not-a-token", 400, "invalid"),
    (lambda s: "/a/" + "x" * 2000, 400, "invalid"),
    (lambda s: s.link("alert-404"), 404, "unknown_alert"),
    (lambda s: s.link(staff_id="gone"), 403, "unknown_staff"),
]


@pytest.mark.parametrize(
    ("method", "make_path", "status", "reason"),
    # Opening a link (GET) reads no case: an unknown alert is refused when the button is pressed (POST).
    [("POST", *case) for case in REFUSED_LINKS] + [("GET", *case) for case in REFUSED_LINKS if case[1] != 404],
)
async def test_refused_links_change_nothing(
    setup: Setup, make_path: Callable[[Setup], str], status: int, reason: str, method: str
) -> None:
    path = make_path(setup)
    before = _count("gridwatch_acks_rejected_total", channel="link", reason=reason)

    response = await setup.client.request(method, path)

    assert response.status_code == status
    if method == "POST":
        assert set(response.json()) == {"detail"}
    assert setup.desk.steps == []
    assert all(case.state is CaseState.NOTIFIED for case in setup.desk.cases.values())
    assert _count("gridwatch_acks_rejected_total", channel="link", reason=reason) == before + 1
    (record,) = setup.audit()
    assert record["action"] == "ack_link.refused"
    assert record["details"]["reason"] == reason  # type: ignore[index]
    assert path.removeprefix("/a/") not in setup.audit_path.read_text()


async def test_expired_link_is_410(setup: Setup) -> None:
    path = setup.link()
    setup.clock.now += 3600
    response = await setup.client.get(path)
    assert response.status_code == 410
    assert "expired" in response.text
    assert setup.desk.steps == []
    (record,) = setup.audit()
    assert (record["action"], record["actor"], record["target"]) == ("ack_link.refused", "wang", "alert-1")
    assert record["details"]["reason"] == "expired"  # type: ignore[index]


async def test_a_refused_use_does_not_spend_the_link(setup: Setup) -> None:
    path = setup.link("alert-later")
    assert (await setup.client.post(path)).status_code == 404  # the case does not exist yet
    setup.desk.cases["alert-later"] = FakeCase()
    setup.desk.fail_next = 1  # then the desk's database is down for a moment
    assert (await setup.client.post(path)).status_code == 503
    assert setup.desk.steps == []

    assert (await setup.client.post(path)).status_code == 200
    assert setup.desk.steps == [Step("acknowledge", "alert-later", "wang", "link")]


async def test_a_link_for_a_case_already_acknowledged_says_so(setup: Setup) -> None:
    assert (await setup.client.post("/api/alerts/alert-1/ack", headers=setup.bearer("li"))).status_code == 200
    response = await setup.client.post(setup.link())
    assert response.status_code == 200
    assert response.json()["changed"] is False
    assert response.json()["acked_by"] == "li"


async def test_concurrent_double_use_acknowledges_once(setup: Setup) -> None:
    path = setup.link()
    setup.desk.ack_delay_s = 0.05  # the first use is inside the desk while the others arrive

    responses = await asyncio.gather(*(setup.client.post(path, headers=FORM) for _ in range(5)))

    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409, 409]
    assert setup.desk.calls == 1
    assert setup.desk.steps == [Step("acknowledge", "alert-1", "wang", "link")]
    actions = sorted(r["action"] for r in setup.audit())
    assert actions == ["ack_link.refused"] * 4 + ["ack_link.used"]


# --- staff API -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer gws_wang_" + "A" * 43},
        {"Authorization": "Basic d2FuZzp4"},
        {"Authorization": "Bearer " + AckLinks("another-secret-of-enough-length", 60, BASE).staff_token("wang")},
    ],
)
async def test_api_needs_a_staff_token(setup: Setup, headers: dict[str, str]) -> None:
    for action, body in (("ack", None), ("confirm", None), ("resolve", {"outcome": "assisted"})):
        response = await setup.client.post(f"/api/alerts/alert-1/{action}", headers=headers, json=body)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert set(response.json()) == {"detail"}
    assert setup.desk.calls == 0


async def test_api_token_of_staff_no_longer_configured_is_403(setup: Setup) -> None:
    setup.staff.discard("li")
    response = await setup.client.post("/api/alerts/alert-1/ack", headers=setup.bearer("li"))
    assert response.status_code == 403
    assert setup.desk.calls == 0


async def test_api_ack(setup: Setup) -> None:
    before = _count("gridwatch_acks_total", channel="api")
    response = await setup.client.post("/api/alerts/alert-1/ack", headers=setup.bearer(), json={"comment": "on my way"})
    assert response.status_code == 200
    assert response.json() == {
        "alert_id": "alert-1",
        "state": "acknowledged",
        "level": 0,
        "acked_by": "wang",
        "confirmations": 0,
        "changed": True,
    }
    assert setup.desk.steps == [Step("acknowledge", "alert-1", "wang", "api", "on my way")]
    # Without a body, and a repeat.
    again = await setup.client.post("/api/alerts/alert-1/ack", headers=setup.bearer())
    assert again.status_code == 200
    assert again.json()["changed"] is False
    assert _count("gridwatch_acks_total", channel="api") == before + 2


@pytest.mark.parametrize(
    "body",
    [
        {"comment": "x" * 2001},
        {"comment": "ok", "extra": 1},
        {"comment": 5},
        [1, 2],
    ],
)
async def test_api_ack_refuses_bad_bodies(setup: Setup, body: object) -> None:
    response = await setup.client.post("/api/alerts/alert-1/ack", headers=setup.bearer(), json=body)
    assert response.status_code == 422
    assert "x" * 50 not in response.text  # the value is not echoed
    bad_json = await setup.client.post(
        "/api/alerts/alert-1/ack", headers={**setup.bearer(), "Content-Type": "application/json"}, content=b"{nope"
    )
    assert bad_json.status_code == 422
    assert setup.desk.calls == 0


async def test_api_maps_case_errors(setup: Setup) -> None:
    before = _count("gridwatch_acks_rejected_total", channel="api", reason="unknown_alert")
    missing = await setup.client.post("/api/alerts/alert-404/ack", headers=setup.bearer())
    assert missing.status_code == 404
    assert set(missing.json()) == {"detail"}
    assert _count("gridwatch_acks_rejected_total", channel="api", reason="unknown_alert") == before + 1

    resolved = await setup.client.post(
        "/api/alerts/alert-2/resolve", headers=setup.bearer(), json={"outcome": "person_ok", "comment": "fine"}
    )
    assert resolved.status_code == 200
    assert resolved.json()["state"] == "resolved"
    assert setup.desk.cases["alert-2"].outcome is Outcome.PERSON_OK
    assert (await setup.client.post("/api/alerts/alert-2/ack", headers=setup.bearer())).status_code == 409
    other = await setup.client.post("/api/alerts/alert-2/resolve", headers=setup.bearer(), json={"outcome": "other"})
    assert other.status_code == 409
    assert setup.desk.cases["alert-2"].outcome is Outcome.PERSON_OK


@pytest.mark.parametrize("body", [None, {}, {"outcome": "solved"}, {"outcome": "assisted", "by": "li"}])
async def test_api_resolve_needs_an_outcome(setup: Setup, body: object) -> None:
    response = await setup.client.post("/api/alerts/alert-1/resolve", headers=setup.bearer(), json=body)
    assert response.status_code == 422
    assert setup.desk.calls == 0


async def test_api_confirm_by_two_different_operators(setup: Setup) -> None:
    setup.desk.cases["alert-3"] = FakeCase(state=CaseState.PENDING_CONFIRMATION)
    first = await setup.client.post("/api/alerts/alert-3/confirm", headers=setup.bearer("wang"))
    assert first.status_code == 200
    assert first.json()["confirmations"] == 1
    twice = await setup.client.post("/api/alerts/alert-3/confirm", headers=setup.bearer("wang"))
    assert twice.status_code == 409
    second = await setup.client.post("/api/alerts/alert-3/confirm", headers=setup.bearer("li"))
    assert second.status_code == 200
    assert second.json()["confirmations"] == 2


# --- through a real listener -----------------------------------------------------------------------------


async def test_link_and_api_through_uvicorn(setup: Setup) -> None:
    server = HttpServer(setup.app, "127.0.0.1", 0)  # type: ignore[arg-type]
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            path = setup.link()
            offered = await client.get(path)
            assert (offered.status_code, "<form" in offered.text) == (200, True)
            first = await client.post(path, content=b"acknowledge=1", headers=FORM)
            assert first.status_code == 200
            assert "acknowledged" in first.text
            assert (await client.get(path)).status_code == 409
            resolved = await client.post(
                "/api/alerts/alert-1/resolve", headers=setup.bearer(), json={"outcome": "assisted"}
            )
            assert resolved.status_code == 200
            assert resolved.json()["state"] == "resolved"
            assert (await client.post("/api/alerts/alert-1/ack")).status_code == 401
    finally:
        await server.stop()
    assert [s.action for s in setup.desk.steps] == ["acknowledge", "resolve"]


async def test_refused_links_count_like_failed_sign_ins(tmp_path: Path, database: Database) -> None:
    """Guessing links is bounded per address: refusals (here forged links) lead to 429 like 401s do."""
    staff = {"wang"}
    desk = FakeDesk(staff, {"alert-1": FakeCase()})
    links = AckLinks(SECRET, ttl_s=3600, base_url=BASE)
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        router = ack_router(desk, links, UsedLinks(database), audit, lambda: staff)
        app = create_app(status=dict, routers=[router], config=HttpConfig(unauthenticated_per_minute=3))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            answers = [(await client.get(f"/a/forged-{n}")).status_code for n in range(5)]
    assert answers[:3] == [400, 400, 400]
    assert answers[3:] == [429, 429]
    assert desk.steps == []
