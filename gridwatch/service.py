"""The service wires the stages; it is not the bus.

    ingest (cameras, gates) ──frames/snapshots──► recognition ──SightingSink──► transport
                                                      recognition ──StrangerAttemptSink──► transport
        transport (in-process queues, or the gridwatch.sightings and gridwatch.stranger-attempts topics) ──► rules
        rules ──AlertSink──► notifier (durable outbox → sinks)

Every stage is a component with ``start()``/``stop()``; they are joined by ports. Start order:
audit log, storage, recognition (model pack, registries), notifier, rules, transport, HTTP API,
gate intake, sources (gates, then cameras). Stop order is the reverse, so nothing is analysed
after its alert could no longer be stored, and the transport drains its queues before the rules
and the notifier stop.

Tests and the console observe a port with ``tap_sightings``/``tap_attempts``/``tap_alerts``; nobody
patches a stage.

A process runs one role (``gridwatch.roles``): ``all`` wires everything above; the other roles start
only their part, on the Kafka transport and a shared PostgreSQL database. Every role keeps the HTTP
API (``/healthz``, ``/metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI

from gridwatch.acks.consumer import AckConsumer
from gridwatch.acks.http import ack_router
from gridwatch.console.listener import ConsoleListener
from gridwatch.console.registries import RegistryAccess
from gridwatch.core import metrics
from gridwatch.core.audit import AuditLog
from gridwatch.core.config.cameras import CameraConfig
from gridwatch.core.config.loader import LoadedConfig
from gridwatch.core.crypto import Keyring
from gridwatch.core.events import Alert, Sighting, SourceKind, StrangerAttempt
from gridwatch.core.interfaces import GateEvent, SourceState, SourceStatus
from gridwatch.core.metrics import (
    CONFIG_RELOADS,
    QUEUE_DEPTH,
    register_outbox_probe,
    unregister_outbox_probe,
)
from gridwatch.core.redact import redact_text, register_secrets
from gridwatch.core.transport import ALERTS, SIGHTINGS, STRANGER_ATTEMPTS, Tap, TappedPort, Transport
from gridwatch.gate_intake import GateIntake
from gridwatch.http import HttpServer, create_app
from gridwatch.reload import ConfigState, ConfigWatcher, ReloadTrigger, audit_reload, diff_configs
from gridwatch.roles import Role
from gridwatch.status import camera_declarations, camera_status_dict, gate_status_dict
from gridwatch.transport import transport_for
from gridwatch.wiring import (
    Erasures,
    RecognitionParts,
    ReferencePhotos,
    Storage,
    ack_base_url,
    auto_thresholds,
    build_recognition,
    build_router,
    build_storage,
    data_paths,
    registry_confirmations,
    registry_keys,
    require_keyring,
    rule_surroundings,
    stranger_watch,
)
from ingest.camera import FrameHandler
from ingest.gates.watermarks import DatabaseWatermarks
from ingest.supervisor import IngestSupervisor, SourceChanges
from notifier.ack_links import AckLinks, UsedLinks
from notifier.case_events import CaseEventPublisher
from notifier.case_stage import CaseStage
from notifier.channels import build_channels
from notifier.desk import Desk, Steps
from notifier.dispatcher import NotificationDispatcher
from notifier.notification_outbox import NotificationOutbox
from notifier.notifier import Notifier, build_sinks
from recognition.evidence import EvidenceCapture, EvidenceStore
from recognition.recognizer import Recognizer, SourceInfo
from recognition.stage import RecognitionStage
from recognition.store import RegistryStore
from recognition.strangers import StrangerClusters
from rules.engine import RuleEngine
from rules.stage import RulesStage

log = logging.getLogger(__name__)

RULES_GROUP = "rules"
# How often a notifier process looks at the outboxes that other processes (rule workers) add to.
OUTBOX_POLL_S = 1.0


@dataclass(frozen=True, slots=True)
class Summary:
    frames_analysed: int
    faces: int
    sightings: int
    alerts: int

    def line(self) -> str:
        return (
            f"summary: frames analysed {self.frames_analysed}, faces {self.faces}, "
            f"sightings {self.sightings}, alerts {self.alerts}"
        )


class AppRoutes:
    """Mounts and unmounts push gates' routes on the running HTTP app (routes are looked up per request)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def mount(self, router: APIRouter) -> None:
        self._app.include_router(router)

    def unmount(self, router: APIRouter) -> None:
        paths = {getattr(route, "path", None) for route in router.routes}
        self._app.router.routes[:] = [r for r in self._app.router.routes if getattr(r, "path", None) not in paths]


class NotifierPort:
    """The notifier as the rules stage's ``AlertSink``: ``put`` returns once the alert is in the outbox.

    On the way, routing names the alert's recipients (the alert carries them) and the alert's case opens
    in the outbox's transaction; its first notifications are queued with it.
    """

    def __init__(
        self,
        notifier: Notifier,
        cases: CaseStage | None = None,
        *,
        on_duplicate: Callable[[Alert], Awaitable[None]] | None = None,
    ) -> None:
        """``on_duplicate``: told of an alert the outbox had already (the rule engine un-counts it)."""
        self._notifier = notifier
        self._cases = cases
        self._on_duplicate = on_duplicate
        # Alerts added to the outbox: the alerts that exist (a duplicate id adds nothing).
        self.submitted = 0
        # The latest alerts, for the demo summary; bounded, the outbox is the record.
        self.recent: deque[Alert] = deque(maxlen=1000)

    async def put(self, alert: Alert) -> None:
        opened: Steps | None = None
        also = None
        if self._cases is not None:
            desk = self._cases.desk
            alert = alert.model_copy(update={"recipients": desk.recipients_for(alert)})
            also, opened = desk.opener(alert)
        if await self._notifier.submit(alert, also=also):
            metrics.ALERTS.labels(rule=alert.rule, severity=str(alert.severity)).inc()
            self.submitted += 1
            self.recent.append(alert)
            if self._cases is not None and opened is not None:
                await asyncio.to_thread(self._cases.desk.record, opened)
                self._cases.made(opened)
        else:
            log.info("alert %s was submitted before (a replayed sighting); not sent again", alert.alert_id)
            metrics.ALERTS_REPLAYED.labels(rule=alert.rule).inc()
            if self._on_duplicate is not None:
                await self._on_duplicate(alert)


class Service:
    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        watch_config: bool = False,
        config_path: Path | None = None,
        role: Role = Role.ALL,
    ) -> None:
        """``watch_config``: follow the config files (and SIGHUP) and apply valid edits while running.

        ``role``: the part of the site this process runs (checked by ``gridwatch.roles.check_role``).
        """
        self._loaded = loaded
        self._role = role
        self._watch_config = watch_config
        self._config_path = config_path
        self._config_state = ConfigState()
        self._watcher: ConfigWatcher | None = None
        self._reload_lock = asyncio.Lock()
        self._paths = data_paths(loaded)
        config = loaded.config
        self._transport: Transport = transport_for(config.service.transport, service_name=config.service.name)
        self._audit: AuditLog | None = None
        self._storage: Storage | None = None
        self._keyring: Keyring | None = None  # the data key of evidence (None: no registry keeps any)
        self._evidence: EvidenceStore | None = None
        self._parts: RecognitionParts | None = None
        self._recognition: RecognitionStage | None = None
        self._notifier: Notifier | None = None
        self._alerts: TappedPort[Alert] | None = None
        self._notifier_port: NotifierPort | None = None
        self._cases: CaseStage | None = None
        self._case_events: CaseEventPublisher | None = None
        self._dispatcher: NotificationDispatcher | None = None
        self._ack_links: AckLinks | None = None
        self._used_links: UsedLinks | None = None
        self._ack_consumer: AckConsumer | None = None
        self._rules: RulesStage | None = None
        self._http: HttpServer | None = None
        self._console: ConsoleListener | None = None
        self._directory: RegistryStore | None = None  # a rule worker's persons (no model pack needed)
        self._outbox_poll: asyncio.Task[None] | None = None
        intake = loaded.config.service.gate_intake
        self._gate_intake = GateIntake(
            self._on_gate_event,
            intake.queue_per_gate,
            wait_s=intake.wait_s,
            retry_after_s=intake.retry_after_s,
            poison_after=intake.poison_after_failures,
        )
        self._sources: IngestSupervisor | None = None
        self._sightings = self._transport.publisher(SIGHTINGS)
        self._attempts = self._transport.publisher(STRANGER_ATTEMPTS)
        self._pending_taps: list[tuple[str, Tap[Any]]] = []
        self._started = False

    # -- what tests, the CLI and the console see ---------------------------------------------------

    @property
    def http_port(self) -> int | None:
        return None if self._http is None else self._http.port

    @property
    def role(self) -> Role:
        return self._role

    @property
    def console_port(self) -> int | None:
        return None if self._console is None else self._console.port

    @property
    def audit(self) -> AuditLog:
        assert self._audit is not None, "service not started"
        return self._audit

    @property
    def registries(self) -> RecognitionParts:
        assert self._parts is not None, "service not started"
        return self._parts

    @property
    def config(self) -> LoadedConfig:
        return self._loaded

    @property
    def sources(self) -> IngestSupervisor:
        assert self._sources is not None, "service not started"
        return self._sources

    @property
    def alerts_seen(self) -> deque[Alert]:
        return deque() if self._notifier_port is None else self._notifier_port.recent

    def tap_sightings(self, tap: Tap[Sighting]) -> Callable[[], None]:
        """Observe every sighting recognition publishes (call before or after ``start``)."""
        return self._transport.tap(SIGHTINGS, tap)

    def tap_attempts(self, tap: Tap[StrangerAttempt]) -> Callable[[], None]:
        """Observe every stranger attempt recognition publishes (call before or after ``start``)."""
        return self._transport.tap(STRANGER_ATTEMPTS, tap)

    def tap_alerts(self, tap: Tap[Alert]) -> Callable[[], None]:
        """Observe every alert the rules put into the outbox (call before ``start``)."""
        self._pending_taps.append((ALERTS.topic, tap))
        return lambda: self._pending_taps.remove((ALERTS.topic, tap))

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            await self._start_components()
        except BaseException:
            # A half-started service (a busy HTTP port, a missing model pack) must not leave its
            # notifier, gates or open files behind: callers only stop what started.
            await self.stop()
            raise

    async def _start_components(self) -> None:
        config = self._loaded.config
        register_secrets(self._loaded.secrets)  # before anything could print one
        # Before anything opens: registries (sealed templates, evidence) must not start without the data key.
        self._keyring = require_keyring(config)
        self._paths.root.mkdir(parents=True, exist_ok=True)
        self._audit = AuditLog(self._paths.audit_log)
        self._storage = build_storage(self._loaded)
        # Connects, migrates, imports an older version's files: a DatabaseError here stops the start.
        await asyncio.to_thread(self._storage.open)
        role = self._role
        if role.runs(Role.RECOGNITION) or role.runs(Role.CONSOLE):
            self._parts = build_recognition(self._loaded, self._audit, database=self._storage.database)
        if role.runs(Role.RECOGNITION):
            await self._start_recognition()
        if role.runs(Role.RULES) or role.runs(Role.NOTIFIER) or role.runs(Role.CONSOLE):
            self._notifier = Notifier(
                config.notifier,
                self._storage.outbox,
                build_sinks(config.notifier, self._paths.root, config.service.name),
                self._audit,
                on_delivered=self._on_delivered,
            )
            if role.runs(Role.NOTIFIER):
                await self._notifier.start()
            # A rule worker opens each alert's case with it; a console acknowledges cases.
            await self._start_cases(deliver=role.runs(Role.NOTIFIER))
        if role.runs(Role.RULES):
            await self._start_rules()
        if self._role is not Role.ALL and role.runs(Role.NOTIFIER):
            self._outbox_poll = asyncio.create_task(self._poll_outboxes(), name="gridwatch.outbox-poll")
        if role.runs(Role.RECOGNITION) or role.runs(Role.RULES):
            await self._transport.start()
        register_outbox_probe(self._outbox_probe)
        for queue in self._transport.depths():
            QUEUE_DEPTH.labels(queue=queue).set_function(self._depth_of(queue))
        QUEUE_DEPTH.labels(queue="gate-intake").set_function(lambda: self._gate_intake.pending)

        routes: AppRoutes | None = None
        if config.service.http.enabled:
            http = config.service.http
            routers = self._ack_routers() if role.runs(Role.NOTIFIER) or role.runs(Role.CONSOLE) else []
            app = create_app(status=self.status, routers=routers, healthy=self.healthy, config=http)
            routes = AppRoutes(app)
            self._http = HttpServer(app, http.host, http.port, limits=http)
            await self._http.start()
        if config.service.console.enabled and role.runs(Role.CONSOLE):
            await self._start_console()
        if role.runs(Role.RECOGNITION):
            await self._gate_intake.start()
            self._sources = IngestSupervisor(
                config_root=self._loaded.root,
                frame_handler=self._frame_handler,
                gate_handler=self._gate_intake.put,
                routes=routes,
                watermarks=DatabaseWatermarks(self._storage.database),
            )
            await self._sources.apply(config.cameras, config.gates)
        if self._watch_config and role is Role.ALL:
            self._watcher = ConfigWatcher(
                self._config_path, self._on_config_change, self._on_config_error, current=self._loaded
            )
            await self._watcher.start()
        log.info(
            "gridwatch started (role %s): %d camera(s), %d gate(s), %d registr(ies), %d rule(s), transport %s",
            role,
            len(self.camera_status()),
            len(self.gate_status()),
            len(config.registries),
            len(config.rules),
            self._transport.driver,
        )

    async def _start_recognition(self) -> None:
        """Recognition, publishing sightings and stranger attempts to the transport."""
        assert self._storage is not None
        assert self._parts is not None
        config = self._loaded.config
        strangers = StrangerClusters(stranger_watch(config))
        evidence = self._evidence = EvidenceStore(self._storage.database, self._parts.keys)
        capture = EvidenceCapture(evidence) if self._keyring is not None else None
        if self._keyring is not None:
            # Templates of an older version are sealed when the store opens; its evidence here.
            await asyncio.to_thread(evidence.reseal_under_registry_keys)
        recognizer = Recognizer(
            self._parts.analyzer, self._parts.gate, self._parts.registries, strangers, evidence=capture
        )
        self._recognition = RecognitionStage(
            recognizer,
            self._parts.analyzer,
            self._parts.registries,
            self._sightings,
            attempts=self._attempts,
            evidence=evidence,
        )
        await self._recognition.start()

    async def _start_rules(self) -> None:
        """The rules stage: a member of the rules consumer group whose alerts go to the outbox."""
        assert self._storage is not None
        assert self._notifier is not None
        assert self._audit is not None
        config = self._loaded.config
        directory: RegistryStore
        if self._parts is not None:
            directory = self._parts.store
        else:
            # A rule worker reads persons' conditions from the shared store; it loads no model pack.
            database = self._storage.database
            directory = self._directory = RegistryStore(
                database,
                keys=registry_keys(self._loaded),
                erasure=Erasures((self._storage.rule_state,)),
                audit=self._audit,
            )
        engine = RuleEngine(config.rules, self._storage.rule_state, directory=directory, **rule_surroundings(config))
        # A replayed event the rules judged again makes an alert the outbox has already: it does not
        # exist twice, so the engine does not count it, and the cooldown it took (the earlier one's
        # had run out, or the rule would not have made it) is dropped again.
        self._notifier_port = NotifierPort(
            self._notifier, self._cases, on_duplicate=lambda alert: asyncio.to_thread(engine.release, alert)
        )
        self._alerts = TappedPort(ALERTS.topic, self._notifier_port)
        for _topic, tap in self._pending_taps:
            self._alerts.tap(ALERTS, tap)
        self._rules = RulesStage(engine, self._alerts)
        await self._rules.start()
        # The stage owns the sightings' partitions Kafka assigns it (their timers move with them).
        self._transport.subscribe(SIGHTINGS, self._rules.put, group=RULES_GROUP, partitions=self._rules)
        self._transport.subscribe(STRANGER_ATTEMPTS, self._rules.put_attempt, group=RULES_GROUP)

    async def _poll_outboxes(self) -> None:
        """A notifier process is not told of alerts and notifications other processes store: look often."""
        while True:
            await asyncio.sleep(OUTBOX_POLL_S)
            if self._notifier is not None:
                self._notifier.wake()
            if self._dispatcher is not None:
                self._dispatcher.wake()
            if self._case_events is not None:
                self._case_events.wake()
            if self._cases is not None:
                self._cases.wake()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._watcher is not None:
            await self._watcher.stop()
        if self._outbox_poll is not None:
            self._outbox_poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._outbox_poll
            self._outbox_poll = None
        if self._sources is not None:
            await self._sources.stop()
        await self._gate_intake.stop()
        if self._recognition is not None:
            await self._recognition.stop()
        await self._transport.stop()
        unregister_outbox_probe(self._outbox_probe)
        if self._console is not None:
            await self._console.stop()
        if self._http is not None:
            await self._http.stop()
        if self._rules is not None:
            await self._rules.stop()
        if self._ack_consumer is not None:
            await self._ack_consumer.stop()
        if self._cases is not None:
            await self._cases.stop()
        if self._case_events is not None:
            await self._case_events.stop()
        if self._dispatcher is not None:
            await self._dispatcher.stop()
        if self._notifier is not None:
            await self._notifier.stop()
        if self._parts is not None:
            self._parts.store.close()  # shares the storage's database, which closes next
        if self._directory is not None:
            self._directory.close()
        if self._storage is not None:
            self._storage.close()
        if self._audit is not None:
            self._audit.close()
        log.info("gridwatch stopped")

    async def _start_cases(self, *, deliver: bool = True) -> None:
        """The case desk and what delivers its steps: case events on Kafka (when enabled).

        ``deliver`` False (a rule worker, a console): the desk only, for opening and acknowledging cases;
        the notifier processes run the case timers and deliver what the steps queued.
        """
        assert self._storage is not None
        config = self._loaded.config
        database = self._storage.database
        acks = config.notifier.acks
        if acks.signing_secret is not None:
            self._ack_links = AckLinks(acks.signing_secret, acks.link_ttl_s, ack_base_url(config))
            self._used_links = UsedLinks(database)
            await asyncio.to_thread(self._used_links.forget_expired, time.time())
        desk = Desk(
            database,
            build_router(config),
            confirmations=registry_confirmations(config),
            links=self._ack_links,
            audit=self._audit,
        )
        self._cases = CaseStage(desk, on_steps=self._on_case_steps)
        if not deliver:
            return
        self._dispatcher = NotificationDispatcher(
            NotificationOutbox(database),
            build_channels(config, config.service.name),
            config.notifier.outbox,
            self._audit,
        )
        await self._dispatcher.start()
        if config.notifier.alert_events.enabled:
            self._case_events = CaseEventPublisher(
                database,
                config.notifier.kafka,
                config.notifier.alert_events.topic,
                config.notifier.outbox,
                service_name=config.service.name,
            )
            await self._case_events.start()
        await self._cases.start()
        if acks.consume:
            self._ack_consumer = AckConsumer(
                config.notifier.kafka, acks.topic, f"{config.service.name}.acks", self._cases
            )
            await self._ack_consumer.start()

    def _ack_routers(self) -> list[APIRouter]:
        """The one-click links and the staff API, when acknowledgements are configured."""
        if self._cases is None or self._ack_links is None or self._used_links is None or self._audit is None:
            return []
        desk = self._cases.desk
        # The staff list is read per request: a reload that removes someone revokes their links and token.
        staff_ids = lambda: desk.router.staff_ids()  # noqa: E731
        return [ack_router(self._cases, self._ack_links, self._used_links, self._audit, staff_ids)]

    async def _start_console(self) -> None:
        """The operator console's listener, fed by a tap on the alerts port and by committed case steps."""
        assert self._storage is not None, "storage not started"
        assert self._cases is not None, "case desk not started"
        assert self._audit is not None, "audit log not open"
        assert self._parts is not None, "recognition not started"
        if self._evidence is None and self._keyring is not None:
            self._evidence = EvidenceStore(self._storage.database, self._parts.keys)  # a console process
        self._console = ConsoleListener(
            self._loaded.config.service.console,
            database=self._storage.database,
            desk=self._cases.desk,
            cases=self._cases,
            config=lambda: self._loaded.config,
            audit=self._audit,
            status=self.status,
            healthy=self.healthy,
            resolve=self._loaded.resolve,
            evidence=self._evidence if self._keyring is not None else None,
            registries=RegistryAccess(
                self._parts,
                lambda: self._loaded.config,
                ReferencePhotos(self._loaded.config, self._storage.database, self._parts.keys),
            ),
        )
        if self._alerts is not None:  # alerts made in this process reach the console at once
            self._alerts.tap(ALERTS, self._console.on_alert)
        await self._console.start()

    def _on_case_steps(self, steps: Steps) -> None:
        """Committed case steps queued notifications and events: wake whoever delivers them."""
        if self._console is not None:
            self._console.on_steps(steps)
        if steps.notifications and self._dispatcher is not None:
            for channel in {n.channel for n in steps.notifications}:
                self._dispatcher.wake(channel)
        if steps.events and self._case_events is not None:
            self._case_events.wake()

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- reconfiguration ---------------------------------------------------------------------------

    async def apply_config(self, loaded: LoadedConfig) -> SourceChanges:
        """Reconcile the running service with a validated config, by id; unchanged sources are not touched.

        Registries (thresholds, margins, sources) and rules change in place; cameras and gates that
        changed restart one by one. Keys that need a restart (model pack, database, HTTP bind, ...)
        are logged and keep their running values.
        """
        assert self._parts is not None, "service not started"
        assert self._rules is not None, "service not started"
        assert self._sources is not None, "service not started"
        assert self._recognition is not None, "service not started"
        async with self._reload_lock:
            register_secrets(loaded.secrets)  # a new camera's password is masked before it opens
            new = loaded.config
            if self._keyring is None:
                require_keyring(new, {})  # no registry (templates are sealed) may be added without the data key
            # Solved again for the new config (targets, faces a day, the cameras' fps); raises before any
            # change when a `threshold: auto` registry has no calibration for the pack.
            thresholds = auto_thresholds(loaded, self._parts.analyzer.pack)
            self._parts.registries.use_thresholds(thresholds)
            await asyncio.to_thread(self._parts.registries.reconfigure, new.registries)
            # Gates no stranger rule watches any more forget their unknown faces at once.
            self._recognition.recognizer.strangers.reconfigure(stranger_watch(new))
            self._rules.engine.reconfigure(new.rules, **rule_surroundings(new))
            if self._cases is not None:
                self._cases.desk.reconfigure(build_router(new), registry_confirmations(new))
                self._cases.wake()
            self._rules.wake()  # arm timers of new rules now
            self._loaded = loaded
            return await self._sources.apply(new.cameras, new.gates)

    async def _on_delivered(self, alert_id: str) -> None:
        """A sink took an alert: the cooldown it started runs from now."""
        if self._rules is not None:
            await asyncio.to_thread(self._rules.engine.delivered, alert_id)
        elif self._storage is not None:
            # A notifier process: the rule state is shared, whichever rule worker made the alert.
            await asyncio.to_thread(self._storage.rule_state.mark_delivered, alert_id, dt.datetime.now(dt.UTC))

    async def _on_config_change(self, new: LoadedConfig, trigger: ReloadTrigger) -> None:
        diff = diff_configs(self._loaded.config, new.config)
        if diff.needs_restart:
            log.warning(
                "config: %s changed; these take effect at the next restart (the running values stay)",
                ", ".join(diff.needs_restart),
            )
        try:
            changes = await self.apply_config(new)
        except Exception:
            CONFIG_RELOADS.labels(result="rejected").inc()
            raise
        version = self._config_state.applied()
        CONFIG_RELOADS.labels(result="applied").inc()
        log.info("config: version %d applied (%s): %s", version, trigger.describe(), diff.summary() or "no change")
        if changes:
            log.info(
                "sources: started %s, restarted %s, stopped %s",
                changes.started or "-",
                changes.restarted or "-",
                changes.stopped or "-",
            )
        await asyncio.to_thread(audit_reload, self.audit, diff, version, trigger)

    async def _on_config_error(self, issues: str, trigger: ReloadTrigger) -> None:
        # The watcher has logged the issues; /status shows them until a good config is applied.
        self._config_state.rejected(issues)
        CONFIG_RELOADS.labels(result="rejected").inc()

    # -- the joints between ingest and recognition -------------------------------------------------

    def _frame_handler(self, camera: CameraConfig) -> FrameHandler:
        assert self._recognition is not None
        return self._recognition.frame_handler(SourceInfo(camera.id, SourceKind.CAMERA, camera.grid), camera)

    async def _on_gate_event(self, event: GateEvent) -> None:
        """Returns once the event's sightings are durable: both transports' ``put`` return only then
        (in-process: the rules stage has put any alert into the outbox; Kafka: acks=all)."""
        assert self._recognition is not None
        grid = next((g.grid for g in self._loaded.config.gates if g.id == event.gate_id), None)
        await self._recognition.on_gate_event(event, SourceInfo(event.gate_id, SourceKind.GATE, grid))

    def _depth_of(self, queue: str) -> Callable[[], float]:
        return lambda: float(self._transport.depths().get(queue, 0))

    def _outbox_probe(self) -> tuple[int, float | None]:
        """Outbox depth and the age of its oldest pending delivery, for /metrics (runs in the scrape thread)."""
        if self._storage is None:
            return 0, None
        return self._storage.outbox.count_pending(), self._storage.outbox.oldest_pending_age()

    # -- status ------------------------------------------------------------------------------------

    def camera_status(self) -> list[SourceStatus]:
        return [] if self._sources is None else self._sources.camera_status()

    def gate_status(self) -> list[SourceStatus]:
        return [] if self._sources is None else self._sources.gate_status()

    def _recognizer(self) -> Recognizer | None:
        return None if self._recognition is None else self._recognition.recognizer

    def healthy(self) -> bool:
        """For ``/healthz``: every camera and gate online (starting counts: it is not a failure yet)."""
        return all(
            s.state in (SourceState.ONLINE, SourceState.STARTING) for s in (*self.camera_status(), *self.gate_status())
        )

    def status(self) -> dict[str, object]:
        recognizer = self._recognizer()
        stats = None if recognizer is None else recognizer.stats
        engine = None if self._rules is None else self._rules.engine
        declarations = camera_declarations(self._loaded.config.cameras)
        return {
            "service": self._loaded.config.service.name,
            "model": None if self._parts is None else self._parts.analyzer.model_id,
            "registries": None
            if self._parts is None
            else {name: info.as_dict() for name, info in self._parts.registries.index_status().items()},
            "cameras": [camera_status_dict(s, declarations.get(s.source_id)) for s in self.camera_status()],
            "gates": [gate_status_dict(s, self._gate_intake.dropped.get(s.source_id, 0)) for s in self.gate_status()],
            "gate_queue": self._gate_queue_status(),
            "config": self._config_state.as_dict(),
            "role": str(self._role),
            "transport": {"driver": self._transport.driver, "queues": self._transport.depths()},
            "notifier": self._notifier_status(),
            "recognition": None
            if recognizer is None or stats is None
            else {
                "images": stats.images,
                "faces": stats.faces,
                "faces_rejected": stats.faces_rejected,
                "faces_searched": stats.faces_searched,
                "sightings": stats.sightings,
                "unknown_at_gates": stats.unknown_at_gates,
                "stranger_clusters": recognizer.strangers.count(),
            },
            "rules": None
            if engine is None
            else {
                "sightings": engine.sightings,
                "alerts": engine.alerts,
                # The sightings partitions whose state and timers this process owns (None: all, one process).
                "partitions": None if engine.state.owned is None else sorted(engine.state.owned),
                "by_rule": {
                    rule: {"alerts": engine.alerts_by_rule[rule], "suppressed": engine.suppressed[rule]}
                    for rule in engine.rule_ids
                },
            },
        }

    def _notifier_status(self) -> dict[str, object] | None:
        """Per sink: deliveries pending, and parked (refused for good, waiting for an operator)."""
        if self._storage is None or self._notifier is None:
            return None
        try:
            depth = self._storage.outbox.depth_by_sink()
        except Exception as exc:
            # /status must answer while the database is down; the outbox's own errors say why.
            log.warning("status: outbox not readable: %s", redact_text(str(exc)))
            return {"outbox": None}
        sinks = [sink.name for sink in self._notifier.sinks]
        return {
            "notifications": self._notifications_status(),
            "outbox": {
                "pending": sum(depth["pending"].values()),
                "parked": sum(depth["parked"].values()),
                "sinks": {
                    name: {"pending": depth["pending"].get(name, 0), "parked": depth["parked"].get(name, 0)}
                    for name in sorted({*sinks, *depth["pending"], *depth["parked"]})
                },
            },
        }

    def _notifications_status(self) -> dict[str, object] | None:
        """Per channel: notifications of staff pending and parked (None when the database does not answer)."""
        if self._dispatcher is None or self._storage is None:
            return None
        try:
            depth = NotificationOutbox(self._storage.database).depth_by_channel()
        except Exception as exc:
            log.warning("status: notification outbox not readable: %s", redact_text(str(exc)))
            return None
        channels = sorted({*(c.name for c in self._dispatcher.channels), *depth["pending"], *depth["parked"]})
        return {
            "pending": sum(depth["pending"].values()),
            "parked": sum(depth["parked"].values()),
            "channels": {
                name: {"pending": depth["pending"].get(name, 0), "parked": depth["parked"].get(name, 0)}
                for name in channels
            },
        }

    def _gate_queue_status(self) -> dict[str, object]:
        """Totals (``dropped`` = events refused or timed out) and each gate's own numbers."""
        per_gate = self._gate_intake.stats()
        return {
            "pending": self._gate_intake.pending,
            "capacity": self._gate_intake.capacity,  # per gate
            "dropped": sum(stats.dropped for stats in per_gate.values()),
            "processed": self._gate_intake.processed,
            "failed": self._gate_intake.failed,
            "gates": {gate_id: stats.as_dict() for gate_id, stats in per_gate.items()},
        }

    def summary(self) -> Summary:
        recognizer = self._recognizer()
        stats = None if recognizer is None else recognizer.stats
        return Summary(
            frames_analysed=0 if self._sources is None else self._sources.frames_analysed(),
            faces=0 if stats is None else stats.faces,
            sightings=0 if stats is None else stats.sightings,
            alerts=0 if self._notifier_port is None else self._notifier_port.submitted,
        )
