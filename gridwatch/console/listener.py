"""The console as a service component: its listener (a second uvicorn), its accounts and its live feed.

Built by the service when ``service.console.enabled``; started after the HTTP API, stopped before it.
The service feeds it: ``on_alert`` (a tap on the alerts port) and ``on_steps`` (committed case steps).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gridwatch.console.accounts import Accounts, SignIn, SignInLimiter
from gridwatch.console.app import CaseActions, ConsoleDeps, create_console_app
from gridwatch.console.feed import Feed, FeedEvent
from gridwatch.console.registries import RegistryAccess
from gridwatch.core.audit import AuditLog
from gridwatch.core.config.root import GridwatchConfig
from gridwatch.core.config.service import ConsoleConfig
from gridwatch.core.db import Database
from gridwatch.core.events import Alert
from gridwatch.http import HttpServer
from notifier.desk import Desk, Steps
from recognition.evidence import EvidenceStore


class ConsoleListener:
    def __init__(
        self,
        settings: ConsoleConfig,
        *,
        database: Database,
        desk: Desk,
        cases: CaseActions,
        config: Callable[[], GridwatchConfig],
        audit: AuditLog,
        status: Callable[[], dict[str, Any]],
        healthy: Callable[[], bool],
        resolve: Callable[[Path], Path] = lambda path: path,
        evidence: EvidenceStore | None = None,
        registries: RegistryAccess | None = None,
    ) -> None:
        """``resolve``: makes the TLS paths absolute (against the config directory). No I/O here."""
        self.feed = Feed()
        self.accounts = Accounts(database)
        limiter = SignInLimiter(max_failures=settings.max_failed_sign_ins, window_s=settings.sign_in_window_s)
        tls = settings.tls_cert is not None and settings.tls_key is not None
        self.app = create_console_app(
            ConsoleDeps(
                accounts=self.accounts,
                sign_in=SignIn(self.accounts, limiter, audit, session_ttl_s=settings.session_ttl_s),
                desk=desk,
                cases=cases,
                config=config,
                feed=self.feed,
                audit_path=audit.path,
                status=status,
                healthy=healthy,
                secure_cookies=tls,
                session_ttl_s=settings.session_ttl_s,
                evidence=evidence,
                audit=audit,
                registries=registries,
            )
        )
        self._server = HttpServer(
            self.app,
            settings.host,
            settings.port,
            ssl_certfile=str(resolve(settings.tls_cert)) if settings.tls_cert is not None else None,
            ssl_keyfile=str(resolve(settings.tls_key)) if settings.tls_key is not None else None,
            name="console",
            setting="service.console",
        )

    @property
    def port(self) -> int | None:
        return self._server.port

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        """Ends the open streams first, so the listener need not wait for them; idempotent."""
        self.feed.close()
        await self._server.stop()

    async def on_alert(self, alert: Alert) -> None:
        """A tap on the alerts port: the alert is in the outbox and its case is open."""
        self.feed.publish(FeedEvent("alert", alert.alert_id))

    def on_steps(self, steps: Steps) -> None:
        """Committed case steps (on the event loop): one ``case`` event per case that changed."""
        for alert_id in dict.fromkeys(event.alert_id for event in steps.events):
            self.feed.publish(FeedEvent("case", alert_id))
