"""What every gridwatch Kafka producer shares: CloudEvents headers and a stop that cannot hang.

Records use the CloudEvents 1.0 Kafka protocol binding in binary content mode: the value is the
event JSON, the attributes travel as ``ce_*`` headers, so CloudEvents-aware consumers need nothing
else and the rest read plain JSON. ``ce_id`` is the event's deterministic id: consumers deduplicate
by it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

log = logging.getLogger(__name__)

CE_SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"


def utc_iso(moment: dt.datetime) -> str:
    """``2026-12-01T08:12:00Z``: CloudEvents' RFC 3339 time in UTC (naive = UTC; fractions only if present)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def cloudevent_headers(
    *, event_id: str, source: str, ce_type: str, subject: str, time: dt.datetime
) -> list[tuple[str, bytes]]:
    """The ``ce_*`` headers (and ``content-type``) of one record."""
    return [
        ("ce_specversion", CE_SPECVERSION.encode()),
        ("ce_id", event_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_time", utc_iso(time).encode()),
        ("ce_subject", subject.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]


async def close_producer(producer: AIOKafkaProducer, *, timeout_s: float, owner: str) -> bool:
    """Flush for at most ``timeout_s`` and close; True if unacknowledged records had to be dropped.

    With the broker unreachable, the idempotent producer retries a record it has accepted forever,
    so ``stop()`` would never return. After the grace period the buffer is failed (aiokafka has no
    public call for this: the accumulator's ``fail_all`` is what its own ``stop`` uses on a fatal
    error), which ends ``stop()`` and raises in whoever still waits for those records; callers keep
    their own durable copy (the outbox, an uncommitted offset) and send again later.
    """
    stopping = asyncio.ensure_future(producer.stop())
    await asyncio.wait([stopping], timeout=timeout_s)
    if stopping.done():
        stopping.result()
        return False
    log.warning("%s: no acknowledgement of the buffered records within %.1f s; dropping them", owner, timeout_s)
    producer._message_accumulator.fail_all(KafkaConnectionError(f"{owner} stopped"))
    await stopping
    return True
