"""HTTP acknowledgement: links (``/a/<token>``) and the staff API (``/api/alerts/{id}/...``).

Opening a link (GET) shows what it acknowledges and a button; only the POST acknowledges, because chat
apps, mail scanners and link previewers fetch every URL they are shown, and an acknowledgement made by a
robot would stop the escalation of an alert that no human has seen.

The case logic is the ``CaseDesk``'s; this module checks who is asking and maps the answers to HTTP.
A link token is a capability: it is never logged nor audited, only a short hash of it
(``token_digest``). Every use and every refusal of a link is audited; whatever is refused changes
nothing.

The staff API authenticates with ``Authorization: Bearer gws_...`` (``AckLinks.staff_token``): a
stand-in until the console issue brings real users. 401 and 403 answers are watched by the HTTP
layer's ``UnauthenticatedLimit``, which slows down token guessing per address.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gridwatch.core.audit import AuditLog
from gridwatch.core.events import Outcome
from gridwatch.core.interfaces import CaseDesk, CaseError, CaseView
from gridwatch.core.metrics import ACKS, ACKS_REJECTED, LOOP_ERRORS
from gridwatch.core.redact import redact_text
from notifier.ack_links import AckLinks, LinkClaims, LinkError, UsedLinks, token_digest

log = logging.getLogger(__name__)

B = TypeVar("B", bound=BaseModel)

# Links and answers about them must not be cached by a proxy nor leak in a Referer to another site.
_PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_BEARER = {"WWW-Authenticate": "Bearer"}
MAX_BODY_BYTES = 16 * 1024  # a comment of 2000 characters, escaped, fits many times


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: str | None = Field(default=None, max_length=2000)


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: Outcome
    comment: str | None = Field(default=None, max_length=2000)


def case_json(view: CaseView) -> dict[str, Any]:
    return {
        "alert_id": view.alert_id,
        "state": str(view.state),
        "level": view.level,
        "acked_by": view.acked_by,
        "confirmations": view.confirmations,
        "changed": view.changed,
    }


class _Refusal(Exception):
    def __init__(
        self,
        status: int,
        reason: str,
        detail: str,
        headers: dict[str, str] | None = None,
        *,
        claims: LinkClaims | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.headers = headers
        self.claims = claims  # of a link refused: whom and what the audit entry names


def _case_reason(exc: CaseError) -> str:
    return {404: "unknown_alert", 409: "conflict"}.get(exc.status, "refused")


def _case_detail(exc: CaseError) -> str:
    text = str(exc)
    return (
        redact_text(text)
        if text
        else {404: "no such alert", 409: "not possible in the case's state"}.get(exc.status, "refused")
    )


def ack_router(
    desk: CaseDesk,
    links: AckLinks,
    used: UsedLinks,
    audit: AuditLog,
    staff_ids: Callable[[], Collection[str]],
    *,
    clock: Callable[[], float] = time.time,
) -> APIRouter:
    """The routes of acknowledgement; ``staff_ids`` answers the configured staff now (hot reload)."""
    router = APIRouter()

    # -- one-click links ---------------------------------------------------------------------------

    async def audit_link(action: str, claims: LinkClaims | None, token: str, **details: object) -> None:
        record = {"link_digest": token_digest(token), **details}
        actor = claims.staff_id if claims is not None else "unknown"
        target = claims.alert_id if claims is not None else "unknown"
        try:
            await asyncio.to_thread(audit.append, action, actor=actor, target=target, details=record)
        except Exception:
            LOOP_ERRORS.labels(loop="acks.audit").inc()
            # The answer stands (it was decided, and an acknowledgement made is not undone); the gap is loud.
            log.exception("acks: could not audit %s of link %s", action, record["link_digest"])

    def checked(token: str, now: float) -> LinkClaims:
        """The link's claims when it is genuine, unexpired and its staff member still configured."""
        try:
            claims = links.verify(token, now)
        except LinkError as exc:
            # Genuine but expired: audited under its staff member and alert.
            raise _Refusal(exc.status, exc.reason, str(exc), claims=exc.claims) from None
        if claims.staff_id not in staff_ids():
            raise _Refusal(403, "unknown_staff", "this link's staff member is no longer configured", claims=claims)
        return claims

    async def refused(refusal: _Refusal, token: str) -> None:
        ACKS_REJECTED.labels(channel="link", reason=refusal.reason).inc()
        await audit_link("ack_link.refused", refusal.claims, token, reason=refusal.reason)

    async def offer_link(token: str) -> LinkClaims:
        """What the page a GET shows needs: a usable link. Nothing is changed (see ``link_page``)."""
        try:
            claims = checked(token, clock())
            try:
                spent = await asyncio.to_thread(used.was_used, claims)
            except Exception as exc:
                LOOP_ERRORS.labels(loop="acks.link_store").inc()
                log.error("acks: cannot read the use of link %s: %s", token_digest(token), redact_text(str(exc)))
                raise _Refusal(503, "unavailable", "try again in a moment", claims=claims) from None
            if spent:
                raise _Refusal(409, "reused", "this link was used already", claims=claims)
        except _Refusal as refusal:
            await refused(refusal, token)
            raise
        return claims

    async def use_link(token: str) -> CaseView:
        now = clock()
        claims: LinkClaims | None = None
        try:
            claims = checked(token, now)
            # Single use, against concurrent clicks (and several service instances): the link is claimed
            # in the database *before* the acknowledgement and the claim is released if the acknowledgement
            # does not happen. Of two concurrent uses exactly one wins the insert and reaches the desk, the
            # other is refused as reused without touching the case. The price is a crash between claim and
            # acknowledgement: that one link is spent while the case stays unacknowledged, which fails
            # loud (the ladder keeps ringing, every later notification carries a fresh link, the API
            # works) rather than silent. Claiming after the acknowledgement instead would let both
            # concurrent uses reach the desk.
            try:
                claimed = await asyncio.to_thread(used.use, claims, now)
            except Exception as exc:
                LOOP_ERRORS.labels(loop="acks.link_store").inc()
                log.error("acks: cannot record the use of link %s: %s", token_digest(token), redact_text(str(exc)))
                raise _Refusal(503, "unavailable", "try again in a moment") from None
            if not claimed:
                raise _Refusal(409, "reused", "this link was used already")
            try:
                view = await desk.acknowledge(claims.alert_id, claims.staff_id, channel="link")
            except BaseException as exc:
                await _release(claims, now, token)
                if isinstance(exc, CaseError):
                    raise _Refusal(exc.status, _case_reason(exc), _case_detail(exc)) from None
                if isinstance(exc, Exception):
                    log.error("acks: acknowledgement by link %s failed: %s", token_digest(token), redact_text(str(exc)))
                    raise _Refusal(503, "unavailable", "try again in a moment") from None
                raise
        except _Refusal as refusal:
            if refusal.claims is None:
                refusal.claims = claims
            await refused(refusal, token)
            raise
        ACKS.labels(channel="link").inc()
        await audit_link("ack_link.used", claims, token, state=str(view.state), changed=view.changed)
        return view

    async def _release(claims: LinkClaims, used_at: float, token: str) -> None:
        try:
            await asyncio.to_thread(used.release, claims, used_at)
        except Exception as exc:
            LOOP_ERRORS.labels(loop="acks.link_store").inc()
            log.error(
                "acks: link %s stays spent though it acknowledged nothing: %s",
                token_digest(token),
                redact_text(str(exc)),
            )

    @router.get("/a/{token}", response_class=HTMLResponse)
    async def link_page(token: str) -> Response:
        # A GET acknowledges nothing: chat apps, mail scanners and link previewers fetch every link they see,
        # and an alert acknowledged by a robot stops its escalation while no human has read it. The page
        # offers the button; the POST it sends acknowledges.
        try:
            claims = await offer_link(token)
        except _Refusal as refusal:
            return HTMLResponse(_page("Not acknowledged", refusal.detail), refusal.status, headers=_PRIVATE_HEADERS)
        return HTMLResponse(_offer_page(claims.alert_id), headers=_PRIVATE_HEADERS)

    @router.post("/a/{token}")
    async def link_post(token: str, request: Request) -> Response:
        # The page's form asks for a page back; machine clients (a mobile gateway) get JSON.
        as_page = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        try:
            view = await use_link(token)
        except _Refusal as refusal:
            if as_page:
                return HTMLResponse(_page("Not acknowledged", refusal.detail), refusal.status, headers=_PRIVATE_HEADERS)
            return JSONResponse({"detail": refusal.detail}, refusal.status, headers=_PRIVATE_HEADERS)
        if as_page:
            text = f"Alert {view.alert_id} is acknowledged" + ("." if view.changed else " (it was already).")
            return HTMLResponse(_page("Acknowledged", text), headers=_PRIVATE_HEADERS)
        return JSONResponse(case_json(view), headers=_PRIVATE_HEADERS)

    # -- staff API ---------------------------------------------------------------------------------

    def staff_member(request: Request) -> str:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        staff_id = links.staff_of_token(credentials.strip()) if scheme.lower() == "bearer" else None
        if staff_id is None:
            raise _Refusal(401, "unauthenticated", "a staff token is required", _BEARER)
        if staff_id not in staff_ids():
            raise _Refusal(403, "unknown_staff", "this staff member is no longer configured")
        return staff_id

    def api_error(exc: _Refusal | CaseError, *, count_as_ack: bool) -> JSONResponse:
        refusal = exc if isinstance(exc, _Refusal) else _Refusal(exc.status, _case_reason(exc), _case_detail(exc))
        if count_as_ack:
            ACKS_REJECTED.labels(channel="api", reason=refusal.reason).inc()
        return JSONResponse({"detail": refusal.detail}, refusal.status, headers=refusal.headers)

    # Bodies are read by hand, after the token is checked: a stranger learns nothing about them (401 first).
    @router.post("/api/alerts/{alert_id}/ack")
    async def api_ack(alert_id: str, request: Request) -> Response:
        try:
            by = staff_member(request)
            body = await _body(request, AckBody, optional=True)
            comment = body.comment if body is not None else None
            view = await desk.acknowledge(alert_id, by, channel="api", comment=comment)
        except (_Refusal, CaseError) as exc:
            return api_error(exc, count_as_ack=True)
        ACKS.labels(channel="api").inc()
        return JSONResponse(case_json(view))

    @router.post("/api/alerts/{alert_id}/confirm")
    async def api_confirm(alert_id: str, request: Request) -> Response:
        try:
            view = await desk.confirm(alert_id, staff_member(request), channel="api")
        except (_Refusal, CaseError) as exc:
            return api_error(exc, count_as_ack=False)
        return JSONResponse(case_json(view))

    @router.post("/api/alerts/{alert_id}/resolve")
    async def api_resolve(alert_id: str, request: Request) -> Response:
        try:
            by = staff_member(request)
            body = await _body(request, ResolveBody, optional=False)
            assert body is not None
            view = await desk.resolve(alert_id, by, body.outcome, channel="api", comment=body.comment)
        except (_Refusal, CaseError) as exc:
            return api_error(exc, count_as_ack=False)
        return JSONResponse(case_json(view))

    return router


async def _body(request: Request, model: type[B], *, optional: bool) -> B | None:
    raw = await request.body()
    if not raw.strip():
        if optional:
            return None
        raise _Refusal(422, "malformed", "a JSON body is required")
    if len(raw) > MAX_BODY_BYTES:
        raise _Refusal(413, "malformed", "body too large")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        # Field names and reasons only: the values (a comment) are not echoed.
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
        raise _Refusal(422, "malformed", problems) from None


def _offer_page(alert_id: str) -> str:
    """The page of a usable link: what it is for, and the button whose POST acknowledges."""
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Acknowledge alert</title></head>"
        f"<body><h1>Acknowledge alert</h1><p>Alert {html.escape(alert_id)}: acknowledge that you handle it?</p>"
        '<form method="post"><button type="submit" name="acknowledge" value="1">确认 / Acknowledge</button></form>'
        "</body></html>"
    )


def _page(title: str, text: str) -> str:
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )
