"""A console on a real SQLite database with real cases (the desk of tests/notifier/test_desk.py), no service.

Grids: street > community > g1, g2. Staff wang (g1), li (g2), zhao (community), chen (street). One user
per role; the operator ``op_a`` has grid g1, ``op_b`` grid g2; the staff user ``staff_wang`` is wang.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from argon2 import PasswordHasher
from fastapi import FastAPI

from gridwatch.console.accounts import Accounts, SignIn, SignInLimiter
from gridwatch.console.app import ConsoleDeps, create_console_app
from gridwatch.console.feed import Feed, FeedEvent
from gridwatch.console.registries import RegistryAccess
from gridwatch.core.audit import AuditLog
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.db import Database
from gridwatch.core.events import Alert, Severity, SourceKind, event_id_for
from gridwatch.wiring import RecognitionParts
from notifier.case_stage import CaseStage
from notifier.desk import Desk, Steps
from notifier.outbox import Outbox
from notifier.routing import Router
from recognition.evidence import EvidenceStore
from recognition.quality import QualityGate
from recognition.registries import Registries
from recognition.store import RegistryStore
from tests.notifier.test_desk import DUTY, LADDER, PARENTS, FixedRoster, config
from tests.support.db import sqlite_url
from tests.support.keys import site_keys
from tests.support.models import shared_analyzer

PASSWORD = "console test password"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
USERS: dict[str, dict[str, Any]] = {
    "admin1": {"role": "admin"},
    "integrator1": {"role": "integrator"},
    "op_a": {"role": "operator", "grids": ["g1"]},
    "op_b": {"role": "operator", "grids": ["g2"]},
    "op_top": {"role": "operator", "grids": ["community"]},
    "registrar1": {"role": "registrar", "registries": ["welfare"]},
    "auditor1": {"role": "auditor"},
    "staff_wang": {"role": "staff", "staff_id": "wang"},
}
_numbers = itertools.count(1)
# A tiny but real JPEG (8x8 grey), the evidence of every alert the rig raises.
EVIDENCE_JPEG = bytes(cv2.imencode(".jpg", np.full((8, 8, 3), 128, np.uint8))[1])


class ConsoleRig:
    def __init__(
        self,
        tmp_path: Path,
        *,
        max_failures: int = 5,
        static_dir: Path | None = None,
        confirmations: int = 1,
        database_url: str | None = None,
    ) -> None:
        """``database_url``: default a SQLite file in ``tmp_path``."""
        self.config = config(LADDER, confirmations=confirmations)
        # A second registry that registrar1 does not have (the "other" of the registry routes).
        self.config.registries.append(
            RegistryConfig(name="watch", purpose="console test", legal_basis="test fixture", retention_days=30)
        )
        self.database = Database(database_url or sqlite_url(tmp_path / "console.sqlite3"))
        self.database.open()
        self.outbox = Outbox(self.database)
        self.outbox.open()
        self.audit = AuditLog(tmp_path / "audit.jsonl")
        self.desk = Desk(
            self.database,
            Router(self.config, FixedRoster(dict(DUTY), PARENTS)),
            confirmations={r.name: r.confirmations for r in self.config.registries},
            audit=self.audit,
        )
        analyzer = shared_analyzer()
        self.keys = site_keys(tmp_path)
        store = RegistryStore(self.database, keys=self.keys)
        registries = Registries(
            self.config.registries, store, model_id=analyzer.model_id, dim=analyzer.embedding_dim, audit=self.audit
        )
        self.parts = RecognitionParts(analyzer, QualityGate(self.config.model.quality), store, registries, self.keys)
        self.evidence = EvidenceStore(self.database, self.keys)
        self.feed = Feed()
        self.cases = CaseStage(self.desk, on_steps=self.on_steps)
        self.accounts = Accounts(self.database, hasher=FAST_HASHER)
        self.tokens: dict[str, str] = {}
        for name, fields in USERS.items():
            self.accounts.add_user(name, fields["role"], PASSWORD, **_extra(fields))
            self.tokens[name] = self.accounts.create_token(name)
        self.limiter = SignInLimiter(max_failures=max_failures, window_s=300)
        if static_dir is None:
            static_dir = tmp_path / "static"
            static_dir.mkdir(exist_ok=True)
            (static_dir / "index.html").write_text("<!doctype html><title>gridwatch console</title>")
        self.deps = ConsoleDeps(
            accounts=self.accounts,
            sign_in=SignIn(self.accounts, self.limiter, self.audit, session_ttl_s=3600),
            desk=self.desk,
            cases=self.cases,
            config=lambda: self.config,
            feed=self.feed,
            audit_path=self.audit.path,
            status=lambda: {"cameras": [{"id": "gate-1", "state": "online", "fps_in": 5.0}], "gates": []},
            static_dir=static_dir,
            ping_s=0.5,
            evidence=self.evidence,
            audit=self.audit,
            registries=RegistryAccess(self.parts, lambda: self.config),
        )
        self.app: FastAPI = create_console_app(self.deps)

    def on_steps(self, steps: Steps) -> None:
        for alert_id in dict.fromkeys(e.alert_id for e in steps.events):
            self.feed.publish(FeedEvent("case", alert_id))

    def raise_alert(self, grid: str, *, publish: bool = False) -> Alert:
        """A new alert of ``grid`` in the outbox with its case open (its first notification queued)."""
        n = next(_numbers)
        alert = Alert(
            alert_id=event_id_for("console-test", str(n)),
            rule="seen",
            severity=Severity.WARNING,
            person_id=f"p-{n}",
            registry="welfare",
            source="gate-1",
            source_kind=SourceKind.GATE,
            grid=grid,
            created_at=dt.datetime.now(dt.UTC),
            sightings=[f"s{n}"],
            similarity=0.61,
            explanation="seen at gate-1",
        )
        alert = alert.model_copy(update={"recipients": self.desk.recipients_for(alert)})
        open_in, steps = self.desk.opener(alert)
        assert self.outbox.add(alert, also=open_in)
        self.desk.record(steps)
        for kind in ("face", "frame"):  # what recognition keeps of a match when the registry keeps evidence
            self.evidence.put(
                kind, "welfare", alert.person_id or "", EVIDENCE_JPEG, retention_days=1, sighting_id=f"s{n}"
            )
        if publish:
            self.feed.publish(FeedEvent("alert", alert.alert_id))
        return alert

    def enrol(self, registry: str) -> str:
        """A person of ``registry`` (a random template: these tests are about access, not matching)."""
        vector = np.random.default_rng().standard_normal(self.parts.analyzer.embedding_dim).astype(np.float32)
        vector /= np.linalg.norm(vector)
        person = self.parts.registries.enroll(registry, f"Person {next(_numbers)}", [("0" * 64, vector)], actor="rig")
        return person.person_id

    def bearer(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def close(self) -> None:
        self.feed.close()
        self.outbox.close()
        self.audit.close()
        self.database.close()


def _extra(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if key != "role"}
