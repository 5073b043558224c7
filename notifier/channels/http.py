"""What the HTTP channels (webhook, WeCom, DingTalk) share: one ``httpx.AsyncClient`` and the error rules.

A channel URL is a credential (robot URLs carry their access token), so no text that may reach a log,
an exception or the outbox's ``last_error`` holds it: errors name the channel, never the URL, and the
texts of httpx's exceptions are scrubbed of the URL before they are raised on.

What a response means for the outbox:

- 2xx: delivered (the robots then still say yes or no in their JSON body: see ``errcode``).
- 408, 429: the receiver is busy: raised, retried with backoff.
- 401, 403, 404, 405: the URL or its secret is wrong, which is true of every notification: raised and
  retried (an operator fixes the config; parking would set aside everything the channel ever carries).
- Any other 4xx: the receiver refuses this one notification for good: ``RecordRejectedError`` (parked).
- 5xx, timeouts, connection errors: raised, retried.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from gridwatch.core.interfaces import RecordRejectedError
from gridwatch.core.redact import redact_text

logger = logging.getLogger(__name__)

RETRIED_CLIENT_ERRORS = frozenset({401, 403, 404, 405, 408, 429})
_MAX_DETAIL_CHARS = 200


class ChannelUnavailableError(ConnectionError):
    """The endpoint did not take the notification now (down, busy, misconfigured); the outbox retries it."""


class HttpChannel:
    """Base of the HTTP channels: the client's lifecycle and one POST with the error rules above."""

    kind = "http"

    def __init__(self, name: str, url: str, timeout_s: float) -> None:
        self.name = name
        self._url = url
        self._timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    def __repr__(self) -> str:  # never the URL
        return f"{type(self).__name__}(name={self.name!r})"

    async def start(self) -> None:
        self._closed = False
        if self._client is None:
            # No proxies from the environment: a robot URL must not travel through a proxy nobody configured.
            self._client = httpx.AsyncClient(timeout=self._timeout_s, trust_env=False, follow_redirects=False)

    async def stop(self) -> None:
        """Close the client. Idempotent."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str], what: str) -> httpx.Response:
        """POST ``body``; returns a 2xx response or raises per the module docstring."""
        if self._closed or self._client is None:
            raise ChannelUnavailableError(f"{self.kind} channel {self.name} is not running")
        try:
            response = await self._client.post(
                url, content=body, headers={"Content-Type": "application/json; charset=utf-8", **headers}
            )
        except httpx.TimeoutException as exc:
            raise ChannelUnavailableError(
                f"{self.kind} channel {self.name}: no answer within {self._timeout_s:g} s for {what} "
                f"({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            raise ChannelUnavailableError(
                f"{self.kind} channel {self.name}: {what} not sent: {type(exc).__name__}: {self._scrub(str(exc), url)}"
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return response
        detail = f"{self.kind} channel {self.name}: HTTP {status} for {what}: {self._body_excerpt(response, url)}"
        if 400 <= status < 500 and status not in RETRIED_CLIENT_ERRORS:
            raise RecordRejectedError(detail)
        raise ChannelUnavailableError(detail)

    def _check_robot_answer(
        self, response: httpx.Response, what: str, *, rate_limited: frozenset[int], rejected: frozenset[int]
    ) -> None:
        """Group robots answer HTTP 200 and say yes or no in ``errcode`` (0: sent)."""
        data = self._json_body(response, what)
        errcode = data.get("errcode")
        if errcode == 0:
            return
        errmsg = self._scrub(str(data.get("errmsg", ""))[:_MAX_DETAIL_CHARS], self._url)
        if errcode in rate_limited:
            raise ChannelUnavailableError(f"{self.kind} channel {self.name}: rate limited ({errcode}: {errmsg})")
        detail = f"{self.kind} channel {self.name}: {what} refused: errcode {errcode}: {errmsg}"
        if errcode in rejected:
            raise RecordRejectedError(detail)
        raise ChannelUnavailableError(detail)

    def _json_body(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ChannelUnavailableError(
                f"{self.kind} channel {self.name}: the answer to {what} is not a JSON object: "
                f"{self._body_excerpt(response, self._url)}"
            )
        return data

    def _body_excerpt(self, response: httpx.Response, url: str) -> str:
        return self._scrub(response.text[:_MAX_DETAIL_CHARS], url)

    def _scrub(self, text: str, url: str) -> str:
        """``text`` without the URLs (which carry credentials) and with other URLs' userinfo masked."""
        secrets = {part for u in (url, self._url) for part in (u, _path_and_query(u), u.partition("?")[2])}
        for secret in sorted(secrets, key=len, reverse=True):  # the whole URL before its parts
            if len(secret) > 1:
                text = text.replace(secret, "<url>")
        return redact_text(text)


def _path_and_query(url: str) -> str:
    """``/path?query`` of ``scheme://host/path?query``: where robot URLs keep their token."""
    rest = url.partition("://")[2]
    slash = rest.find("/")
    return "" if slash < 0 else rest[slash:]
