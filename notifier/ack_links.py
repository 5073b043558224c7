"""Signed one-click acknowledgement links, staff API tokens, and the single use of links.

A link is ``<base_url>/a/<token>`` with ``token = b64url(payload) "." b64url(mac)``: ``payload`` is
the compact JSON ``[alert_id, staff_id, expires_at, link_id]`` and ``mac`` is HMAC-SHA256 under
``notifier.acks.signing_secret`` over a domain-separation prefix and the encoded payload. The prefix
keeps a link MAC from ever being a valid staff-token MAC (or any other MAC a future feature makes
with the same key), and the other way round.

A link is a capability: it is never logged (callers log ``token_digest`` at most). ``link_id`` (96
random bits) is what single use is recorded under (``UsedLinks``), so each notification's link is
used up on its own.

Staff API tokens (``gws_<staff_id>_<mac>``) are deterministic: the console issue replaces them with
real users; until then rotating the signing secret revokes every token and every link at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, select

from gridwatch.core.db import Database
from gridwatch.core.db.schema import used_ack_links
from gridwatch.core.db.sql import insert

LINK_DOMAIN = b"gridwatch-ack-link-v1\x00"
STAFF_DOMAIN = b"gridwatch-staff-api-v1\x00"
STAFF_TOKEN_PREFIX = "gws_"  # noqa: S105 (a prefix, not a secret)
STAFF_MAC_CHARS = 43  # all of a SHA-256 MAC in unpadded base64url
MAX_TOKEN_CHARS = 1024
LINK_ID_BYTES = 12  # 96 bits


class LinkError(Exception):
    """A link that does not acknowledge anything; ``status`` is the HTTP status it maps to.

    ``claims`` are set only when the link is genuine (expired): whose and for which alert, for the audit log.
    """

    status = 400
    reason = "invalid"

    def __init__(self, message: str, claims: LinkClaims | None = None) -> None:
        super().__init__(message)
        self.claims = claims


class LinkInvalidError(LinkError):
    """Forged, tampered with, truncated or over-long: not a link this service made."""


class LinkExpiredError(LinkError):
    """A genuine link past its expiry."""

    status = 410
    reason = "expired"


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a verified link says: ``staff_id`` acknowledges ``alert_id`` (until ``expires_at``, epoch s)."""

    alert_id: str
    staff_id: str
    link_id: str
    expires_at: float


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def token_digest(token: str) -> str:
    """A short hash of a token: enough to correlate log lines, useless to replay."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:12]


class AckLinks:
    """Issues and verifies one-click links and staff API tokens with one key. Pure: no I/O."""

    def __init__(self, secret: str, ttl_s: int, base_url: str) -> None:
        if not secret:
            raise ValueError("an empty signing secret signs nothing")
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._key = secret.encode("utf-8")
        self._ttl_s = ttl_s
        self._base_url = base_url.rstrip("/")

    def __repr__(self) -> str:  # never shows the key
        return f"AckLinks(base_url={self._base_url!r}, ttl_s={self._ttl_s})"

    @property
    def ttl_s(self) -> int:
        return self._ttl_s

    # -- one-click links ---------------------------------------------------------------------------

    def issue(self, alert_id: str, staff_id: str, now: float) -> str:
        """The full URL ``<base_url>/a/<token>`` by which ``staff_id`` acknowledges ``alert_id``."""
        return f"{self._base_url}/a/{self.issue_token(alert_id, staff_id, now)}"

    def issue_token(self, alert_id: str, staff_id: str, now: float) -> str:
        expires_at = int(now) + self._ttl_s
        link_id = _b64encode(secrets.token_bytes(LINK_ID_BYTES))
        payload = json.dumps([alert_id, staff_id, expires_at, link_id], separators=(",", ":"), ensure_ascii=False)
        body = _b64encode(payload.encode("utf-8"))
        token = f"{body}.{_b64encode(self._link_mac(body))}"
        if len(token) > MAX_TOKEN_CHARS:
            # Ids are bounded by the config (64) and the alert contract (255); this is a programming error.
            raise ValueError("alert and staff ids too long for a link")
        return token

    def verify(self, token: str, now: float) -> LinkClaims:
        """The claims of a genuine, unexpired token; ``LinkInvalidError`` or ``LinkExpiredError`` otherwise."""
        if len(token) > MAX_TOKEN_CHARS:  # before any decoding or hashing
            raise LinkInvalidError("invalid link")
        body, dot, mac_text = token.partition(".")
        if not dot:
            raise LinkInvalidError("invalid link")
        try:
            mac = _b64decode(mac_text)
        except ValueError:
            raise LinkInvalidError("invalid link") from None
        if not body.isascii() or not hmac.compare_digest(mac, self._link_mac(body)):
            raise LinkInvalidError("invalid link")
        # Signed by us from here on: a payload that does not parse is still refused, never trusted half-way.
        try:
            alert_id, staff_id, expires_at, link_id = json.loads(_b64decode(body))
        except (ValueError, TypeError):
            raise LinkInvalidError("invalid link") from None
        if not (
            isinstance(alert_id, str)
            and isinstance(staff_id, str)
            and isinstance(link_id, str)
            and isinstance(expires_at, int)
            and not isinstance(expires_at, bool)
        ):
            raise LinkInvalidError("invalid link")
        claims = LinkClaims(alert_id=alert_id, staff_id=staff_id, link_id=link_id, expires_at=float(expires_at))
        if now >= expires_at:
            raise LinkExpiredError("link expired", claims)
        return claims

    def _link_mac(self, body: str) -> bytes:
        return hmac.new(self._key, LINK_DOMAIN + body.encode("ascii"), hashlib.sha256).digest()

    # -- staff API tokens --------------------------------------------------------------------------

    def staff_token(self, staff_id: str) -> str:
        """``gws_<staff_id>_<mac>``: the bearer token of one staff member for the acknowledgement API."""
        return f"{STAFF_TOKEN_PREFIX}{staff_id}_{self._staff_mac(staff_id)}"

    def staff_of_token(self, token: str) -> str | None:
        """The staff id a genuine token names, else ``None`` (whether that id is still staff is the caller's)."""
        # The MAC is fixed-length and may itself hold "_": cut it off the end rather than split.
        if len(token) > MAX_TOKEN_CHARS or not token.isascii() or not token.startswith(STAFF_TOKEN_PREFIX):
            return None
        if len(token) < len(STAFF_TOKEN_PREFIX) + 2 + STAFF_MAC_CHARS:  # at least one character of staff id
            return None
        staff_id = token[len(STAFF_TOKEN_PREFIX) : -STAFF_MAC_CHARS - 1]
        separator, mac = token[-STAFF_MAC_CHARS - 1], token[-STAFF_MAC_CHARS:]
        if separator != "_" or not hmac.compare_digest(mac, self._staff_mac(staff_id)):
            return None
        return staff_id

    def _staff_mac(self, staff_id: str) -> str:
        digest = hmac.new(self._key, STAFF_DOMAIN + staff_id.encode("utf-8"), hashlib.sha256).digest()
        return _b64encode(digest)[:STAFF_MAC_CHARS]


class UsedLinks:
    """Which links were used (``used_ack_links``), so that each acknowledges once, across processes.

    The primary key on ``link_id`` is the arbiter: of two concurrent uses of one link, on any number
    of service instances, exactly one insert wins. Blocking (a database write): async callers run the
    methods in a worker thread.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    def use(self, claims: LinkClaims, now: float) -> bool:
        """Record the link as used; False (and no change) if it was used before."""

        attempts = 0

        def use(conn: Connection) -> bool:
            nonlocal attempts
            attempts += 1
            inserted = conn.execute(
                insert(conn, used_ack_links)
                .values(
                    link_id=claims.link_id,
                    alert_id=claims.alert_id,
                    staff_id=claims.staff_id,
                    used_at=now,
                    expires_at=claims.expires_at,
                )
                .on_conflict_do_nothing(index_elements=[used_ack_links.c.link_id])
                .returning(used_ack_links.c.link_id)
            ).first()
            if inserted is not None:
                return True
            if attempts == 1:
                return False
            # Used already, on a retry: if an earlier attempt of this very call committed and the answer was
            # lost with the connection, the row carries this call's time, and the use is still this caller's.
            used_at = conn.execute(
                select(used_ack_links.c.used_at).where(used_ack_links.c.link_id == claims.link_id)
            ).scalar_one()
            return bool(used_at == now)

        return self._db.transaction(use, what="ack link use")

    def was_used(self, claims: LinkClaims) -> bool:
        """Whether the link was used already (a read: the page that offers the button asks it)."""
        stmt = select(used_ack_links.c.link_id).where(used_ack_links.c.link_id == claims.link_id)
        return self._db.transaction(
            lambda conn: conn.execute(stmt).first() is not None, what="ack link read", read_only=True
        )

    def release(self, claims: LinkClaims, used_at: float) -> bool:
        """Undo this very ``use`` (same ``used_at``) after the acknowledgement it guarded failed."""
        stmt = used_ack_links.delete().where(
            used_ack_links.c.link_id == claims.link_id, used_ack_links.c.used_at == used_at
        )
        return bool(self._db.transaction(lambda conn: conn.execute(stmt).rowcount, what="ack link release") > 0)

    def forget_expired(self, now: float) -> int:
        """Drop the rows of links past their expiry (verify refuses them anyway); how many went."""
        stmt = used_ack_links.delete().where(used_ack_links.c.expires_at <= now)
        return int(self._db.transaction(lambda conn: conn.execute(stmt).rowcount, what="ack link cleanup"))
