"""Driving the console's pages in a browser: the steps the page tests share, by the pages' ``data-testid``s.

Independent of the backend behind the pages: the same steps run against the stand-in
(``tests/support/console_standin.py``) and against the real service.
"""

from __future__ import annotations

from playwright.async_api import Locator, Page, expect

# A strict policy that the pages must work under (no inline script or style, nothing from elsewhere); the
# stand-in sends it, and the real listener can send the same.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

# Collects the page's Content-Security-Policy violations (they are console messages, not exceptions).
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (event) => window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`));
"""

# Records, in the page, the wall-clock time (ms since the epoch) at which each alert's row first appeared in
# the queue: the end point of the frame → console latency benchmark, measured by the browser itself.
RECORD_ALERT_ARRIVALS = """
window.__alertArrivals = {};
new MutationObserver((mutations) => {
  const now = Date.now();
  for (const mutation of mutations) {
    for (const node of mutation.addedNodes) {
      if (node.nodeType !== Node.ELEMENT_NODE) continue;
      const rows = node.matches("[data-testid=alert-row]") ? [node] : node.querySelectorAll("[data-testid=alert-row]");
      for (const row of rows) {
        const id = row.dataset.alertId;
        if (id && !(id in window.__alertArrivals)) window.__alertArrivals[id] = now;
      }
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


class ConsolePage:
    """One browser tab on the console at ``base_url`` (``http://host:port``)."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")

    async def open(self, fragment: str = "") -> None:
        await self.page.goto(f"{self.base_url}/{fragment}")

    async def sign_in(self, username: str, password: str) -> None:
        """Sign in from the sign-in form and wait until the page says who is signed in."""
        if not await self.page.get_by_test_id("signin-form").is_visible():
            await self.open()
        await self.page.get_by_test_id("signin-username").fill(username)
        await self.page.get_by_test_id("signin-password").fill(password)
        await self.page.get_by_test_id("signin-submit").click()
        await expect(self.page.get_by_test_id("whoami")).to_contain_text(username)

    async def sign_out(self) -> None:
        await self.page.get_by_test_id("signout").click()
        await expect(self.page.get_by_test_id("signin-form")).to_be_visible()

    async def wait_live(self) -> None:
        """Until the live feed is connected (alerts raised from now on arrive without a reload)."""
        await expect(self.page.get_by_test_id("live-state")).to_have_attribute("data-state", "on")

    async def wait_queue_loaded(self) -> None:
        """Until the alert queue's list has been read (no list request under way)."""
        await expect(self.page.get_by_test_id("alert-queue")).to_have_attribute("aria-busy", "false")

    async def wait_ready(self) -> None:
        """The queue is read and the live feed connected: the state a test acts from."""
        await self.wait_queue_loaded()
        await self.wait_live()

    def alert_row(self, alert_id: str) -> Locator:
        return self.page.locator(f'[data-testid=alert-row][data-alert-id="{alert_id}"]')

    @property
    def alert_rows(self) -> Locator:
        return self.page.get_by_test_id("alert-row")

    @property
    def detail(self) -> Locator:
        return self.page.get_by_test_id("alert-detail")

    async def open_alert(self, alert_id: str) -> Locator:
        """Open an alert from the queue; returns its detail view once its timeline is shown."""
        await self.alert_row(alert_id).get_by_test_id("alert-open").click()
        await expect(self.detail.locator("h2")).to_contain_text(alert_id)
        return self.detail

    async def act(self, action: str, *, comment: str | None = None, outcome: str | None = None) -> None:
        """Press one of the detail's buttons: ack, comment, confirm, escalate, resolve."""
        if comment is not None:
            await self.detail.get_by_test_id("action-comment-text").fill(comment)
        if outcome is not None:
            await self.detail.get_by_test_id("resolve-outcome").select_option(outcome)
        await self.detail.get_by_test_id(f"action-{action}").click()

    def timeline_entry(self, entry_type: str) -> Locator:
        return self.detail.locator(f"[data-testid=timeline-entry][data-type={entry_type}]")

    async def switch_language(self, language: str) -> None:
        await self.page.get_by_test_id("language").select_option(language)

    async def alert_arrival_ms(self, alert_id: str) -> float | None:
        """When the alert's row first appeared (ms since the epoch; needs ``RECORD_ALERT_ARRIVALS``)."""
        value = await self.page.evaluate("(id) => (window.__alertArrivals || {})[id] ?? null", alert_id)
        return None if value is None else float(value)

    async def csp_violations(self) -> list[str]:
        """The CSP violations of this tab so far (needs ``RECORD_CSP_VIOLATIONS`` as an init script)."""
        return list(await self.page.evaluate("window.__cspViolations || []"))
