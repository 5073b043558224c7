"""``gridwatch alerts tail``: print the alerts on a Kafka topic, one readable line each.

Reads with a plain ``AIOKafkaConsumer`` without a consumer group (nothing is committed, other
consumers are not disturbed). Every record value is validated as an ``Alert``; one that is not is
reported through logging (standard error) and skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from gridwatch.core.events import Alert
from gridwatch.core.redact import redact_text
from notifier.format import format_alert_line

logger = logging.getLogger(__name__)

_POLL_MS = 200


async def tail_alerts(
    bootstrap_servers: str,
    topic: str,
    *,
    from_beginning: bool,
    max_messages: int | None,
    timeout_s: float | None,
    out: TextIO,
    client_id: str = "gridwatch-alerts-tail",
    security: Mapping[str, Any] | None = None,
) -> int:
    """Print alerts until ``max_messages`` were printed or ``timeout_s`` passed without a new record.

    ``from_beginning`` reads the topic from its first record; otherwise only records that arrive
    after the consumer has started. ``timeout_s`` is an idle timeout; ``None`` waits forever (until cancelled).
    Malformed records are logged and skipped. Returns the process exit status: 0, or 1 when no
    broker could be reached. ``security`` carries the cluster's TLS/SASL settings
    (``KafkaConnectionConfig.security_kwargs()`` of the site's config).
    """
    if max_messages is not None and max_messages <= 0:
        return 0
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        **dict(security or {}),
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        logger.error("cannot read %s from %s: %s", topic, redact_text(bootstrap_servers), redact_text(str(exc)))
        return 1
    printed = 0
    try:
        idle_since = time.monotonic()
        while max_messages is None or printed < max_messages:
            batches = await consumer.getmany(timeout_ms=_POLL_MS)
            records = [record for partition_records in batches.values() for record in partition_records]
            if records:
                idle_since = time.monotonic()
            elif timeout_s is not None and time.monotonic() - idle_since >= timeout_s:
                break
            for record in sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset)):
                if not _print_record(record.value, record.partition, record.offset, out):
                    continue
                printed += 1
                if max_messages is not None and printed >= max_messages:
                    break
    finally:
        await consumer.stop()
    logger.debug("alerts tail: printed %d alert(s)", printed)
    return 0


def _print_record(value: bytes | None, partition: int, offset: int, out: TextIO) -> bool:
    try:
        alert = Alert.model_validate_json(value or b"")
    except ValidationError as exc:
        reason = exc.errors(include_url=False, include_input=False)[0]
        logger.warning(
            "skipping malformed alert at partition %d offset %d: %s at %s",
            partition,
            offset,
            reason["msg"],
            ".".join(str(part) for part in reason["loc"]) or "(value)",
        )
        return False
    out.write(format_alert_line(alert) + "\n")
    out.flush()
    return True
