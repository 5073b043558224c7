"""The webhook channel against a real HTTP server on 127.0.0.1, through the dispatcher and the outbox."""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import pytest

from gridwatch.core.config.channels import WebhookChannelConfig
from gridwatch.core.config.notifier import OutboxConfig
from gridwatch.core.events import Notification
from gridwatch.core.interfaces import RecordRejectedError
from notifier.channels.http import ChannelUnavailableError
from notifier.channels.webhook import WebhookChannel, sign, verify_signature
from notifier.dispatcher import NotificationDispatcher
from notifier.notification_outbox import NotificationOutbox
from tests.notifier.helpers import wait_until
from tests.notifier.notification_support import notification_factory, sqlite_database, store
from tests.support.http_receiver import OK_JSON, HttpReceiver, ReceivedRequest, SilentServer

SECRET = "webhook-secret-0123456789"
OUTBOX = OutboxConfig(retry_initial_s=0.05, retry_max_s=0.2, park_after_attempts=1000)


def _config(url: str, *, secret: str | None = SECRET, timeout_s: float = 5.0) -> WebhookChannelConfig:
    return WebhookChannelConfig(id="hook", type="webhook", url=url, signing_secret=secret, timeout_s=timeout_s)


def _received(request: ReceivedRequest) -> Notification:
    return Notification.model_validate_json(request.body)


def _verified(request: ReceivedRequest) -> bool:
    return verify_signature(
        SECRET,
        request.headers["x-gridwatch-timestamp"],
        request.body,
        request.headers["x-gridwatch-signature"],
        now=time.time(),
    )


async def test_five_hundreds_are_retried_until_every_notification_arrived_signed(tmp_path: Path) -> None:
    answers = iter([500, 500])

    def respond(_: ReceivedRequest) -> tuple[int, bytes]:
        return next(answers, 200), b"{}"

    make = notification_factory()
    batch = [make(f"s-{i}") for i in range(5)]
    async with HttpReceiver(respond) as server:
        with sqlite_database(tmp_path / "gw.sqlite3") as database:
            outbox = NotificationOutbox(database)
            store(database, *batch, now=time.time())
            async with NotificationDispatcher(outbox, [WebhookChannel(_config(server.url()))], OUTBOX, None):
                await wait_until(lambda: outbox.count_pending() == 0, what="every notification delivered")
            assert outbox.count_delivered() == 5
            assert outbox.count_parked() == 0
    assert len(server.requests) == 7  # two answered 500, then each one once
    assert all(r.method == "POST" and r.path == "/hook" for r in server.requests)
    assert all(_verified(r) for r in server.requests)
    arrived = Counter(_received(r).notification_id for r in server.requests)
    assert set(arrived) == {n.notification_id for n in batch}
    for request in server.requests:
        assert request.headers["x-gridwatch-notification-id"] == _received(request).notification_id
        assert request.headers["content-type"].startswith("application/json")
    # Each body is the notification's own JSON, ack link included: the receiver needs it.
    last = {_received(r).notification_id: _received(r) for r in server.requests}
    assert [last[n.notification_id] for n in batch] == batch


async def test_one_failing_recipient_holds_back_no_other(tmp_path: Path) -> None:
    broken = {"s-bad"}

    def respond(request: ReceivedRequest) -> tuple[int, bytes]:
        return (503 if _received(request).staff_id in broken else 200), b"{}"

    make = notification_factory()
    bad, *good = [make("s-bad")] + [make(f"s-{i}") for i in range(4)]
    async with HttpReceiver(respond) as server:
        with sqlite_database(tmp_path / "gw.sqlite3") as database:
            outbox = NotificationOutbox(database)
            store(database, bad, *good, now=time.time())  # the failing one first
            async with NotificationDispatcher(outbox, [WebhookChannel(_config(server.url()))], OUTBOX, None):
                await wait_until(lambda: outbox.count_delivered() == 4, what="the other recipients")
                await wait_until(lambda: outbox.pending("hook")[0].attempts >= 3, what="retries of the failing one")
                [pending] = outbox.pending("hook")
                assert pending.notification_id == bad.notification_id
                assert "HTTP 503" in (pending.last_error or "")
                broken.clear()  # its receiver is fixed
                await wait_until(lambda: outbox.count_pending() == 0, what="the failing one, once fixed")
    arrived = Counter(_received(r).notification_id for r in server.requests)
    assert set(arrived) == {n.notification_id for n in [bad, *good]}
    assert all(arrived[n.notification_id] == 1 for n in good)
    assert arrived[bad.notification_id] >= 4


async def test_a_400_parks_the_notification(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def respond(request: ReceivedRequest) -> tuple[int, bytes]:
        if _received(request).staff_id == "s-refused":
            return 400, b'{"error": "bad staff in ' + request.body + b'"}'  # echoes the body, ack link and all
        return 200, b"{}"

    make = notification_factory()
    refused, fine = make("s-refused"), make("s-fine")
    async with HttpReceiver(respond) as server:
        with sqlite_database(tmp_path / "gw.sqlite3") as database:
            outbox = NotificationOutbox(database)
            store(database, refused, fine, now=time.time())
            async with NotificationDispatcher(outbox, [WebhookChannel(_config(server.url()))], OUTBOX, None):
                await wait_until(lambda: outbox.count_pending() == 0, what="both done")
            [parked] = outbox.parked("hook")
            assert parked.notification_id == refused.notification_id
            assert "HTTP 400" in (parked.error or "")
            assert "bad staff in" in (parked.error or "")
            assert "tok-SECRET-LINK" not in (parked.error or "")
            assert outbox.count_delivered() == 1
    assert len(server.requests) == 2
    assert "tok-SECRET-LINK" not in caplog.text


@pytest.mark.parametrize(
    ("status", "raises"),
    [
        (200, None),
        (204, None),
        (400, RecordRejectedError),
        (413, RecordRejectedError),
        (422, RecordRejectedError),
        (401, ChannelUnavailableError),  # a wrong secret or URL is true of every notification
        (404, ChannelUnavailableError),
        (408, ChannelUnavailableError),
        (429, ChannelUnavailableError),
        (500, ChannelUnavailableError),
        (503, ChannelUnavailableError),
    ],
)
async def test_what_each_status_means(status: int, raises: type[Exception] | None) -> None:
    async with HttpReceiver(lambda _: (status, b"")) as server:
        channel = WebhookChannel(_config(server.url()))
        await channel.start()
        try:
            if raises is None:
                await channel.send(notification_factory()())
            else:
                with pytest.raises(raises, match=f"HTTP {status}"):
                    await channel.send(notification_factory()())
        finally:
            await channel.stop()
            await channel.stop()


async def test_unsigned_without_a_secret() -> None:
    async with HttpReceiver() as server:
        channel = WebhookChannel(_config(server.url(), secret=None))
        await channel.start()
        try:
            await channel.send(notification_factory()())
        finally:
            await channel.stop()
    [request] = server.requests
    assert "x-gridwatch-signature" not in request.headers
    assert "x-gridwatch-timestamp" not in request.headers
    assert request.headers["x-gridwatch-notification-id"] == _received(request).notification_id


async def test_unreachable_and_slow_endpoints_raise_without_the_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with HttpReceiver() as server:
        closed_port = server.port
    url = f"http://127.0.0.1:{closed_port}/hook/key-SECRET-IN-URL?token=SECRET-TOKEN"
    channel = WebhookChannel(_config(url))
    await channel.start()
    try:
        with pytest.raises(ChannelUnavailableError) as refused:
            await channel.send(notification_factory()())
    finally:
        await channel.stop()
    assert "SECRET" not in str(refused.value)
    assert "SECRET" not in repr(channel)

    async with SilentServer() as silent:
        url = f"http://127.0.0.1:{silent.port}/hook?token=SECRET-TOKEN"
        channel = WebhookChannel(_config(url, timeout_s=0.2))
        await channel.start()
        try:
            with pytest.raises(ChannelUnavailableError, match="no answer within") as slow:
                await channel.send(notification_factory()())
        finally:
            await channel.stop()
    assert "SECRET" not in str(slow.value)
    assert "SECRET" not in caplog.text


async def test_a_stopped_channel_raises() -> None:
    channel = WebhookChannel(_config("http://127.0.0.1:9/hook"))
    with pytest.raises(ChannelUnavailableError, match="not running"):
        await channel.send(notification_factory()())


def test_verify_signature() -> None:
    body = b'{"notification_id": "n-1"}'
    now = 1_800_000_000
    header = sign(SECRET, now, body)
    assert header.startswith("sha256=")
    assert len(header) == len("sha256=") + 64
    assert verify_signature(SECRET, str(now), body, header, now=now)
    assert verify_signature(SECRET, str(now), body, header, now=now + 299)
    assert not verify_signature(SECRET, str(now), body, header, now=now + 301)  # too old: a replay
    assert not verify_signature(SECRET, str(now), body, header, now=now - 301)
    assert not verify_signature(SECRET, str(now), body + b" ", header, now=now)  # body changed
    assert not verify_signature(SECRET, str(now + 1), body, header, now=now)  # timestamp changed
    assert not verify_signature("another-secret-0123456789", str(now), body, header, now=now)
    assert not verify_signature(SECRET, "not-a-number", body, header, now=now)
    assert not verify_signature(SECRET, str(now), body, "sha256=" + "0" * 64, now=now)
    assert verify_signature(SECRET, str(now), body, header, now=now + 1000, tolerance_s=2000)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = b'{"a": 1}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1_700_000_000, body) == f"sha256={expected}"


def test_ok_json_is_what_robots_answer() -> None:
    assert b'"errcode": 0' in OK_JSON
