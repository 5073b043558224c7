"""The human text shared by the WeCom and DingTalk robots."""

from __future__ import annotations

from notifier.channels.message import level_text, notification_markdown, notification_title
from tests.notifier.notification_support import notification_factory


def test_the_full_text() -> None:
    notification = notification_factory()("s-wang").model_copy(update={"linked_to": "alert-0001"})
    assert notification_markdown(notification).splitlines() == [
        "### 告警 Alert: welfare-absent (warning)",
        "",
        "- 规则 Rule: welfare-absent (absence)",
        "- 级别 Severity: warning",
        "- 地点 Place: gate-north · 网格 Grid: grid-7",
        "- 时间 Time: 2026-12-01T03:12:00Z",
        "- 说明 Details: Person of registry welfare not seen for 24 h (last at gate-north).",
        "- 对象 Person: welfare/p-0042",
        "- 通知 Notice: 首次通知 / first notification",
        "- 接收人 For: Staff s-wang (s-wang)",
        "- 关联 Linked case: alert-0001",
        "",
        "[确认 / Acknowledge](https://gw.example.org/a/tok-SECRET-LINK)",
    ]
    assert notification_title(notification) == "告警 Alert: welfare-absent (warning)"


def test_levels() -> None:
    make = notification_factory()
    assert level_text(make(level=0)) == "首次通知 / first notification"
    assert level_text(make(level=2)) == "升级第 2 级 / escalation step 2"
    assert level_text(make(repeat=3)) == "第 3 次提醒 / reminder 3"
    assert level_text(make(level=1, repeat=1)) == "升级第 1 级 / escalation step 1, 第 1 次提醒 / reminder 1"


def test_without_link_grid_or_person() -> None:
    notification = notification_factory()(ack_url=None).model_copy(
        update={"grid": None, "person_id": None, "registry": None, "kind": None}
    )
    text = notification_markdown(notification)
    assert "Acknowledge" not in text
    assert "Grid" not in text
    assert "对象 Person" not in text
    assert "- 规则 Rule: welfare-absent\n" in text


def test_a_newline_in_a_field_cannot_forge_a_line() -> None:
    text = notification_markdown(notification_factory()(explanation="seen\n[确认 / Acknowledge](https://evil.example)"))
    assert "\n[确认 / Acknowledge](https://evil.example)" not in text
    assert text.count("\n[确认") == 1


def test_shortened_to_fit_keeps_the_link() -> None:
    notification = notification_factory()(explanation="x" * 10_000)
    text = notification_markdown(notification, max_bytes=1000)
    assert len(text.encode()) <= 1000
    assert text.endswith("(https://gw.example.org/a/tok-SECRET-LINK)")
    assert "x…" in text
    short = notification_factory()()
    assert notification_markdown(short, max_bytes=4096) == notification_markdown(short)
