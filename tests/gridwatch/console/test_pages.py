"""The console's pages in a real browser (Debian's Chromium), against the STAND-IN of the console API.

``tests/support/console_standin.py`` implements the contract in memory so the pages are proven before the real
backend exists; it serves the real files of ``gridwatch/console/static/``. Screenshots of each step land in
``var/screenshots/<test name>/``.
"""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from tests.support.browser import BrowserContextFactory, Screenshots
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


async def sign_in(page: Page, console: Console, user: StandInUser) -> None:
    await page.goto(console.url + "/")
    await page.get_by_test_id("signin-username").fill(user.name)
    await page.get_by_test_id("signin-password").fill(user.password)
    await page.get_by_test_id("signin-submit").click()
    await expect(page.get_by_test_id("whoami")).to_contain_text(user.name)


def alert_row(page: Page, alert_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f'[data-testid=alert-row][data-alert-id="{alert_id}"]')


async def test_live_alert_open_and_acknowledge(
    browser_contexts: BrowserContextFactory, console: Console, screenshots: Screenshots
) -> None:
    # The browser runs in UTC; the page must show the site's zone (Asia/Shanghai, from /api/me).
    page = await (await browser_contexts(timezone_id="UTC")).new_page()
    console.standin.add_alert(make_alert("a-older", created_at="2026-12-02T03:00:00.000Z", state="acknowledged"))

    await page.goto(console.url + "/")
    await expect(page.get_by_test_id("signin-form")).to_be_visible()
    await screenshots.take(page, "sign-in")
    await sign_in(page, console, OPERATOR)
    await expect(alert_row(page, "a-older")).to_be_visible()
    await expect(page.get_by_test_id("live-state")).to_have_attribute("data-state", "on")
    await screenshots.take(page, "signed-in")

    # A marker that a reload would wipe: the new alert must arrive without one.
    await page.evaluate("window.__noReload = true")
    console.standin.push_alert(
        make_alert("a-live", created_at="2026-12-02T04:05:06.000Z", severity="critical", has_evidence=True),
        evidence={"face": FACE, "frame": FRAME},  # no reference photo kept: its image answers 404
    )
    await expect(alert_row(page, "a-live")).to_be_visible()
    await expect(page.get_by_test_id("alert-row").first).to_have_attribute("data-alert-id", "a-live")
    await expect(alert_row(page, "a-live")).to_have_attribute("data-severity", "critical")
    await expect(alert_row(page, "a-live").get_by_test_id("alert-time")).to_contain_text("12:05:06")
    assert await page.evaluate("window.__noReload") is True
    await screenshots.take(page, "live-alert-in-queue")

    await alert_row(page, "a-live").get_by_test_id("alert-open").click()
    detail = page.get_by_test_id("alert-detail")
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

    await detail.get_by_test_id("action-comment-text").fill("on my way to the east gate")
    await detail.get_by_test_id("action-ack").click()
    entry = detail.locator("[data-testid=timeline-entry][data-type=acknowledged]")
    await expect(entry).to_be_visible()
    await expect(entry).to_contain_text("olga")
    await expect(entry.get_by_test_id("timeline-comment")).to_have_text("on my way to the east gate")
    await expect(detail.get_by_test_id("alert-state")).to_have_text("acknowledged")
    await expect(detail.get_by_test_id("action-ack")).to_be_disabled()
    await screenshots.take(page, "acknowledged")

    await detail.get_by_test_id("resolve-outcome").select_option("false_match")
    await detail.get_by_test_id("action-resolve").click()
    resolved = detail.locator("[data-testid=timeline-entry][data-type=resolved]")
    await expect(resolved).to_contain_text("false match")
    await screenshots.take(page, "resolved")

    await detail.get_by_test_id("alert-back").click()
    await expect(alert_row(page, "a-live")).to_have_attribute("data-state", "resolved")
    assert await page.evaluate("window.__noReload") is True


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
    await expect(alert_row(page, "a-lang").get_by_test_id("alert-state")).to_have_text("已通知")
    await screenshots.take(page, "chinese")

    await page.get_by_test_id("language").select_option("en")
    await expect(page.get_by_test_id("nav-alerts")).to_have_text("Alerts")
    await expect(alert_row(page, "a-lang").get_by_test_id("alert-state")).to_have_text("notified")
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
    await expect(alert_row(page, "a-html").get_by_test_id("alert-rule")).to_have_text(hostile)
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

    await sign_in(page, console, REGISTRAR)
    await expect(page.get_by_test_id("nav-registries")).to_be_visible()
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
