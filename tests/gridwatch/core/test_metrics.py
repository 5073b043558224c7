"""The metric definitions and the outbox collector fed by probes."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gridwatch.core import metrics
from gridwatch.core.metrics import (
    OUTBOX_DEPTH,
    OUTBOX_OLDEST_AGE,
    OutboxCollector,
    register_outbox_probe,
    unregister_outbox_probe,
)
from tests.support.metrics import families, key, parse


def scraped(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return parse(generate_latest(registry).decode())


@pytest.fixture
def collector() -> tuple[OutboxCollector, CollectorRegistry]:
    """A collector in a registry of the test alone (the default one is shared by the session)."""
    registry = CollectorRegistry()
    outbox = OutboxCollector()
    registry.register(outbox)
    return outbox, registry


def test_without_a_probe_the_outbox_families_have_no_samples(
    collector: tuple[OutboxCollector, CollectorRegistry],
) -> None:
    _, registry = collector
    text = generate_latest(registry).decode()
    assert {OUTBOX_DEPTH, OUTBOX_OLDEST_AGE} <= families(text)
    assert parse(text) == {}


def test_a_probe_is_read_at_every_scrape(collector: tuple[OutboxCollector, CollectorRegistry]) -> None:
    outbox, registry = collector
    state: list[tuple[int, float | None]] = [(3, 12.5)]
    outbox.register(lambda: state[-1])
    assert scraped(registry) == {key(OUTBOX_DEPTH): 3.0, key(OUTBOX_OLDEST_AGE): 12.5}
    state.append((0, None))
    assert scraped(registry) == {key(OUTBOX_DEPTH): 0.0, key(OUTBOX_OLDEST_AGE): 0.0}


def test_several_probes_add_depths_and_report_the_oldest_age(
    collector: tuple[OutboxCollector, CollectorRegistry],
) -> None:
    outbox, registry = collector
    outbox.register(lambda: (2, 5.0))
    outbox.register(lambda: (4, 30.0))
    outbox.register(lambda: (0, None))
    assert scraped(registry) == {key(OUTBOX_DEPTH): 6.0, key(OUTBOX_OLDEST_AGE): 30.0}


def test_a_failing_probe_is_logged_and_left_out(
    collector: tuple[OutboxCollector, CollectorRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    outbox, registry = collector

    def broken() -> tuple[int, float | None]:
        raise OSError("database is locked")

    outbox.register(broken)
    assert scraped(registry) == {}  # the scrape itself goes on
    assert "outbox probe failed" in caplog.text
    outbox.register(lambda: (1, 2.0))
    assert scraped(registry) == {key(OUTBOX_DEPTH): 1.0, key(OUTBOX_OLDEST_AGE): 2.0}


def test_register_is_idempotent_and_unregister_stops_the_scraping(
    collector: tuple[OutboxCollector, CollectorRegistry],
) -> None:
    outbox, registry = collector

    def probe() -> tuple[int, float | None]:
        return 5, 1.0

    outbox.register(probe)
    outbox.register(probe)
    assert scraped(registry)[key(OUTBOX_DEPTH)] == 5.0  # counted once
    outbox.unregister(probe)
    outbox.unregister(probe)  # unknown now: ignored
    assert scraped(registry) == {}


def test_the_default_registry_serves_a_registered_probe_until_it_is_unregistered() -> None:
    def probe() -> tuple[int, float | None]:
        return 7, 42.0

    register_outbox_probe(probe)
    try:
        assert REGISTRY.get_sample_value(OUTBOX_DEPTH) == 7.0
        assert REGISTRY.get_sample_value(OUTBOX_OLDEST_AGE) == 42.0
    finally:
        unregister_outbox_probe(probe)
    assert REGISTRY.get_sample_value(OUTBOX_DEPTH) is None


def test_every_metric_is_prefixed_and_named_with_its_unit() -> None:
    defined = {name: value for name, value in vars(metrics).items() if isinstance(value, Counter | Gauge | Histogram)}
    assert set(defined) == {
        "FRAMES_IN",
        "FRAMES_ANALYSED",
        "FRAMES_DROPPED",
        "FACES_DETECTED",
        "FACES_GATED",
        "FACES_EMBEDDED",
        "SIGHTINGS",
        "STRANGER_ATTEMPTS",
        "ALERTS",
        "RULE_SUPPRESSED",
        "TIMER_FIRINGS",
        "DELIVERY_ATTEMPTS",
        "DELIVERY_FAILURES",
        "DELIVERIES_PARKED",
        "GATE_BUSY",
        "GATE_EVENTS",
        "GATE_REJECTIONS",
        "GATE_DUPLICATES",
        "GATE_BACKFILLED",
        "GATE_UNRECOVERED",
        "QUEUE_DEPTH",
        "CONFIG_RELOADS",
        "INFERENCE_SECONDS",
        "ACKS",
        "GATE_POISONED",
        "LOOP_ERRORS",
        "HTTP_CONNECTIONS_CLOSED",
        "CASE_TRANSITIONS",
        "CASE_EVENTS_PUBLISHED",
        "ALERTS_UNROUTED",
        "DUTY_GAPS",
        "ACKS_REJECTED",
        # notifications of staff (notifier.dispatcher)
        "NOTIFICATIONS_DELIVERED",
        "NOTIFICATION_FAILURES",
        "NOTIFICATIONS_PARKED",
        # evidence (recognition.evidence)
        "EVIDENCE_STORED",
        "EVIDENCE_FAILURES",
        # face tracks, regions of interest and motion gating (recognition.tracks, ingest.motion)
        "TRACKS",
        "FACES_OUTSIDE_ROI",
        "TRACKER_FAILURES",
        "FRAMES_WITHOUT_MOTION",
        # the face a gate snapshot is about (recognition.recognizer)
        "GATE_FACE_CHOICE",
        # scale-out (rule workers)
        "RULES_PARTITIONS_OWNED",
        "CONSUMER_LAG",
        "ALERTS_REPLAYED",
    }
    for python_name, metric in defined.items():
        for family in metric.collect():
            assert family.name.startswith("gridwatch_"), python_name
            assert family.documentation, python_name
            if isinstance(metric, Counter):
                assert all(s.name.endswith(("_total", "_created")) for s in family.samples), python_name
    (inference,) = metrics.INFERENCE_SECONDS.collect()
    bounds = sorted({float(s.labels["le"]) for s in inference.samples if s.name.endswith("_bucket")})
    assert (bounds[0], bounds[-2], bounds[-1]) == (0.001, 2.0, float("inf"))  # 1 ms to 2 s


def test_known_series_exist_from_the_start() -> None:
    for result in ("applied", "rejected"):
        assert REGISTRY.get_sample_value("gridwatch_config_reloads_total", {"result": result}) is not None
    for step in ("detect", "embed", "search"):
        assert REGISTRY.get_sample_value("gridwatch_inference_seconds_count", {"step": step}) is not None
