"""The human text of a notification: markdown for the WeCom and DingTalk group robots.

Chinese and English labels side by side (控制室 staff read the first, integrators the second). The text
holds what the ``Notification`` carries and nothing more: ids of the watched person, never a name; the
recipient by name and id, since a group robot's chat sees every recipient's message.
The one-click acknowledgement link is a capability: it is in the message (that is its purpose) and
nowhere else (no log line, no audit record).
"""

from __future__ import annotations

from gridwatch.core.events import Notification
from gridwatch.core.kafka_records import utc_iso

ACK_LABEL = "确认 / Acknowledge"
_ELLIPSIS = "…"


def notification_title(notification: Notification) -> str:
    """One line: what fired and how bad (DingTalk shows it in the chat list)."""
    return f"告警 Alert: {_one_line(notification.rule)} ({notification.severity.value})"


def level_text(notification: Notification) -> str:
    """First notification, escalation step n, and/or reminder n."""
    parts = []
    if notification.level > 0:
        parts.append(f"升级第 {notification.level} 级 / escalation step {notification.level}")
    if notification.repeat > 0:
        parts.append(f"第 {notification.repeat} 次提醒 / reminder {notification.repeat}")
    return ", ".join(parts) if parts else "首次通知 / first notification"


def notification_markdown(notification: Notification, *, max_bytes: int | None = None) -> str:
    """The message body; with ``max_bytes``, the explanation is shortened so that the UTF-8 text fits
    (robots refuse longer messages) while the header lines and the acknowledgement link stay whole."""
    head = [f"### {notification_title(notification)}", ""]
    facts = [
        f"- 规则 Rule: {_one_line(notification.rule)}" + (f" ({notification.kind})" if notification.kind else ""),
        f"- 级别 Severity: {notification.severity.value}",
        f"- 地点 Place: {_one_line(notification.source)}"
        + (f" · 网格 Grid: {_one_line(notification.grid)}" if notification.grid else ""),
        f"- 时间 Time: {utc_iso(notification.alert_created_at)}",
    ]
    if notification.person_id is not None:
        who = (
            notification.person_id
            if notification.registry is None
            else f"{notification.registry}/{notification.person_id}"
        )
        facts.append(f"- 对象 Person: {_one_line(who)}")
    facts.append(f"- 通知 Notice: {level_text(notification)}")
    # Robots post to a group: each recipient's message (and acknowledgement link) says whose it is.
    facts.append(f"- 接收人 For: {_one_line(notification.staff_name)} ({notification.staff_id})")
    if notification.linked_to is not None:
        facts.append(f"- 关联 Linked case: {_one_line(notification.linked_to)}")
    tail = ["", f"[{ACK_LABEL}]({notification.ack_url})"] if notification.ack_url else []
    explanation_prefix = "- 说明 Details: "
    explanation = _one_line(notification.explanation)
    if max_bytes is not None:
        fixed = "\n".join([*head, *facts, explanation_prefix, *tail])
        explanation = _truncate_utf8(explanation, max(max_bytes - len(fixed.encode()), 0))
    lines = [*head, *facts[:4], f"{explanation_prefix}{explanation}", *facts[4:], *tail]
    return "\n".join(lines)


def _one_line(text: str) -> str:
    """Field values on one line: a newline in an id or explanation must not forge a line of its own."""
    return " ".join(text.split())


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    budget = max_bytes - len(_ELLIPSIS.encode())
    if budget <= 0:
        return ""
    return encoded[:budget].decode(errors="ignore") + _ELLIPSIS
