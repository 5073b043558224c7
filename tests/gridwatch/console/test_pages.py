"""The console's pages in a real browser (Debian's Chromium), against the STAND-IN of the console API.

``tests/support/console_standin.py`` implements the contract in memory so the pages are proven before the real
backend exists; it serves the real files of ``gridwatch/console/static/``. Screenshots of each step land in
``var/screenshots/<test name>/``.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from tests.support.browser import BrowserContextFactory, Screenshots
from tests.support.console_pages import RECORD_ALERT_ARRIVALS, RECORD_CSP_VIOLATIONS, ConsolePage
from tests.support.console_standin import ConsoleStandIn, StandInUser, make_alert
from tests.support.paths import TESTDATA

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPERATOR = StandInUser("olga", "operator-pass-1", "operator", grids=["grid-a"], staff_id="staff-olga")
REGISTRAR = StandInUser("rita", "registrar-pass-1", "registrar", registries=["watchlist"])
FACE = TESTDATA / "faces" / "obama" / "obama-240p.jpg"
FRAME = TESTDATA / "faces" / "group" / "test_obama_and_biden.jpg"


@dataclass
class Console:
    standin: ConsoleStandIn
    url: str

    def tab(self, page: Page) -> ConsolePage:
        return ConsolePage(page, self.url)


@pytest_asyncio.fixture(loop_scope="session")
async def console() -> AsyncIterator[Console]:
    standin = ConsoleStandIn(
        [OPERATOR, REGISTRAR],
        registries=[
            {"name": "watchlist", "purpose": "missing persons", "persons": 12, "expiring_30d": 1, "evidence": True}
        ],
    )
    async with standin.serve() as url:
        yield Console(standin, url)


async def sign_in(page: Page, console: Console, user: StandInUser) -> ConsolePage:
    tab = console.tab(page)
    await tab.open()
    await tab.sign_in(user.name, user.password)
    return tab


async def test_live_alert_open_and_acknowledge(
    browser_contexts: BrowserContextFactory, console: Console, screenshots: Screenshots
) -> None:
    # The browser runs in UTC; the page must show the site's zone (Asia/Shanghai, from /api/me).
    context = await browser_contexts(timezone_id="UTC")
    await context.add_init_script(RECORD_CSP_VIOLATIONS)
    page = await context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    tab = console.tab(page)
    console.standin.add_alert(make_alert("a-older", created_at="2026-12-02T03:00:00.000Z", state="acknowledged"))

    await tab.open()
    await expect(page.get_by_test_id("signin-form")).to_be_visible()
    await screenshots.take(page, "sign-in")
    await tab.sign_in(OPERATOR.name, OPERATOR.password)
    await expect(tab.alert_row("a-older")).to_be_visible()
    await tab.wait_ready()
    await screenshots.take(page, "signed-in")

    # A marker that a reload would wipe: the new alert must arrive without one.
    await page.evaluate("window.__noReload = true")
    console.standin.push_alert(
        make_alert("a-live", created_at="2026-12-02T04:05:06.000Z", severity="critical", has_evidence=True),
        evidence={"face": FACE, "frame": FRAME},  # no reference photo kept: its image answers 404
    )
    row = tab.alert_row("a-live")
    await expect(row).to_be_visible()
    await expect(tab.alert_rows.first).to_have_attribute("data-alert-id", "a-live")  # newest first
    await expect(row).to_have_attribute("data-severity", "critical")
    await expect(row.get_by_test_id("alert-time")).to_contain_text("12:05:06")
    assert await page.evaluate("window.__noReload") is True
    await screenshots.take(page, "live-alert-in-queue")

    detail = await tab.open_alert("a-live")
    await expect(detail.get_by_test_id("alert-score")).to_have_text("0.712")
    await expect(detail.get_by_test_id("alert-threshold")).to_have_text("0.450")
    await expect(detail.get_by_test_id("alert-explanation")).to_contain_text("matched watchlist person p-0001")
    await expect(detail.get_by_test_id("evidence-face")).to_be_visible()
    await expect(detail.get_by_test_id("evidence-frame")).to_be_visible()
    face_width = await detail.get_by_test_id("evidence-face").locator("img").evaluate("img => img.naturalWidth")
    assert face_width > 0
    await expect(detail.get_by_test_id("evidence-reference")).to_be_hidden()
    await expect(detail.get_by_test_id("timeline-empty")).to_be_visible()
    await screenshots.take(page, "alert-detail")

    await tab.act("ack", comment="on my way to the east gate")
    entry = tab.timeline_entry("acknowledged")
    await expect(entry).to_be_visible()
    await expect(entry).to_contain_text("olga")
    await expect(entry.get_by_test_id("timeline-comment")).to_have_text("on my way to the east gate")
    await expect(detail.get_by_test_id("alert-state")).to_have_text("acknowledged")
    await expect(detail.get_by_test_id("action-ack")).to_be_disabled()
    await screenshots.take(page, "acknowledged")

    await tab.act("resolve", outcome="false_match")
    await expect(tab.timeline_entry("resolved")).to_contain_text("false match")
    await screenshots.take(page, "resolved")

    await detail.get_by_test_id("alert-back").click()
    await expect(row).to_have_attribute("data-state", "resolved")
    assert await page.evaluate("window.__noReload") is True
    # Works offline under a strict policy: nothing asked of another origin, nothing blocked.
    assert requested
    assert [url for url in requested if not url.startswith(console.url + "/")] == []
    assert await tab.csp_violations() == []
    # The detail was drawn again after each step; its evidence was fetched (and audited) once.
    assert sum("/api/alerts/a-live/evidence?part=face" in url for url in requested) == 1


async def test_state_changing_requests_carry_the_csrf_token(
    page: Page, console: Console, screenshots: Screenshots
) -> None:
    console.standin.add_alert(make_alert("a-csrf"))
    await sign_in(page, console, OPERATOR)

    # The stand-in refuses a POST without the header, as the contract says ...
    status = await page.evaluate(
        """() => fetch('/api/alerts/a-csrf/ack', {method: 'POST', credentials: 'same-origin',
             headers: {'Content-Type': 'application/json'}, body: '{}'}).then(r => r.status)"""
    )
    assert status == 403
    # ... and the page's own POST carries it and succeeds.
    await page.goto(console.url + "/#/alerts/a-csrf")
    await page.get_by_test_id("action-ack").click()
    await expect(page.locator("[data-testid=timeline-entry][data-type=acknowledged]")).to_be_visible()
    await screenshots.take(page, "acknowledged-with-csrf")

    posts = [request for request in console.standin.recorded if request.path == "/api/alerts/a-csrf/ack"]
    assert [(request.csrf_header is None, request.status) for request in posts] == [(True, 403), (False, 200)]
    assert posts[1].csrf_header in console.standin.csrf_of(OPERATOR.name)


async def test_language_switch_changes_the_labels(
    browser_contexts: BrowserContextFactory, console: Console, screenshots: Screenshots
) -> None:
    page = await (await browser_contexts(locale="zh-CN")).new_page()
    console.standin.add_alert(make_alert("a-lang", state="notified"))

    await page.goto(console.url + "/")
    await expect(page.get_by_test_id("signin-submit")).to_have_text("登录")
    await sign_in(page, console, OPERATOR)
    await expect(page.get_by_test_id("nav-alerts")).to_have_text("告警")
    await expect(console.tab(page).alert_row("a-lang").get_by_test_id("alert-state")).to_have_text("已通知")
    await screenshots.take(page, "chinese")
    detail = await console.tab(page).open_alert("a-lang")
    await expect(detail.get_by_test_id("action-ack")).to_have_text("签收")
    await screenshots.take(page, "chinese-detail")

    await page.get_by_test_id("language").select_option("en")
    await expect(page.get_by_test_id("nav-alerts")).to_have_text("Alerts")
    await expect(detail.get_by_test_id("action-ack")).to_have_text("Acknowledge")
    await screenshots.take(page, "english-detail")
    await page.get_by_test_id("alert-back").click()
    await expect(console.tab(page).alert_row("a-lang").get_by_test_id("alert-state")).to_have_text("notified")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await screenshots.take(page, "english")

    # The choice is remembered over a reload (the session cookie keeps the user signed in).
    await page.reload()
    await expect(page.get_by_test_id("nav-alerts")).to_have_text("Alerts")


async def test_server_strings_are_shown_as_text_never_as_html(
    page: Page, console: Console, screenshots: Screenshots
) -> None:
    hostile = '<img src=x onerror="window.__injected=1">'
    console.standin.add_alert(make_alert("a-html", rule=hostile, explanation=hostile, person_id=hostile))
    await sign_in(page, console, OPERATOR)
    await expect(console.tab(page).alert_row("a-html").get_by_test_id("alert-rule")).to_have_text(hostile)
    await page.goto(console.url + "/#/alerts/a-html")
    await expect(page.get_by_test_id("alert-explanation")).to_have_text(hostile)
    await screenshots.take(page, "escaped")
    assert await page.evaluate("window.__injected === undefined")
    assert await page.locator("main img[src=x]").count() == 0


async def test_wrong_password_is_refused_and_views_follow_the_role(
    page: Page, console: Console, screenshots: Screenshots
) -> None:
    await page.goto(console.url + "/")
    await page.get_by_test_id("signin-username").fill(OPERATOR.name)
    await page.get_by_test_id("signin-password").fill("wrong")
    await page.get_by_test_id("signin-submit").click()
    await expect(page.get_by_test_id("signin-error")).to_have_text("Invalid user name or password.")
    await screenshots.take(page, "refused")

    await sign_in(page, console, OPERATOR)
    await expect(page.get_by_test_id("nav-alerts")).to_be_visible()
    for hidden in ("nav-registries", "nav-audit", "nav-users", "nav-status"):
        await expect(page.get_by_test_id(hidden)).to_be_hidden()
    await page.get_by_test_id("signout").click()
    await expect(page.get_by_test_id("signin-form")).to_be_visible()

    # Signed in on the operator's address (#/alerts): the registrar lands on a view of theirs.
    await sign_in(page, console, REGISTRAR)
    await expect(page.get_by_test_id("nav-registries")).to_be_visible()
    await expect(page.get_by_test_id("registries-table")).to_be_visible()
    for hidden in ("nav-alerts", "nav-sources", "nav-audit", "nav-users"):
        await expect(page.get_by_test_id(hidden)).to_be_hidden()
    await expect(page.get_by_test_id("live-state")).to_be_hidden()
    await screenshots.take(page, "registrar")


async def test_bulk_import_progress_reaches_100_and_lists_refusals(
    page: Page, console: Console, screenshots: Screenshots, tmp_path: Path
) -> None:
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for photo in sorted((TESTDATA / "faces" / "obama").glob("*.jpg"))[:4]:
            zipped.write(photo, f"obama/{photo.name}")
        zipped.writestr("notes/readme.txt", "not a photo")

    await sign_in(page, console, REGISTRAR)
    await expect(page.get_by_test_id("registries-table")).to_contain_text("watchlist")
    await screenshots.take(page, "registries")
    await page.get_by_test_id("registry-import").click()
    await page.get_by_test_id("import-file").set_input_files(str(archive))
    await page.get_by_test_id("import-submit").click()
    await expect(page.get_by_test_id("import-progress")).to_be_visible()
    await screenshots.take(page, "import-running")

    await expect(page.get_by_test_id("import-progress")).to_have_attribute("data-state", "done")
    await expect(page.get_by_test_id("import-percent")).to_have_text("100%")
    await expect(page.get_by_test_id("import-progress")).to_have_attribute("value", "100")
    refusal = page.get_by_test_id("import-refusals").get_by_test_id("refusal")
    await expect(refusal).to_have_count(1)
    await expect(refusal).to_have_attribute("data-photo", "notes/readme.txt")
    await expect(page.get_by_test_id("import-summary")).to_contain_text("4 enrolled")
    await screenshots.take(page, "import-done")


async def test_a_dropped_feed_reconnects_and_catches_up(page: Page, console: Console, screenshots: Screenshots) -> None:
    await sign_in(page, console, OPERATOR)
    live = page.get_by_test_id("live-state")
    await expect(live).to_have_attribute("data-state", "on")

    # The feed drops; an alert is raised before it is back (so it is never sent on the feed) ...
    console.standin.drop_feeds()
    console.standin.add_alert(make_alert("a-missed", severity="critical"))
    # ... the page reconnects by itself and fetches the list again.
    await expect(console.tab(page).alert_row("a-missed")).to_be_visible()
    await expect(live).to_have_attribute("data-state", "on")
    # And the new feed carries the next alert.
    console.standin.push_alert(make_alert("a-after"))
    await expect(console.tab(page).alert_row("a-after")).to_be_visible()
    await screenshots.take(page, "caught-up")


# A stand-in for WebAudio that counts the tones the page plays (headless Chromium has no audio device).
COUNT_BEEPS = """
window.__tones = 0;
window.AudioContext = class {
  constructor() { this.currentTime = 0; this.destination = {}; }
  resume() { return Promise.resolve(); }
  createGain() { return { gain: { setValueAtTime() {}, exponentialRampToValueAtTime() {} }, connect: (n) => n }; }
  createOscillator() {
    return { frequency: {}, connect: (n) => n, start() { window.__tones += 1; }, stop() {} };
  }
};
"""


async def test_sound_option_beeps_for_critical_alerts_only(
    browser_contexts: BrowserContextFactory, console: Console
) -> None:
    context = await browser_contexts()
    await context.add_init_script(COUNT_BEEPS)
    page = await context.new_page()
    await sign_in(page, console, OPERATOR)
    await console.tab(page).wait_ready()

    console.standin.push_alert(make_alert("a-silent", severity="critical"))
    await expect(console.tab(page).alert_row("a-silent")).to_be_visible()
    assert await page.evaluate("window.__tones") == 0  # the option is off by default

    await page.get_by_test_id("sound-toggle").check()
    console.standin.push_alert(make_alert("a-warning", severity="warning"))
    console.standin.push_alert(make_alert("a-critical", severity="critical"))
    await expect(console.tab(page).alert_row("a-critical")).to_be_visible()
    await expect(console.tab(page).alert_row("a-warning")).to_be_visible()
    assert await page.evaluate("window.__tones") == 2  # one double beep, for the critical alert only


async def test_admin_and_auditor_views(page: Page, console: Console, screenshots: Screenshots) -> None:
    console.standin.canned.update(
        {
            "/api/sources": {
                "cameras": [
                    {
                        "id": "cam-gate-east",
                        "name": "East gate",
                        "grid": "grid-a",
                        "state": "ok",
                        "fps": 12.5,
                        "last_frame_at": "2026-12-02T04:05:06Z",
                        "errors": 0,
                    }
                ],
                "gates": [
                    {
                        "id": "gate-1",
                        "name": "North turnstile",
                        "grid": "grid-a",
                        "kind": "push",
                        "state": "down",
                        "last_event_at": None,
                        "events": 0,
                        "rejected": 3,
                    }
                ],
            },
            "/api/duty": {
                "grids": [
                    {"id": "grid-a", "name": "Grid A", "parent": None, "on_duty": [{"id": "s1", "name": "Zhang"}]}
                ]
            },
            "/api/status": {"status": "ok", "cameras": 1},
            "/api/users": {
                "users": [
                    {"name": "olga", "role": "operator", "grids": ["grid-a"], "registries": [], "disabled": False}
                ]
            },
            "/api/audit": {
                "records": [
                    {
                        "seq": 7,
                        "at": "2026-12-02T04:05:06Z",
                        "action": "alert.ack",
                        "actor": "olga",
                        "target": "a-1",
                        "details": {"comment": "<b>x</b>"},
                    }
                ]
            },
        }
    )
    admin = StandInUser("ada", "admin-pass-1", "admin")
    auditor = StandInUser("aud", "auditor-pass-1", "auditor")
    console.standin.users.update({admin.name: admin, auditor.name: auditor})

    await sign_in(page, console, admin)
    for shown in ("nav-sources", "nav-duty", "nav-status", "nav-registries", "nav-users"):
        await expect(page.get_by_test_id(shown)).to_be_visible()
    for hidden in ("nav-alerts", "nav-audit"):
        await expect(page.get_by_test_id(hidden)).to_be_hidden()
    await expect(page.get_by_test_id("cameras")).to_contain_text("East gate")
    await expect(page.get_by_test_id("gates")).to_contain_text("North turnstile")
    await screenshots.take(page, "sources")
    await page.get_by_test_id("nav-duty").click()
    await expect(page.get_by_test_id("duty-table")).to_contain_text("Zhang")
    await page.get_by_test_id("nav-status").click()
    await expect(page.get_by_test_id("status-json")).to_contain_text('"cameras": 1')
    await page.get_by_test_id("nav-users").click()
    await expect(page.get_by_test_id("users-table")).to_contain_text("olga")
    await screenshots.take(page, "users")
    # A view the role may not see, typed into the address bar: refused in words, not fetched.
    await page.goto(console.url + "/#/audit")
    await expect(page.get_by_test_id("audit")).to_contain_text("Your role may not see this.")
    await page.get_by_test_id("signout").click()

    await sign_in(page, console, auditor)
    await expect(page.get_by_test_id("audit-table")).to_contain_text("alert.ack")
    await expect(page.get_by_test_id("audit-table")).to_contain_text('{"comment":"<b>x</b>"}')
    await screenshots.take(page, "audit")


async def test_registrar_enrols_and_removes_a_person(
    page: Page, console: Console, screenshots: Screenshots, tmp_path: Path
) -> None:
    not_a_photo = tmp_path / "notes.txt"
    not_a_photo.write_text("not a photo")
    await sign_in(page, console, REGISTRAR)
    await page.get_by_test_id("registry-persons").click()
    form = page.get_by_test_id("enrol-form")

    await form.locator("input[name=name]").fill("Barack")
    await form.locator("input[name=photos]").set_input_files(str(not_a_photo))
    await form.get_by_test_id("enrol-submit").click()
    await expect(page.get_by_test_id("enrol-refusals").get_by_test_id("refusal")).to_have_attribute(
        "data-photo", "notes.txt"
    )
    await screenshots.take(page, "refused")

    await form.locator("input[name=photos]").set_input_files(str(FACE))
    await form.get_by_test_id("enrol-submit").click()
    await expect(page.get_by_test_id("persons-table")).to_contain_text("Barack")
    await screenshots.take(page, "enrolled")

    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_test_id("person-remove").click()
    await expect(page.get_by_test_id("persons")).to_contain_text("No persons.")
    assert console.standin.persons["watchlist"] == []


async def test_an_ended_session_returns_to_the_sign_in_form(
    page: Page, console: Console, screenshots: Screenshots
) -> None:
    tab = await sign_in(page, console, OPERATOR)
    await tab.wait_ready()
    console.standin.end_sessions()
    await page.get_by_test_id("queue-refresh").click()
    await expect(page.get_by_test_id("signin-error")).to_have_text("Your session has ended; please sign in again.")
    await expect(page.get_by_test_id("nav")).to_be_hidden()
    await screenshots.take(page, "session-ended")
    await tab.sign_in(OPERATOR.name, OPERATOR.password)
    await tab.wait_ready()


async def test_the_page_records_when_each_alert_arrived(
    browser_contexts: BrowserContextFactory, console: Console
) -> None:
    """The end point of the frame → console latency benchmark: the browser notes when each row first appears."""
    context = await browser_contexts()
    await context.add_init_script(RECORD_ALERT_ARRIVALS)
    tab = console.tab(await context.new_page())
    console.standin.add_alert(make_alert("a-listed"))
    await tab.open()
    await tab.sign_in(OPERATOR.name, OPERATOR.password)
    await tab.wait_ready()

    pushed_ms = time.time() * 1000
    console.standin.push_alert(make_alert("a-timed"))
    await expect(tab.alert_row("a-timed")).to_be_visible()
    arrived_ms = await tab.alert_arrival_ms("a-timed")
    assert arrived_ms is not None
    assert arrived_ms >= pushed_ms - 1  # same clock; Date.now() has millisecond resolution
    assert await tab.alert_arrival_ms("a-listed") is not None
    assert await tab.alert_arrival_ms("a-unknown") is None


async def test_an_alert_streamed_while_the_list_loads_is_kept(page: Page, console: Console) -> None:
    # The list is read before the alert is raised but reaches the page after the feed brought it.
    release = console.standin.hold_alert_lists()
    console.standin.add_alert(make_alert("a-listed", created_at="2026-12-02T03:00:00.000Z"))
    tab = await sign_in(page, console, OPERATOR)
    await tab.wait_live()
    console.standin.push_alert(make_alert("a-streamed"))
    await expect(tab.alert_row("a-streamed")).to_be_visible()

    release.set()
    await tab.wait_queue_loaded()
    await expect(tab.alert_row("a-listed")).to_be_visible()
    await expect(tab.alert_row("a-streamed")).to_be_visible()
    await expect(tab.alert_rows.first).to_have_attribute("data-alert-id", "a-streamed")
