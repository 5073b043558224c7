"""WeCom and DingTalk group robots against a real HTTP server on 127.0.0.1: message format, DingTalk's
signed URL (checked against an independent computation), and what their ``errcode`` answers mean."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse

import pytest

from gridwatch.core.config.channels import DingtalkChannelConfig, WecomChannelConfig
from gridwatch.core.interfaces import RecordRejectedError
from notifier.channels.dingtalk import DingtalkChannel
from notifier.channels.http import ChannelUnavailableError
from notifier.channels.wecom import WecomChannel
from tests.notifier.notification_support import notification_factory
from tests.support.http_receiver import OK_JSON, HttpReceiver, ReceivedRequest

DINGTALK_SECRET = "SEC0123456789abcdef0123456789abcdef"
ACK_URL = "https://gw.example.org/a/tok-SECRET-LINK"


def _wecom(url: str) -> WecomChannel:
    return WecomChannel(WecomChannelConfig(id="wecom", type="wecom", url=url))


def _dingtalk(url: str, secret: str | None = DINGTALK_SECRET) -> DingtalkChannel:
    return DingtalkChannel(DingtalkChannelConfig(id="dingtalk", type="dingtalk", url=url, signing_secret=secret))


def _answer(body: dict[str, object]) -> tuple[int, bytes]:
    return 200, json.dumps(body).encode()


async def _send_one(channel: WecomChannel | DingtalkChannel, **kwargs: object) -> None:
    await channel.start()
    try:
        await channel.send(notification_factory()(**kwargs))
    finally:
        await channel.stop()


async def test_wecom_markdown_message() -> None:
    async with HttpReceiver() as server:
        await _send_one(_wecom(server.url("/cgi-bin/webhook/send?key=ROBOT-KEY")), level=2, repeat=1)
    [request] = server.requests
    assert request.method == "POST"
    assert request.target == "/cgi-bin/webhook/send?key=ROBOT-KEY"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    message = request.json()
    assert set(message) == {"msgtype", "markdown"}
    assert message["msgtype"] == "markdown"
    content = message["markdown"]["content"]
    assert set(message["markdown"]) == {"content"}
    assert "welfare-absent" in content
    assert "gate-north" in content
    assert "grid-7" in content
    assert "2026-12-01T03:12:00Z" in content
    assert "escalation step 2" in content
    assert "reminder 1" in content
    assert f"[确认 / Acknowledge]({ACK_URL})" in content


async def test_dingtalk_markdown_message_on_a_signed_url() -> None:
    async with HttpReceiver() as server:
        before_ms = int(time.time() * 1000)
        await _send_one(_dingtalk(server.url("/robot/send?access_token=ROBOT-TOKEN")))
        after_ms = int(time.time() * 1000)
    [request] = server.requests
    assert request.path == "/robot/send"
    query = request.query
    assert set(query) == {"access_token", "timestamp", "sign"}
    assert query["access_token"] == ["ROBOT-TOKEN"]
    [timestamp] = query["timestamp"]
    assert before_ms <= int(timestamp) <= after_ms
    # DingTalk's own recipe, computed here independently of the channel's code.
    digest = hmac.new(DINGTALK_SECRET.encode(), f"{timestamp}\n{DINGTALK_SECRET}".encode(), hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    assert query["sign"] == [expected]  # parse_qs undid the URL encoding
    raw_sign = dict(part.split("=", 1) for part in request.raw_query.split("&"))["sign"]
    assert raw_sign == urllib.parse.quote_plus(expected)  # sent URL-encoded ("+", "/", "=" escaped)
    assert not set("+/=") & set(raw_sign)

    message = request.json()
    assert message["msgtype"] == "markdown"
    assert set(message["markdown"]) == {"title", "text"}
    assert "welfare-absent" in message["markdown"]["title"]
    text = message["markdown"]["text"]
    assert "first notification" in text
    assert f"[确认 / Acknowledge]({ACK_URL})" in text


async def test_dingtalk_unsigned_leaves_the_url_alone() -> None:
    async with HttpReceiver() as server:
        await _send_one(_dingtalk(server.url("/robot/send?access_token=T"), secret=None), ack_url=None)
    [request] = server.requests
    assert request.target == "/robot/send?access_token=T"
    assert "Acknowledge" not in request.json()["markdown"]["text"]


@pytest.mark.parametrize(
    ("make_channel", "answer", "raises", "match"),
    [
        (_wecom, {"errcode": 0, "errmsg": "ok"}, None, ""),
        (_wecom, {"errcode": 45009, "errmsg": "api freq out of limit"}, ChannelUnavailableError, "rate limited"),
        (_wecom, {"errcode": 93000, "errmsg": "invalid webhook url"}, ChannelUnavailableError, "errcode 93000"),
        (_wecom, {"errcode": 40058, "errmsg": "markdown.content exceed max length"}, RecordRejectedError, "40058"),
        (_wecom, {"errcode": -1, "errmsg": "system busy"}, ChannelUnavailableError, "errcode -1"),
        (_dingtalk, {"errcode": 0, "errmsg": "ok"}, None, ""),
        (_dingtalk, {"errcode": 130101, "errmsg": "send too fast"}, ChannelUnavailableError, "rate limited"),
        (_dingtalk, {"errcode": 310000, "errmsg": "sign not match"}, ChannelUnavailableError, "errcode 310000"),
        (_dingtalk, {"errcode": 460101, "errmsg": "message too long"}, RecordRejectedError, "460101"),
        (_dingtalk, {"unexpected": True}, ChannelUnavailableError, "errcode None"),
    ],
)
async def test_what_each_errcode_means(
    make_channel: object, answer: dict[str, object], raises: type[Exception] | None, match: str
) -> None:
    async with HttpReceiver(lambda _: _answer(answer)) as server:
        channel = make_channel(server.url("/robot/send?access_token=ROBOT-TOKEN"))  # type: ignore[operator]
        if raises is None:
            await _send_one(channel)
        else:
            with pytest.raises(raises, match=match) as caught:
                await _send_one(channel)
            assert "ROBOT-TOKEN" not in str(caught.value)


@pytest.mark.parametrize("make_channel", [_wecom, _dingtalk])
async def test_robot_http_errors_and_non_json_answers_raise(make_channel: object) -> None:
    def respond(request: ReceivedRequest) -> tuple[int, bytes]:
        return (502, b"bad gateway") if len(server.requests) == 1 else (200, b"<html>login</html>")

    async with HttpReceiver(respond) as server:
        channel = make_channel(server.url("/robot/send?access_token=ROBOT-TOKEN"))  # type: ignore[operator]
        with pytest.raises(ChannelUnavailableError, match="HTTP 502"):
            await _send_one(channel)
        with pytest.raises(ChannelUnavailableError, match="not a JSON object"):
            await _send_one(channel)


async def test_a_long_explanation_is_shortened_to_what_wecom_takes() -> None:
    async with HttpReceiver(lambda _: (200, OK_JSON)) as server:
        await _send_one(_wecom(server.url()), explanation="很长的说明 " * 2000)
    content = server.requests[0].json()["markdown"]["content"]
    assert len(content.encode()) <= 4096
    assert content.endswith(f"[确认 / Acknowledge]({ACK_URL})")
    assert "…" in content
