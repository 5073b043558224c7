"""What the delivery loops of alerts (``notifier.notifier``) and of notifications (``notifier.dispatcher``)
share: their backoff, their waits (both end at once when the loop is stopping), and their audit writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from gridwatch.core.audit import AuditLog
from gridwatch.core.metrics import LOOP_ERRORS

logger = logging.getLogger(__name__)

AUDIT_ACTOR = "notifier"


def retry_delay(failures: int, initial_s: float, max_s: float) -> float:
    """Capped exponential backoff: initial, 2x, 4x, ... never more than ``max_s``."""
    exponent = min(max(failures - 1, 0), 32)
    return float(min(initial_s * (2**exponent), max_s))


async def sleep_unless_stopping(stopping: asyncio.Event, delay: float) -> None:
    """Sleeps ``delay`` seconds, or less when ``stopping`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=delay)


async def wait_for_work(wake: asyncio.Event, stopping: asyncio.Event, within_s: float | None, name: str) -> None:
    """Until ``wake`` or ``stopping`` is set, or ``within_s`` passed (``None``: no deadline)."""
    waiters = [
        asyncio.create_task(wake.wait(), name=f"{name}.wake"),
        asyncio.create_task(stopping.wait(), name=f"{name}.stopping"),
    ]
    try:
        await asyncio.wait(waiters, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


async def audit_step(
    audit: AuditLog | None, action: str, target: str, details: Mapping[str, object], *, loop: str
) -> None:
    """Appends one handling step to the audit log, off the event loop; a failure is counted and logged."""
    if audit is None:
        return
    try:
        await asyncio.to_thread(audit.append, action, actor=AUDIT_ACTOR, target=target, details=details)
    except Exception:
        # Delivery must not stop because the audit disk failed; the failure is loud instead.
        LOOP_ERRORS.labels(loop=loop).inc()
        logger.exception("audit log append failed for %s %s", action, target)
