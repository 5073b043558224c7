"""The console's HTTP API (FastAPI) and its pages, on their own listener (never the device-facing one).

Authentication: the session cookie ``gw_session`` (HttpOnly, SameSite=Strict, Secure under TLS; every
POST/PATCH/DELETE made with it carries ``X-CSRF-Token``) or ``Authorization: Bearer`` (machine clients).
Unauthenticated clients get ``/healthz``, the pages and ``POST /api/session`` only; everything else 401.

Authorization is two-fold: the role decides which routes a user may call (403 otherwise), the user's
scope (``gridwatch.console.scope``) which objects exist for them (404 otherwise, never counted, never
streamed). Bodies are strict (``extra="forbid"``): ``{"role": "admin"}`` in a body is a 422.

The app needs no running service: ``ConsoleDeps`` takes the accounts, the case desk (reads), the case
handling port (``CaseStage``), the config, the feed, the audit log's path and status callables.
"""

import asyncio
import datetime as dt
import hmac
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridwatch import __version__
from gridwatch.console.accounts import Accounts, SignIn, SignInRefusedError, User
from gridwatch.console.feed import Feed
from gridwatch.console.registries import REGISTRY_ROLES, RegistryAccess, registries_router
from gridwatch.console.scope import ALERT_ROLES, AlertScope, grids_below
from gridwatch.core.audit import AuditLog
from gridwatch.core.config.root import GridwatchConfig
from gridwatch.core.crypto import DecryptError
from gridwatch.core.events import Alert, CaseEvent, CaseState, Outcome
from gridwatch.core.interfaces import CaseConflictError, CaseError, CaseNotFoundError, CaseView
from gridwatch.core.metrics import LOOP_ERRORS
from gridwatch.core.redact import redact_text
from notifier.case_store import CaseRow
from notifier.desk import Desk
from notifier.duty import DutyRoster
from recognition.evidence import EvidenceNotFoundError, EvidenceObject, EvidenceStore

log = logging.getLogger(__name__)

COOKIE = "gw_session"
CSRF_HEADER = "X-CSRF-Token"
STATIC_DIR = Path(__file__).parent / "static"
UNSAFE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
PING_S = 15.0
MAX_LIMIT = 500

# What each role may call besides its alerts (see the contract, /work/notes/console-api.md).
SOURCES_ROLES = ("operator", "integrator", "admin")
DUTY_ROLES = ("operator", "staff", "integrator", "admin")
STATUS_ROLES = ("admin", "integrator")
AUDIT_ROLES = ("auditor",)
USERS_ROLES = ("admin",)
# Staff handle their own notifications (as the staff API lets them); escalating by hand is the operators'.
ESCALATE_ROLES = ("operator",)

# Answers of the API are private and never framed; scripts, styles and images come from this origin only.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
}


class CaseActions(Protocol):
    """The case handling port (``notifier.case_stage.CaseStage``)."""

    async def acknowledge(
        self, alert_id: str, by: str, *, channel: str, comment: str | None = None, scope_checked: bool = False
    ) -> CaseView: ...

    async def confirm(self, alert_id: str, by: str, *, channel: str, scope_checked: bool = False) -> CaseView: ...

    async def resolve(
        self,
        alert_id: str,
        by: str,
        outcome: Outcome,
        *,
        channel: str,
        comment: str | None = None,
        scope_checked: bool = False,
    ) -> CaseView: ...

    async def escalate(self, alert_id: str, by: str, *, channel: str, scope_checked: bool = False) -> CaseView: ...

    async def comment(
        self, alert_id: str, by: str, text: str, *, channel: str, scope_checked: bool = False
    ) -> CaseView: ...


@dataclass
class ConsoleDeps:
    accounts: Accounts
    sign_in: SignIn
    desk: Desk
    cases: CaseActions
    config: Callable[[], GridwatchConfig]  # read per request: a reload changes grids and sources
    feed: Feed
    audit_path: Path
    status: Callable[[], dict[str, Any]] = dict
    healthy: Callable[[], bool] = lambda: True
    secure_cookies: bool = False
    session_ttl_s: int = 43200
    static_dir: Path | None = STATIC_DIR
    evidence: EvidenceStore | None = None  # with the data keyring: None when no registry keeps evidence
    audit: AuditLog | None = None  # evidence views are audited
    registries: RegistryAccess | None = None  # the registry routes, when the service gives them
    ping_s: float = PING_S
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))


# -- bodies (strict) ----------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignInBody(_Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class AckBody(_Strict):
    comment: str | None = Field(default=None, max_length=2000)


class CommentBody(_Strict):
    comment: str = Field(min_length=1, max_length=2000)


class EmptyBody(_Strict):
    pass


class ResolveBody(_Strict):
    outcome: Outcome
    comment: str | None = Field(default=None, max_length=2000)


# -- the signed-in principal -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    via: Literal["session", "token"]
    csrf: str | None = None
    session_id: str | None = None


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class _SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every answer, and ``Cache-Control: no-store`` to the API's."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        private = str(scope.get("path", "")).startswith("/api/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                if private and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self._app(scope, receive, with_headers)


def create_console_app(deps: ConsoleDeps) -> FastAPI:
    app = FastAPI(title="gridwatch console", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_SecurityHeaders)

    # -- authentication -------------------------------------------------------------------------

    async def principal(request: Request) -> Principal:
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, credentials = authorization.partition(" ")
            user = None
            if scheme.lower() == "bearer" and credentials.strip():
                user = await asyncio.to_thread(deps.accounts.user_of_token, credentials.strip())
            if user is None:
                raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})
            return Principal(user, "token")
        session_id = request.cookies.get(COOKIE)
        if session_id:
            info = await asyncio.to_thread(deps.accounts.session, session_id)
            if info is not None:
                if request.method in UNSAFE_METHODS:
                    sent = request.headers.get(CSRF_HEADER, "")
                    if not hmac.compare_digest(sent.encode(), info.csrf.encode()):
                        raise HTTPException(403, "missing or wrong CSRF token")
                return Principal(info.user, "session", info.csrf, session_id)
        raise HTTPException(401, "sign in first")

    def roles(*allowed: str) -> Callable[[Principal], Awaitable[Principal]]:
        async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
            if who.user.role not in allowed:
                raise HTTPException(403, "your role may not do this")
            return who

        return check

    Anyone = Annotated[Principal, Depends(principal)]
    AlertReader = Annotated[Principal, Depends(roles(*ALERT_ROLES))]
    Escalator = Annotated[Principal, Depends(roles(*ESCALATE_ROLES))]
    AlertId = Annotated[str, PathParam(min_length=1, max_length=255)]

    # -- public -----------------------------------------------------------------------------------

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """``ok`` or ``degraded`` (a camera or gate not online); the detail is behind sign-in."""
        return {"status": "ok" if deps.healthy() else "degraded"}

    @app.post("/api/session")
    async def sign_in(body: SignInBody, request: Request) -> JSONResponse:
        """Sign in: sets the session cookie and answers the user and the session's CSRF token."""
        address = request.client.host if request.client else "unknown"
        try:
            user, session_id, csrf = await asyncio.to_thread(deps.sign_in, body.username, body.password, address)
        except SignInRefusedError as refused:
            headers = {"Retry-After": str(refused.retry_after_s)} if refused.retry_after_s is not None else None
            return JSONResponse({"detail": refused.detail}, refused.status, headers=headers)
        response = JSONResponse({"user": user.public(), "csrf": csrf})
        response.set_cookie(
            COOKIE,
            session_id,
            max_age=deps.session_ttl_s,
            path="/",
            secure=deps.secure_cookies,
            httponly=True,
            samesite="strict",
        )
        return response

    # -- the signed-in user -------------------------------------------------------------------------

    @app.delete("/api/session", status_code=204)
    async def sign_out(who: Anyone) -> Response:
        """Sign out: ends the session (a bearer token stays valid) and clears the cookie."""
        if who.session_id is not None:
            await asyncio.to_thread(deps.accounts.end_session, who.session_id)
            await _audit("console.sign_out", who.user.name, "console")
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/", secure=deps.secure_cookies, httponly=True, samesite="strict")
        return response

    @app.get("/api/me")
    async def me(who: Anyone) -> dict[str, Any]:
        config = deps.config()
        return {
            **who.user.public(),
            "csrf": who.csrf,
            "timezone": config.service.console.timezone,
            "language": config.service.console.language,
        }

    @app.get("/api/openapi.json", include_in_schema=False)
    async def openapi(who: Anyone) -> dict[str, Any]:
        return app.openapi()

    # -- alerts -----------------------------------------------------------------------------------

    def registry_threshold(name: str | None) -> float | None:
        """The threshold in use: a running registry's (`threshold: auto` solved for its size), else the config's."""
        if name is None:
            return None
        if deps.registries is not None:
            running = deps.registries.parts.registries.configs.get(name)
            if running is not None:
                return running.threshold
        registry = next((r for r in deps.config().registries if r.name == name), None)
        return None if registry is None else registry.threshold

    def alert_item(row: CaseRow) -> dict[str, Any]:
        alert, case = row.alert, row.case
        return {
            "alert_id": alert.alert_id,
            "created_at": iso(alert.created_at),
            "rule": alert.rule,
            "kind": alert.kind,
            "severity": str(alert.severity),
            "person_id": alert.person_id,
            "registry": alert.registry,
            "source": alert.source,
            "source_kind": str(alert.source_kind),
            "grid": alert.grid,
            "similarity": alert.similarity,
            "threshold": registry_threshold(alert.registry),
            "explanation": alert.explanation,
            "state": str(case.state),
            "level": case.level,
            "acked_by": case.acked_by,
            "recipients": list(case.recipients),
            "confirmations": row.confirmations,
            "has_evidence": False,  # evidence storage comes with the registries' evidence settings
        }

    def timeline_entry(event: CaseEvent) -> dict[str, Any]:
        return {
            "type": event.type.removeprefix("gridwatch.alert.").removesuffix(".v1"),
            "at": iso(event.at),
            "actor": event.actor,
            "channel": event.channel,
            "comment": event.comment,
            "outcome": None if event.outcome is None else str(event.outcome),
            "level": event.level,
            "recipients": list(event.recipients),
        }

    async def rows_in_scope(
        user: User,
        *,
        alert_id: str | None = None,
        state: CaseState | None = None,
        grid: str | None = None,
        registry: str | None = None,
        rule: str | None = None,
        since: dt.datetime | None = None,
        limit: int = 100,
    ) -> list[CaseRow]:
        scope = AlertScope.of(user, deps.config())
        if scope.nothing:
            return []
        return await asyncio.to_thread(
            deps.desk.list_cases,
            states=None if state is None else [str(state)],
            grids=scope.grid_filter(grid),
            registries=None if registry is None else [registry],
            rules=None if rule is None else [rule],
            since=since,
            limit=limit,
            recipient=scope.recipient,
            alert_id=alert_id,
        )

    async def one_in_scope(user: User, alert_id: str) -> CaseRow:
        rows = await rows_in_scope(user, alert_id=alert_id, limit=1)
        if not rows:
            raise HTTPException(404, "no such alert")  # unknown and out of scope: the same answer
        return rows[0]

    @app.get("/api/alerts")
    async def list_alerts(
        who: AlertReader,
        state: CaseState | None = None,
        grid: Annotated[str | None, Query(max_length=64)] = None,
        registry: Annotated[str | None, Query(max_length=64)] = None,
        rule: Annotated[str | None, Query(max_length=64)] = None,
        since: dt.datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    ) -> dict[str, Any]:
        """The alerts in the caller's scope, newest first."""
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        rows = await rows_in_scope(
            who.user, state=state, grid=grid, registry=registry, rule=rule, since=since, limit=limit
        )
        return {"alerts": [alert_item(row) for row in rows]}

    @app.get("/api/alerts/stream")
    async def stream(who: AlertReader) -> StreamingResponse:
        """Server-sent events: ``alert`` (a new alert) and ``case`` (a case step), in scope only."""
        return StreamingResponse(
            _events(who.user),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _events(user: User) -> AsyncIterator[str]:
        with deps.feed.subscribe() as subscription:
            yield "retry: 3000\n: connected\n\n"
            while True:
                try:
                    event = await subscription.next(deps.ping_s)
                except EOFError:
                    return
                if event is None:
                    yield ": ping\n\n"
                    continue
                try:
                    rows = await rows_in_scope(user, alert_id=event.alert_id, limit=1)
                except Exception as exc:
                    LOOP_ERRORS.labels(loop="console.stream").inc()
                    log.warning("console stream: cannot read alert %s: %s", event.alert_id, redact_text(str(exc)))
                    continue
                if rows:  # out of scope: nothing is sent, not even that something happened
                    data = json.dumps(alert_item(rows[0]), ensure_ascii=False, separators=(",", ":"))
                    yield f"event: {event.kind}\ndata: {data}\n\n"

    @app.get("/api/alerts/{alert_id}")
    async def get_alert(alert_id: AlertId, who: AlertReader) -> dict[str, Any]:
        row = await one_in_scope(who.user, alert_id)
        events = await asyncio.to_thread(deps.desk.timeline, alert_id)
        has_evidence = deps.evidence is not None and bool(
            await asyncio.to_thread(evidence_objects, deps.evidence, row.alert)
        )
        item = {**alert_item(row), "has_evidence": has_evidence}
        return {**item, "timeline": [timeline_entry(event) for event in events]}

    @app.get("/api/alerts/{alert_id}/evidence")
    async def alert_evidence(
        alert_id: AlertId, who: AlertReader, part: Literal["face", "frame", "reference"] = "face"
    ) -> Response:
        """The captured face or frame of the match, or the person's enrolled reference photo (JPEG);
        404 when the registry keeps none. Every view is audited."""
        row = await one_in_scope(who.user, alert_id)
        alert = row.alert
        if deps.evidence is None or alert.registry is None or alert.person_id is None:
            raise HTTPException(404, "no evidence for this alert")
        image = await asyncio.to_thread(evidence_image, deps.evidence, alert, part)
        if image is None:
            raise HTTPException(404, "no evidence for this alert")
        if deps.audit is not None:
            details = {"part": part, "registry": alert.registry, "person_id": alert.person_id}
            await asyncio.to_thread(
                deps.audit.append, "evidence.viewed", actor=who.user.name, target=alert_id, details=details
            )
        return Response(image, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def handle(who: Principal, alert_id: str, step: Callable[[str, bool], Awaitable[CaseView]]) -> dict[str, Any]:
        await one_in_scope(who.user, alert_id)
        # Operators act under their staff id when they have one, else their user name; the scope was
        # checked here. Staff act as their staff member, and the desk checks them as it checks the staff API.
        user = who.user
        if user.role == "operator":
            actor, checked = user.staff_id or user.name, True
        else:
            assert user.staff_id is not None  # a staff user without one has no alerts in scope
            actor, checked = user.staff_id, False
        try:
            await step(actor, checked)
        except CaseNotFoundError:
            raise HTTPException(404, "no such alert") from None
        except CaseConflictError as exc:
            raise HTTPException(409, redact_text(str(exc)) or "not possible in the case's state") from None
        except CaseError as exc:
            raise HTTPException(exc.status, redact_text(str(exc)) or "refused") from None
        return alert_item(await one_in_scope(user, alert_id))

    @app.post("/api/alerts/{alert_id}/ack")
    async def ack(alert_id: AlertId, who: AlertReader, body: AckBody | None = None) -> dict[str, Any]:
        comment = None if body is None else body.comment
        return await handle(
            who,
            alert_id,
            lambda by, checked: deps.cases.acknowledge(
                alert_id, by, channel="console", comment=comment, scope_checked=checked
            ),
        )

    @app.post("/api/alerts/{alert_id}/comment")
    async def comment(alert_id: AlertId, who: AlertReader, body: CommentBody) -> dict[str, Any]:
        return await handle(
            who,
            alert_id,
            lambda by, checked: deps.cases.comment(
                alert_id, by, body.comment, channel="console", scope_checked=checked
            ),
        )

    @app.post("/api/alerts/{alert_id}/confirm")
    async def confirm(alert_id: AlertId, who: AlertReader, body: EmptyBody | None = None) -> dict[str, Any]:
        return await handle(
            who,
            alert_id,
            lambda by, checked: deps.cases.confirm(alert_id, by, channel="console", scope_checked=checked),
        )

    @app.post("/api/alerts/{alert_id}/escalate")
    async def escalate(alert_id: AlertId, who: Escalator, body: EmptyBody | None = None) -> dict[str, Any]:
        return await handle(
            who,
            alert_id,
            lambda by, checked: deps.cases.escalate(alert_id, by, channel="console", scope_checked=checked),
        )

    @app.post("/api/alerts/{alert_id}/resolve")
    async def resolve(alert_id: AlertId, who: AlertReader, body: ResolveBody) -> dict[str, Any]:
        return await handle(
            who,
            alert_id,
            lambda by, checked: deps.cases.resolve(
                alert_id, by, body.outcome, channel="console", comment=body.comment, scope_checked=checked
            ),
        )

    # -- the site -----------------------------------------------------------------------------------

    def visible_grids(user: User, config: GridwatchConfig) -> set[str] | None:
        """Grids whose sources and duty a user sees: an operator's and a staff member's own; None = all."""
        if user.role == "operator":
            return grids_below(config, user.grids)
        if user.role == "staff":
            person = next((p for p in config.staff if p.id == user.staff_id), None)
            return set() if person is None else grids_below(config, person.grids)
        return None

    @app.get("/api/sources")
    async def sources(who: Annotated[Principal, Depends(roles(*SOURCES_ROLES))]) -> dict[str, Any]:
        config = deps.config()
        grids = visible_grids(who.user, config)
        status = await asyncio.to_thread(deps.status)
        cameras = {c.id: c for c in config.cameras}
        gates = {g.id: g for g in config.gates}

        def shown(grid: str | None) -> bool:
            return grids is None or grid in grids

        camera_items = []
        for item in status.get("cameras", []):
            camera = cameras.get(str(item.get("id")))
            grid = None if camera is None else camera.grid
            if shown(grid):
                camera_items.append(
                    {
                        "id": item.get("id"),
                        "name": "" if camera is None else camera.name,
                        "grid": grid,
                        "state": item.get("state"),
                        "fps": item.get("fps_in", 0.0),
                        "last_frame_at": item.get("last_frame_at"),
                        "errors": item.get("reconnects", 0),
                        "last_error": item.get("last_error"),
                    }
                )
        gate_items = []
        for item in status.get("gates", []):
            gate = gates.get(str(item.get("id")))
            grid = None if gate is None else gate.grid
            if shown(grid):
                gate_items.append(
                    {
                        "id": item.get("id"),
                        "name": "" if gate is None else gate.name,
                        "grid": grid,
                        "kind": item.get("kind"),
                        "state": item.get("state"),
                        "last_event_at": item.get("last_event_at"),
                        "events": item.get("events", 0),
                        "rejected": item.get("rejected", 0),
                    }
                )
        return {"cameras": camera_items, "gates": gate_items}

    @app.get("/api/duty")
    async def duty(who: Annotated[Principal, Depends(roles(*DUTY_ROLES))]) -> dict[str, Any]:
        config = deps.config()
        grids = visible_grids(who.user, config)
        roster = DutyRoster.from_config(config)
        names = {p.id: p.name for p in config.staff}
        now = deps.clock()
        return {
            "grids": [
                {
                    "id": grid.id,
                    "name": grid.name,
                    "parent": grid.parent,
                    "on_duty": [{"id": s, "name": names.get(s, s)} for s in roster.on_duty(grid.id, now)],
                }
                for grid in config.grids
                if grids is None or grid.id in grids
            ]
        }

    @app.get("/api/status")
    async def status(who: Annotated[Principal, Depends(roles(*STATUS_ROLES))]) -> dict[str, Any]:
        return await asyncio.to_thread(deps.status)

    @app.get("/api/audit")
    async def audit(
        who: Annotated[Principal, Depends(roles(*AUDIT_ROLES))],
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        action: Annotated[str | None, Query(max_length=128)] = None,
    ) -> dict[str, Any]:
        """The newest audit records (newest first); ``action``: only actions starting with it."""
        records = await asyncio.to_thread(_read_audit, deps.audit_path, limit, action)
        await _audit("console.audit.read", who.user.name, "audit", {"records": len(records)})
        return {"records": records}

    if deps.registries is not None:
        app.include_router(registries_router(deps.registries, roles(*REGISTRY_ROLES)))

    @app.get("/api/users")
    async def list_users(who: Annotated[Principal, Depends(roles(*USERS_ROLES))]) -> dict[str, Any]:
        users = await asyncio.to_thread(deps.accounts.list_users)
        return {
            "users": [
                {
                    "name": u.name,
                    "role": u.role,
                    "grids": list(u.grids),
                    "registries": list(u.registries),
                    "staff_id": u.staff_id,
                    "disabled": u.disabled,
                }
                for u in users
            ]
        }

    async def _audit(action: str, actor: str, target: str, details: dict[str, object] | None = None) -> None:
        try:
            await asyncio.to_thread(deps.sign_in.audit.append, action, actor=actor, target=target, details=details)
        except Exception:
            LOOP_ERRORS.labels(loop="console.audit").inc()
            log.exception("console: could not audit %s", action)

    # -- the pages ----------------------------------------------------------------------------------

    static_dir = deps.static_dir
    if static_dir is not None and static_dir.is_dir():
        index = static_dir / "index.html"

        @app.get("/", include_in_schema=False)
        async def index_page() -> FileResponse:
            if not index.is_file():
                raise HTTPException(404, "no console pages installed")
            return FileResponse(index, media_type="text/html")

        app.mount("/static", StaticFiles(directory=static_dir), name="static")

    return app


def _read_audit(path: Path, limit: int, action: str | None) -> list[dict[str, Any]]:
    """The newest ``limit`` records (matching ``action`` as a prefix), newest first; one pass over the file."""
    if not path.is_file():
        return []
    newest: deque[dict[str, Any]] = deque(maxlen=limit)
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line: `gridwatch audit verify` reports it
            if action is not None and not str(record.get("action", "")).startswith(action):
                continue
            newest.append({key: record.get(key) for key in ("seq", "at", "action", "actor", "target", "details")})
    return list(reversed(newest))


def evidence_objects(store: EvidenceStore, alert: Alert) -> list[EvidenceObject]:
    """The sealed objects of an alert: its sightings' faces and frames, and its person's reference photo."""
    found = [obj for sighting_id in alert.sightings for obj in store.objects(sighting_id=sighting_id)]
    if alert.person_id is not None:
        found += store.objects(reference_of=alert.person_id)
    return [obj for obj in found if obj.registry == alert.registry and obj.person_id == alert.person_id]


def evidence_image(store: EvidenceStore, alert: Alert, part: str) -> bytes | None:
    """The newest object of ``part`` (face, frame, reference) of an alert, opened; None when there is none."""
    assert alert.registry is not None
    assert alert.person_id is not None
    chosen = [obj for obj in evidence_objects(store, alert) if obj.kind == part]
    if not chosen:
        return None
    newest = max(chosen, key=lambda obj: obj.created_at)
    try:
        return store.get(newest.object_id, registry=alert.registry, person_id=alert.person_id)
    except EvidenceNotFoundError:
        return None  # expired meanwhile
    except DecryptError as exc:
        # A wrong or missing data key: the object exists but cannot be shown; say so in the log only.
        log.error("evidence %s of alert %s cannot be opened: %s", newest.object_id, alert.alert_id, exc)
        return None
