"""The operator console end to end, in a real browser (Debian's Chromium) against the running service.

Real parts only: the service in-process with two ISAPI push gates (grid A, grid B), real models, FAISS, the
`seen` rule, the case desk, encrypted evidence (a registry keeping it, a data key from the environment)
and the console's own listener; users made with `gridwatch users add`. A real HTTP client plays the gates.

- An operator of grid A signs in; an alert the service makes at gate A appears in the queue without a
  reload; opening it shows the captured face (decrypted evidence); acknowledging it puts the step on the
  case timeline. The alert the service made at gate B (grid B) never appears, not in the queue, not in
  the API's list, not on the live feed.
- A registrar imports the shared test photos through the page: the progress bar reaches 100% and the
  refused photos are listed.
Screenshots of each step: ``var/screenshots/<test name>/``.
"""

from __future__ import annotations

import base64
import io
import sys
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from gridwatch.cli import main
from gridwatch.core.config.loader import load_config
from gridwatch.core.crypto import new_data_key
from gridwatch.service import Service
from tests.ingest.polling import eventually
from tests.support.browser import BrowserContextFactory, Screenshots
from tests.support.console_pages import RECORD_ALERT_ARRIVALS, ConsolePage
from tests.support.e2e import enrol
from tests.support.gate_payloads import isapi_event, isapi_push_body
from tests.support.paths import TESTDATA

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

ENROLLED_PHOTO = TESTDATA / "faces" / "biden" / "biden.jpg"
SAME_PERSON = TESTDATA / "faces" / "biden" / "biden2.jpg"
ENV = {"GATE_USER": "terminal", "GATE_PASSWORD": "e2e-gate-secret"}
OPERATOR, REGISTRAR, PASSWORD = "op-a", "reg-w", "console-e2e-password"


def write_config(root: Path) -> Path:
    config = root / "config"
    config.mkdir()
    gates = "\n".join(
        f"""  - id: gate-{g}
    kind: isapi_push
    grid: grid-{g}
    username: ${{GATE_USER}}
    password: ${{GATE_PASSWORD}}
    doors: [{{door: "1", direction: in}}]"""
        for g in ("a", "b")
    )
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: e2e-console
  data_dir: {root / "data"}
  http: {{enabled: true, host: 127.0.0.1, port: 0}}
  console: {{enabled: true, host: 127.0.0.1, port: 0, timezone: Asia/Shanghai, language: en}}
gates:
{gates}
grids:
  - {{id: grid-a, name: Grid A}}
  - {{id: grid-b, name: Grid B}}
registries:
  - name: watch
    purpose: end-to-end test
    legal_basis: test fixture
    retention_days: 1
    threshold: 0.45
    evidence: {{keep: true, retention_days: 1}}
rules:
  - {{id: seen-watch, kind: seen, registries: [watch], cooldown_s: 0}}
notifier:
  console: {{enabled: false}}
  jsonl: {{enabled: true}}
"""
    )
    return config


def add_user(config: Path, monkeypatch: pytest.MonkeyPatch, name: str, *scope: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "add", "-c", str(config), name, *scope, "--password-stdin"]) == 0


@dataclass
class Running:
    service: Service
    gates: httpx.AsyncClient
    url: str
    person_id: str


@pytest_asyncio.fixture(loop_scope="session")
async def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    monkeypatch.setenv("GRIDWATCH_DATA_KEY", base64.b64encode(new_data_key()).decode())
    for name, value in ENV.items():  # the CLI commands read the site's environment
        monkeypatch.setenv(name, value)
    config = write_config(tmp_path)
    person_id = enrol(config, ENROLLED_PHOTO, "Watched", env=ENV)
    add_user(config, monkeypatch, OPERATOR, "--role", "operator", "--grid", "grid-a")
    add_user(config, monkeypatch, REGISTRAR, "--role", "registrar", "--registry", "watch")
    service = Service(load_config(config, ENV))
    await service.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}", timeout=60) as gates:
            yield Running(service, gates, f"http://127.0.0.1:{service.console_port}", person_id)
    finally:
        await service.stop()


async def push(gates: httpx.AsyncClient, gate: str, serial: int) -> None:
    body, content_type = isapi_push_body(isapi_event(serial, door=1), [SAME_PERSON.read_bytes()])
    answer = await gates.post(
        f"/gates/{gate}/isapi",
        content=body,
        headers={"Content-Type": content_type},
        auth=(ENV["GATE_USER"], ENV["GATE_PASSWORD"]),
    )
    assert answer.status_code == 200, answer.text


def delivered(service: Service) -> bool:
    notifier = service.status()["notifier"]
    assert isinstance(notifier, dict)
    return bool(notifier["outbox"]["pending"] == 0)


async def test_an_operator_sees_their_grids_alert_live_with_its_evidence_and_acknowledges_it(
    running: Running, browser_contexts: BrowserContextFactory, screenshots: Screenshots
) -> None:
    context = await browser_contexts(timezone_id="UTC")
    await context.add_init_script(RECORD_ALERT_ARRIVALS)
    page = await context.new_page()
    tab = ConsolePage(page, running.url)
    await tab.open()
    await screenshots.take(page, "sign-in")
    await tab.sign_in(OPERATOR, PASSWORD)
    await tab.wait_ready()
    await page.evaluate("window.__noReload = true")
    await screenshots.take(page, "empty-queue")

    # Gate B (grid B) first: its alert exists before A's, and must never reach this operator. (A person's
    # next alert waits until the previous one was delivered: the cooldown runs from delivery.)
    await push(running.gates, "gate-b", 1)
    await eventually(lambda: delivered(running.service), 30, "gate B's alert delivered")
    await push(running.gates, "gate-a", 2)
    by_gate = {alert.source: alert for alert in running.service.alerts_seen}
    alert_a, alert_b = by_gate["gate-a"], by_gate["gate-b"]
    assert alert_a.person_id == running.person_id

    row = tab.alert_row(alert_a.alert_id)
    await expect(row).to_be_visible()
    assert await page.evaluate("window.__noReload") is True  # arrived without a reload
    await expect(tab.alert_rows).to_have_count(1)
    await expect(tab.alert_row(alert_b.alert_id)).to_have_count(0)
    await screenshots.take(page, "live-alert")

    detail = await tab.open_alert(alert_a.alert_id)
    face = detail.get_by_test_id("evidence-face").locator("img")
    await expect(face).to_be_visible()
    assert await face.evaluate("img => img.naturalWidth") > 0  # the sealed crop, decrypted and served
    await screenshots.take(page, "alert-detail-with-evidence")

    await tab.act("ack", comment="checking gate A")
    entry = tab.timeline_entry("acknowledged")
    await expect(entry).to_be_visible()
    await expect(entry.get_by_test_id("timeline-comment")).to_have_text("checking gate A")
    await screenshots.take(page, "acknowledged")

    # The API agrees: grid B's alert does not exist for this operator.
    listed = await page.evaluate("() => fetch('/api/alerts').then(r => r.json())")
    assert [a["alert_id"] for a in listed["alerts"]] == [alert_a.alert_id]
    other = await page.evaluate(f"() => fetch('/api/alerts/{alert_b.alert_id}').then(r => r.status)")
    assert other == 404


async def test_a_registrar_imports_the_shared_photos_with_progress_and_refusals(
    running: Running, page: Page, screenshots: Screenshots, tmp_path: Path
) -> None:
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for photo in sorted((TESTDATA / "faces").glob("*/*")):
            if photo.suffix.lower() in {".jpg", ".jpeg", ".png"}:
                zipped.write(photo, f"{photo.parent.name}-{photo.name}")
    tab = ConsolePage(page, running.url)
    await tab.open()
    await tab.sign_in(REGISTRAR, PASSWORD)
    await expect(page.get_by_test_id("registries-table")).to_contain_text("watch")
    await screenshots.take(page, "registries")
    await page.get_by_test_id("registry-import").click()
    await page.get_by_test_id("import-file").set_input_files(str(archive))
    await page.get_by_test_id("import-submit").click()
    await expect(page.get_by_test_id("import-progress")).to_be_visible()
    await screenshots.take(page, "import-running")
    await expect(page.get_by_test_id("import-progress")).to_have_attribute("data-state", "done", timeout=120_000)
    await expect(page.get_by_test_id("import-percent")).to_have_text("100%")
    refused = page.get_by_test_id("import-refusals").get_by_test_id("refusal")
    await expect(refused.first).to_be_visible()
    photos = await refused.evaluate_all("rows => rows.map(r => r.dataset.photo)")
    assert {"group-two_people.jpg", "group-test_obama_and_biden.jpg"} <= set(photos)
    await screenshots.take(page, "import-done")
