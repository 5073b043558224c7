"""A STAND-IN for the console API of issue 10 — test support only, NOT product code.

It implements, in memory, just enough of the API contract (sign-in with a cookie and a CSRF token, ``/api/me``,
the alert list and detail, the case actions, the live SSE feed, evidence images, registries and their bulk
import) to prove the console's pages in a real browser while the real backend is written elsewhere. It serves the
real pages from ``gridwatch/console/static/``. The page tests run against this; later the same tests point at the
real service. It does not model scope, rate limits or persistence: those are the real backend's to prove.
"""

import asyncio
import contextlib
import io
import json
import secrets
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridwatch.http import HttpServer
from tests.support.console_pages import CONTENT_SECURITY_POLICY
from tests.support.paths import REPO_ROOT

STATIC = REPO_ROOT / "gridwatch" / "console" / "static"
COOKIE = "gw_session"


class _SecurityHeaders:
    """Every answer carries the strict CSP the pages must work under (pure ASGI: the SSE feed streams through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignIn(_Strict):
    username: str
    password: str


class AckBody(_Strict):
    comment: str | None = None


class CommentBody(_Strict):
    comment: str


class EmptyBody(_Strict):
    pass


class ResolveBody(_Strict):
    outcome: Literal["assisted", "person_ok", "false_match", "not_found", "other"]
    comment: str | None = None


@dataclass
class StandInUser:
    name: str
    password: str
    role: str
    grids: list[str] = field(default_factory=list)
    registries: list[str] = field(default_factory=list)
    staff_id: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "grids": self.grids,
            "registries": self.registries,
            "staff_id": self.staff_id,
        }


@dataclass
class RecordedRequest:
    """A state-changing request as the stand-in saw it (the tests check the CSRF header the page sent)."""

    method: str
    path: str
    csrf_header: str | None
    status: int


@dataclass
class StandInImport:
    photos: list[tuple[str, bytes]]
    done: int = 0
    enrolled: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_alert(alert_id: str, **overrides: Any) -> dict[str, Any]:
    """A complete ``AlertItem`` of the contract with plausible values; ``overrides`` replace any field."""
    item: dict[str, Any] = {
        "alert_id": alert_id,
        "created_at": utc_now(),
        "rule": "watchlist-any",
        "kind": "watchlist_match",
        "severity": "warning",
        "person_id": "p-0001",
        "registry": "watchlist",
        "source": "cam-gate-east",
        "source_kind": "camera",
        "grid": "grid-a",
        "similarity": 0.712,
        "threshold": 0.45,
        "explanation": "matched watchlist person p-0001 (0.712 ≥ 0.450) at cam-gate-east",
        "state": "notified",
        "level": 0,
        "acked_by": None,
        "recipients": ["staff-zhang"],
        "confirmations": 0,
        "has_evidence": False,
    }
    item.update(overrides)
    return item


class ConsoleStandIn:
    """The stand-in console API (see the module's docstring); ``serve()`` runs it on a real uvicorn listener."""

    def __init__(
        self,
        users: list[StandInUser],
        *,
        timezone: str | None = "Asia/Shanghai",
        registries: list[dict[str, Any]] | None = None,
    ) -> None:
        self.users = {user.name: user for user in users}
        self.timezone = timezone
        self.registries = registries or []
        self.alerts: dict[str, dict[str, Any]] = {}
        self.evidence: dict[tuple[str, str], Path] = {}
        self.imports: dict[str, StandInImport] = {}
        self.persons: dict[str, list[dict[str, Any]]] = {}
        # Canned answers of the read-only views, by path (the tests fill them in).
        self.canned: dict[str, dict[str, Any]] = {}
        self.recorded: list[RecordedRequest] = []
        self._sessions: dict[str, tuple[StandInUser, str]] = {}
        self._subscribers: set[asyncio.Queue[str | None]] = set()
        self._closing = False
        self._list_gate: asyncio.Event | None = None
        self.app = self._build()

    # --- what the tests drive -------------------------------------------------------------------------

    def add_alert(self, item: dict[str, Any], *, evidence: dict[str, Path] | None = None) -> None:
        """An alert that exists before the page loads (no live event)."""
        self.alerts[item["alert_id"]] = {**item, "timeline": []}
        for part, path in (evidence or {}).items():
            self.evidence[(item["alert_id"], part)] = path

    def push_alert(self, item: dict[str, Any], *, evidence: dict[str, Path] | None = None) -> None:
        """A new alert, stored and sent on the live feed as ``event: alert``."""
        self.add_alert(item, evidence=evidence)
        self._broadcast("alert", self._public(item["alert_id"]))

    def hold_alert_lists(self) -> asyncio.Event:
        """From now on, ``GET /api/alerts`` reads its answer at once but sends it only when the event is set."""
        self._list_gate = asyncio.Event()
        return self._list_gate

    def end_sessions(self) -> None:
        """Forget every session, as an expiry or a restart with new keys would."""
        self._sessions.clear()

    def drop_feeds(self) -> None:
        """End every open live feed, as a restart or a network cut would (browsers reconnect by themselves)."""
        for queue in list(self._subscribers):
            queue.put_nowait(None)

    def csrf_of(self, user_name: str) -> list[str]:
        """The CSRF tokens of ``user_name``'s open sessions."""
        return [csrf for user, csrf in self._sessions.values() if user.name == user_name]

    @property
    def subscribers(self) -> int:
        """Open live-feed connections."""
        return len(self._subscribers)

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Listen on 127.0.0.1, a free port; yields the base URL (``http://127.0.0.1:PORT``)."""
        server = HttpServer(self.app, "127.0.0.1", 0)
        await server.start()
        try:
            yield f"http://127.0.0.1:{server.port}"
        finally:
            # End the open feeds and refuse new ones (browsers reconnect), so the listener stops at once.
            self._closing = True
            self.drop_feeds()
            await server.stop()

    # --- the contract ---------------------------------------------------------------------------------

    def _public(self, alert_id: str) -> dict[str, Any]:
        return {key: value for key, value in self.alerts[alert_id].items() if key != "timeline"}

    def _broadcast(self, event: str, data: dict[str, Any]) -> None:
        message = f"event: {event}\ndata: {json.dumps(data)}\n\n"
        for queue in self._subscribers:
            queue.put_nowait(message)

    def _user(self, request: Request) -> StandInUser:
        session = self._sessions.get(request.cookies.get(COOKIE, ""))
        if session is None:
            raise HTTPException(401, "not signed in")
        return session[0]

    def _alert_reader(self, request: Request) -> StandInUser:
        user = self._user(request)
        if user.role not in ("operator", "staff"):
            raise HTTPException(403, "forbidden")
        return user

    async def _csrf_checked(self, request: Request) -> StandInUser:
        """The contract's CSRF rule: a state-changing request made with the cookie carries X-CSRF-Token."""
        session = self._sessions.get(request.cookies.get(COOKIE, ""))
        header = request.headers.get("X-CSRF-Token")
        status = 200
        if session is None:
            status = 401
        elif header is None or not secrets.compare_digest(header, session[1]):
            status = 403
        self.recorded.append(RecordedRequest(request.method, request.url.path, header, status))
        if session is None:
            raise HTTPException(401, "not signed in")
        if status == 403:
            raise HTTPException(403, "missing or wrong CSRF token")
        return session[0]

    def _build(self) -> FastAPI:
        # Local aliases: this module keeps its annotations evaluated (no `from __future__ import annotations`)
        # so that FastAPI sees these.
        AlertReader = Annotated[StandInUser, Depends(self._alert_reader)]
        CsrfChecked = Annotated[StandInUser, Depends(self._csrf_checked)]
        app = FastAPI(openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)
        app.add_middleware(_SecurityHeaders)
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

        @app.get("/")
        async def index() -> FileResponse:
            return FileResponse(STATIC / "index.html")

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.post("/api/session")
        async def sign_in(body: SignIn, response: Response) -> dict[str, Any]:
            user = self.users.get(body.username)
            if user is None or not secrets.compare_digest(user.password, body.password):
                raise HTTPException(401, "invalid username or password")
            cookie, csrf = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            self._sessions[cookie] = (user, csrf)
            response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", path="/")
            return {"user": user.public(), "csrf": csrf}

        @app.delete("/api/session", status_code=204)
        async def sign_out(request: Request, response: Response) -> None:
            await self._csrf_checked(request)
            self._sessions.pop(request.cookies.get(COOKIE, ""), None)
            response.delete_cookie(COOKIE, path="/")

        @app.get("/api/me")
        async def me(request: Request) -> dict[str, Any]:
            user = self._user(request)
            answer = {**user.public(), "csrf": self._sessions[request.cookies[COOKIE]][1]}
            if self.timezone:
                answer["timezone"] = self.timezone
            return answer

        @app.get("/api/alerts")
        async def alerts(user: AlertReader, state: str | None = None, limit: int = 100) -> dict[str, Any]:
            items = [self._public(key) for key in self.alerts]
            if state:
                items = [item for item in items if item["state"] == state]
            items.sort(key=lambda item: item["created_at"], reverse=True)
            if self._list_gate is not None:
                await self._list_gate.wait()
            return {"alerts": items[:limit]}

        @app.get("/api/alerts/stream")
        async def stream(request: Request, user: AlertReader) -> StreamingResponse:
            if self._closing:
                raise HTTPException(503, "shutting down")
            queue: asyncio.Queue[str | None] = asyncio.Queue()
            self._subscribers.add(queue)

            async def events() -> AsyncIterator[str]:
                try:
                    # retry: a dropped feed is reopened within a fraction of a second (the browser's default is ~3 s).
                    yield "retry: 300\n: connected\n\n"
                    while (message := await queue.get()) is not None:
                        yield message
                finally:
                    self._subscribers.discard(queue)

            return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

        @app.get("/api/alerts/{alert_id}")
        async def alert(alert_id: str, user: AlertReader) -> dict[str, Any]:
            if alert_id not in self.alerts:
                raise HTTPException(404, "not found")
            return self.alerts[alert_id]

        @app.get("/api/alerts/{alert_id}/evidence")
        async def evidence(alert_id: str, part: str, user: AlertReader) -> FileResponse:
            path = self.evidence.get((alert_id, part))
            if path is None:
                raise HTTPException(404, "no such evidence")
            return FileResponse(path, media_type="image/jpeg")

        def step(
            alert_id: str, user: StandInUser, entry_type: str, *, conflict: bool, **changes: Any
        ) -> dict[str, Any]:
            if alert_id not in self.alerts:
                raise HTTPException(404, "not found")
            item = self.alerts[alert_id]
            if conflict:
                raise HTTPException(409, f"the case is {item['state']}")
            entry = {
                "type": entry_type,
                "at": utc_now(),
                "actor": user.name,
                "channel": "console",
                "comment": changes.pop("comment", None),
                "outcome": changes.pop("outcome", None),
                "level": item["level"],
                "recipients": [],
            }
            item.update(changes)
            item["timeline"].append(entry)
            self._broadcast("case", self._public(alert_id))
            return self._public(alert_id)

        def state_of(alert_id: str) -> str:
            return str(self.alerts[alert_id]["state"]) if alert_id in self.alerts else ""

        @app.post("/api/alerts/{alert_id}/ack")
        async def ack(alert_id: str, body: AckBody, user: CsrfChecked) -> Any:
            closed = state_of(alert_id) in ("acknowledged", "resolved")
            return step(
                alert_id, user, "acknowledged", conflict=closed, state="acknowledged", acked_by=user.name,
                comment=body.comment,
            )  # fmt: skip

        @app.post("/api/alerts/{alert_id}/comment")
        async def comment(alert_id: str, body: CommentBody, user: CsrfChecked) -> Any:
            return step(alert_id, user, "commented", conflict=False, comment=body.comment)

        @app.post("/api/alerts/{alert_id}/confirm")
        async def confirm(alert_id: str, body: EmptyBody, user: CsrfChecked) -> Any:
            pending = state_of(alert_id) == "pending_confirmation"
            confirmations = int(self.alerts[alert_id]["confirmations"]) + 1 if pending else 0
            return step(alert_id, user, "confirmed", conflict=not pending, state="open", confirmations=confirmations)

        @app.post("/api/alerts/{alert_id}/escalate")
        async def escalate(alert_id: str, body: EmptyBody, user: CsrfChecked) -> Any:
            closed = state_of(alert_id) == "resolved"
            level = int(self.alerts[alert_id]["level"]) + 1 if alert_id in self.alerts else 0
            return step(alert_id, user, "escalated", conflict=closed, state="escalated", level=level)

        @app.post("/api/alerts/{alert_id}/resolve")
        async def resolve(alert_id: str, body: ResolveBody, user: CsrfChecked) -> Any:
            closed = state_of(alert_id) == "resolved"
            return step(
                alert_id, user, "resolved", conflict=closed, state="resolved", outcome=body.outcome,
                comment=body.comment,
            )  # fmt: skip

        def registrar(request: Request) -> StandInUser:
            user = self._user(request)
            if user.role not in ("registrar", "admin"):
                raise HTTPException(403, "forbidden")
            return user

        Registrar = Annotated[StandInUser, Depends(registrar)]

        @app.get("/api/registries")
        async def registries(user: Registrar) -> dict[str, Any]:
            return {"registries": self.registries}

        @app.post("/api/registries/{name}/imports", status_code=202)
        async def start_import(name: str, archive: Annotated[UploadFile, File()], user: CsrfChecked) -> dict[str, str]:
            try:
                with zipfile.ZipFile(io.BytesIO(await archive.read())) as zipped:
                    photos = [(info.filename, zipped.read(info)) for info in zipped.infolist() if not info.is_dir()]
            except zipfile.BadZipFile as exc:
                raise HTTPException(422, "not a ZIP file") from exc
            import_id = secrets.token_hex(6)
            self.imports[import_id] = StandInImport(photos)
            return {"import_id": import_id}

        @app.get("/api/registries/{name}/imports/{import_id}")
        async def import_status(name: str, import_id: str, user: Registrar) -> dict[str, Any]:
            job = self.imports.get(import_id)
            if job is None:
                raise HTTPException(404, "not found")
            # One photo per look: the progress moves in steps the browser can see, with no clock involved.
            if job.done < len(job.photos):
                photo, data = job.photos[job.done]
                if data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG"):
                    job.enrolled += 1
                else:
                    job.refused.append({"photo": photo, "reason": "not a JPEG or PNG image"})
                job.done += 1
            return {
                "state": "done" if job.done == len(job.photos) else "running",
                "total": len(job.photos),
                "done": job.done,
                "enrolled": job.enrolled,
                "refused": job.refused,
            }

        def canned(path: str, roles: set[str]) -> None:
            async def answer(request: Request) -> dict[str, Any]:
                if self._user(request).role not in roles:
                    raise HTTPException(403, "forbidden")
                return self.canned.get(path, {})

            app.add_api_route(path, answer, methods=["GET"])

        # Which roles may read which view: the contract's table.
        canned("/api/sources", {"operator", "integrator", "admin"})
        canned("/api/duty", {"operator", "staff", "integrator", "admin"})
        canned("/api/status", {"admin", "integrator"})
        canned("/api/audit", {"auditor"})
        canned("/api/users", {"admin"})

        @app.get("/api/registries/{name}/persons")
        async def persons(name: str, user: Registrar) -> dict[str, Any]:
            return {"persons": self.persons.get(name, [])}

        @app.post("/api/registries/{name}/persons", response_model=None)
        async def enrol(
            name: str,
            person_name: Annotated[str, Form(alias="name")],
            photos: Annotated[list[UploadFile], File()],
            user: CsrfChecked,
        ) -> dict[str, Any] | JSONResponse:
            refusals = []
            for photo in photos:
                data = await photo.read()
                if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG")):
                    refusals.append({"photo": photo.filename or "", "reason": "not a JPEG or PNG image"})
            if refusals:
                return JSONResponse({"detail": "no photo could be enrolled", "refusals": refusals}, status_code=422)
            person = {"person_id": secrets.token_hex(4), "name": person_name, "photos": len(photos)}
            self.persons.setdefault(name, []).append(person)
            return person

        @app.delete("/api/registries/{name}/persons/{person_id}", status_code=204)
        async def remove(name: str, person_id: str, user: CsrfChecked) -> None:
            kept = [person for person in self.persons.get(name, []) if person["person_id"] != person_id]
            if len(kept) == len(self.persons.get(name, [])):
                raise HTTPException(404, "not found")
            self.persons[name] = kept

        return app
