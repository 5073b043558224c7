"""Every Prometheus metric of gridwatch, defined once, in ``prometheus_client``'s default registry.

Stages import the metric they move from here (``FRAMES_IN.labels(camera=...).inc()``); the HTTP API
serves the registry at ``/metrics``. Names carry the ``gridwatch_`` prefix and their unit
(``_total``, ``_seconds``). Label values are ids from the config (camera, gate, sink, registry,
rule), never personal data.

The outbox is not counted but measured at scrape time: the service registers a probe
(``register_outbox_probe``) that returns the pending depth and the age of the oldest pending alert,
and unregisters it when it stops, so a stopped service's outbox is never scraped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# --- ingest ---------------------------------------------------------------------------------------

FRAMES_IN = Counter("gridwatch_frames_in_total", "Frames read from a camera stream.", ["camera"])
FRAMES_ANALYSED = Counter("gridwatch_frames_analysed_total", "Sampled camera frames handed to recognition.", ["camera"])
FRAMES_DROPPED = Counter(
    "gridwatch_frames_dropped_total",
    "Sampled camera frames overwritten before recognition took them (recognition behind the camera's fps).",
    ["camera"],
)

GATE_BUSY = Counter(
    "gridwatch_gate_busy_total",
    "Gate events refused because recognition was saturated (queue full or wait bound passed); the device resends.",
    ["gate"],
)
GATE_POISONED = Counter(
    "gridwatch_gate_events_poisoned_total",
    "Gate events that failed recognition gate_intake.poison_after_failures times and were then answered as "
    "taken and dropped (the device would resend them forever).",
    ["gate"],
)
GATE_EVENTS = Counter("gridwatch_gate_events_total", "Access events accepted from a gate.", ["gate"])
GATE_REJECTIONS = Counter(
    "gridwatch_gate_rejections_total", "Gate payloads rejected (malformed, unauthorised, incomplete).", ["gate"]
)
GATE_DUPLICATES = Counter(
    "gridwatch_gate_duplicates_total", "Gate events dropped as replays of an event seen before.", ["gate"]
)
GATE_BACKFILLED = Counter(
    "gridwatch_gate_backfilled_total",
    "Events a stream gate missed and recovered from the device's event history.",
    ["gate"],
)
GATE_UNRECOVERED = Counter(
    "gridwatch_gate_unrecovered_total",
    "Events a stream gate missed (serial gaps) that the device's event history did not give back.",
    ["gate"],
)

# --- recognition ----------------------------------------------------------------------------------

FACES_DETECTED = Counter("gridwatch_faces_detected_total", "Faces found by the detector.", ["source"])
FACES_GATED = Counter(
    "gridwatch_faces_gated_total", "Faces rejected by the quality gate (size, blur, yaw).", ["source"]
)
FACES_EMBEDDED = Counter("gridwatch_faces_embedded_total", "Faces embedded and searched in the registries.", ["source"])
SIGHTINGS = Counter("gridwatch_sightings_total", "Faces that matched a registry entry.", ["registry", "source_kind"])
STRANGER_ATTEMPTS = Counter(
    "gridwatch_stranger_attempts_total",
    "Attempts at gates watched by a stranger_at_gate rule: an unknown face (unmatched) or a refusal (denied).",
    ["gate", "verdict"],
)

INFERENCE_STEPS = ("detect", "embed", "search")
INFERENCE_SECONDS = Histogram(
    "gridwatch_inference_seconds",
    "Time of one recognition step on one image: detect, embed (all its faces) or search (all its faces).",
    ["step"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
)

# --- rules and notifier ---------------------------------------------------------------------------

ALERTS = Counter("gridwatch_alerts_total", "Alerts raised by the rules.", ["rule", "severity"])
RULE_SUPPRESSED = Counter(
    "gridwatch_rule_suppressed_total",
    "Sightings a rule's cooldown suppressed (counted on the next alert of that rule and person).",
    ["rule"],
)
TIMER_FIRINGS = Counter("gridwatch_rule_timer_firings_total", "Absence timers that came due and alerted.", ["rule"])
DELIVERY_ATTEMPTS = Counter("gridwatch_delivery_attempts_total", "Attempts to deliver an alert to a sink.", ["sink"])
DELIVERY_FAILURES = Counter(
    "gridwatch_delivery_failures_total", "Alert deliveries that failed (retried from the outbox).", ["sink"]
)
DELIVERIES_PARKED = Counter(
    "gridwatch_deliveries_parked_total",
    "Alert deliveries parked for a sink: refused for good, kept aside in the outbox for an operator.",
    ["sink"],
)

# --- the service ----------------------------------------------------------------------------------

# --- cases and the responsible staff (notifier.desk) -----------------------------------------------

CASE_TRANSITIONS = Counter(
    "gridwatch_case_transitions_total",
    "Case steps by type (notified, escalated, acknowledged, confirmed, resolved, commented).",
    ["type"],
)
ALERTS_UNROUTED = Counter(
    "gridwatch_alerts_unrouted_total", "Alerts that no route took while routes are configured: nobody was notified."
)
CASE_EVENTS_PUBLISHED = Counter(
    "gridwatch_alert_events_published_total", "Case transitions published on the alert-events topic."
)
DUTY_GAPS = Counter(
    "gridwatch_duty_gaps_total",
    "Notifications that found nobody on duty for a grid and went to the parent grid's duty at once.",
    ["grid"],
)

HTTP_CONNECTIONS_CLOSED = Counter(
    "gridwatch_http_connections_closed_total",
    "HTTP connections the guard refused or cut: connection_limit, address_limit (503 before reading), "
    "header_timeout (408), body_timeout.",
    ["reason"],
)
for _reason in ("connection_limit", "address_limit", "header_timeout", "body_timeout"):
    HTTP_CONNECTIONS_CLOSED.labels(reason=_reason)  # series from the start: rate() sees the first one

LOOP_ERRORS = Counter(
    "gridwatch_loop_errors_total",
    "Unexpected errors a background loop survived (it logged the traceback and goes on): a database or disk "
    "outage outlasting the retry window, a delivery report or an audit append that failed. Alert on any increase.",
    ["loop"],
)

QUEUE_DEPTH = Gauge("gridwatch_queue_depth", "Events waiting in an in-process queue between stages.", ["queue"])

RELOAD_RESULTS = ("applied", "rejected")
CONFIG_RELOADS = Counter(
    "gridwatch_config_reloads_total", "Config reloads: applied, or rejected as invalid.", ["result"]
)

# Series known in advance exist from the start (at 0), so a rate() over them never starts empty.
for _step in INFERENCE_STEPS:
    INFERENCE_SECONDS.labels(step=_step)
for _result in RELOAD_RESULTS:
    CONFIG_RELOADS.labels(result=_result)

# --- the outbox, measured at scrape time ----------------------------------------------------------

OutboxProbe = Callable[[], tuple[int, float | None]]
"""Returns (pending deliveries, age in seconds of the oldest pending one or None when none is)."""

OUTBOX_DEPTH = "gridwatch_outbox_depth"
OUTBOX_OLDEST_AGE = "gridwatch_outbox_oldest_age_seconds"


class OutboxCollector(Collector):
    """The outbox gauges, read from the registered probes at every scrape.

    With several probes (several services in one process, as in tests) the depths add up and the
    oldest age is the largest. A probe that fails is logged and left out; the scrape goes on.
    Without a probe, the families are exposed without samples.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._probes: list[OutboxProbe] = []

    def register(self, probe: OutboxProbe) -> None:
        with self._lock:
            if probe not in self._probes:
                self._probes.append(probe)

    def unregister(self, probe: OutboxProbe) -> None:
        with self._lock:
            if probe in self._probes:
                self._probes.remove(probe)

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            probes = list(self._probes)
        depth, oldest = self._families()
        if not probes:
            return [depth, oldest]
        total = 0
        ages: list[float] = []
        answered = False
        for probe in probes:
            try:
                pending, age = probe()
            except Exception:
                log.exception("metrics: the outbox probe failed; outbox gauges left out of this scrape")
                continue
            answered = True
            total += pending
            if age is not None:
                ages.append(age)
        if answered:
            depth.add_metric([], float(total))
            oldest.add_metric([], max(ages) if ages else 0.0)
        return [depth, oldest]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(OUTBOX_DEPTH, "Alert deliveries pending in the outbox (all sinks)."),
            GaugeMetricFamily(
                OUTBOX_OLDEST_AGE, "Age of the oldest pending alert delivery in the outbox; 0 when none is pending."
            ),
        )


_OUTBOX = OutboxCollector()
REGISTRY.register(_OUTBOX)


def register_outbox_probe(probe: OutboxProbe) -> None:
    """Expose an outbox's depth and oldest pending age at ``/metrics`` (idempotent)."""
    _OUTBOX.register(probe)


def unregister_outbox_probe(probe: OutboxProbe) -> None:
    """Stop scraping that outbox (a stopped service); a probe not registered is ignored."""
    _OUTBOX.unregister(probe)


# --- acknowledgements (one-click links, staff API, gridwatch.acks topic) ----------------------------

ACKS = Counter(
    "gridwatch_acks_total",
    "Acknowledgements accepted (including repeats of one already made), by channel: api, link, kafka.",
    ["channel"],
)
ACKS_REJECTED = Counter(
    "gridwatch_acks_rejected_total",
    "Acknowledgements refused, by channel and reason (invalid, expired, reused, unknown_staff, unknown_alert, "
    "conflict, malformed, unauthenticated, unavailable).",
    ["channel", "reason"],
)
for _channel in ("api", "link", "kafka"):
    ACKS.labels(channel=_channel)  # a series from the start: a dashboard's rate() sees the first acknowledgement

# --- notifications of staff (notifier.dispatcher: the notification outbox per channel) -------------
NOTIFICATIONS_DELIVERED = Counter(
    "gridwatch_notifications_delivered_total", "Notifications delivered to staff, per channel.", ["channel"]
)
NOTIFICATION_FAILURES = Counter(
    "gridwatch_notification_failures_total",
    "Notification delivery attempts that failed (retried from the notification outbox), per channel.",
    ["channel"],
)
NOTIFICATIONS_PARKED = Counter(
    "gridwatch_notifications_parked_total",
    "Notifications parked for a channel: refused for good, kept aside in the outbox for an operator.",
    ["channel"],
)

# --- evidence (recognition.evidence: sealed face crops and frames of matches) ------------------------
EVIDENCE_STORED = Counter(
    "gridwatch_evidence_stored_total",
    "Evidence objects sealed and stored, by registry and kind (face, frame, reference).",
    ["registry", "kind"],
)
EVIDENCE_FAILURES = Counter(
    "gridwatch_evidence_failures_total",
    "Matches whose evidence could not be stored (the sighting went on without it), by registry.",
    ["registry"],
)

# --- face tracks, regions of interest and motion gating (recognition.tracks, ingest.motion) --------
TRACKS = Counter(
    "gridwatch_tracks_total",
    "Face tracks that ended, by source and outcome (matched, unmatched: embedded but known to no registry, "
    "unembedded: never good enough to embed).",
    ["source", "outcome"],
)
FACES_OUTSIDE_ROI = Counter(
    "gridwatch_faces_outside_roi_total",
    "Faces dropped before embedding because their box centre lies outside the camera's region of interest.",
    ["camera"],
)
TRACKER_FAILURES = Counter(
    "gridwatch_tracker_failures_total",
    "Tracker updates that failed on a camera (its tracks were reset; the other cameras went on).",
    ["camera"],
)
FRAMES_WITHOUT_MOTION = Counter(
    "gridwatch_frames_without_motion_total",
    "Frames due for analysis that were not analysed because nothing moved (motion gating).",
    ["camera"],
)

# --- the face a gate snapshot is about (recognition.recognizer, recognition.dominant) --------------
GATE_FACE_CHOICE = Counter(
    "gridwatch_gate_face_choice_total",
    "Gate snapshots with a face, by gate and how the face at the reader was chosen: single (one face), "
    "face_rect (the one inside the terminal's FaceRect), dominant (the largest by a margin), ambiguous "
    "(several faces, none clearly the subject: refused, nothing searched).",
    ["gate", "choice"],
)

# --- scale-out (gridwatch --role rules: a member of the rules consumer group) ----------------------
RULES_PARTITIONS_OWNED = Gauge(
    "gridwatch_rules_partitions_owned",
    "Partitions of the sightings topic whose rule state and timers this rule worker owns.",
)
CONSUMER_LAG = Gauge(
    "gridwatch_consumer_lag",
    "Records of a partition this process owns that its consumer group has not handled yet (as of the last batch).",
    ["topic", "group", "partition"],
)
ALERTS_REPLAYED = Counter(
    "gridwatch_alerts_replayed_total",
    "Alerts made again for an event handled twice (at-least-once: the same alert id, the outbox kept one), by rule.",
    ["rule"],
)
