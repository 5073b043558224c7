"""The real-browser harness: Playwright (Python) drives Debian's Chromium, never a downloaded browser.

One Chromium per test session, a fresh browser context (cookies, storage) per test. The fixtures run on
the session's event loop, so a test that uses them is marked ``pytest.mark.asyncio(loop_scope="session")``
and may start its server on that same loop. Screenshots go to ``var/screenshots/<test name>/<step>.png``
(``var/`` is not versioned; CI keeps it as an artefact).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Error, Page, async_playwright

from tests.support.paths import REPO_ROOT

# Debian's package (`make system-test-deps`); GRIDWATCH_CHROMIUM points at another build of the same browser.
CHROMIUM = Path(os.environ.get("GRIDWATCH_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"

# Short enough that a missing element fails a test quickly, long enough for a loaded CI machine.
DEFAULT_TIMEOUT_MS = 7_000

BrowserContextFactory = Callable[..., Awaitable[BrowserContext]]


class Screenshots:
    """Full-page screenshots of one test's steps, numbered in the order taken: ``01-signed-in.png``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[Path] = []

    async def take(self, page: Page, step: str) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", step).strip("-") or "step"
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        self.folder.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


class PageErrors:
    """Uncaught JavaScript errors of the pages a test opened: a page that throws fails its test."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))


def screenshot_folder(test_name: str) -> Path:
    """The folder of one test's screenshots (parametrised names keep their parameters, made path-safe)."""
    return SCREENSHOTS / re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name).strip("-")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, one per session."""
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}; `make system-test-deps` installs Debian's chromium")
    async with async_playwright() as playwright:
        # --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses to start.
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page_errors() -> AsyncIterator[PageErrors]:
    errors = PageErrors()
    yield errors
    assert not errors.errors, f"uncaught JavaScript errors: {errors.errors}"


@pytest_asyncio.fixture(loop_scope="session")
async def browser_contexts(chromium: Browser, page_errors: PageErrors) -> AsyncIterator[BrowserContextFactory]:
    """Open fresh browser contexts (``Browser.new_context`` keyword arguments); all closed after the test.

    Defaults: English locale, the Asia/Shanghai time zone, a 1280×800 window. Every page opened in them is
    watched for uncaught JavaScript errors.
    """
    contexts: list[BrowserContext] = []

    async def open_context(**options: Any) -> BrowserContext:
        settings: dict[str, Any] = {
            "locale": "en-US",
            "timezone_id": "Asia/Shanghai",
            "viewport": {"width": 1280, "height": 800},
            **options,
        }
        context = await chromium.new_context(**settings)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.on("page", page_errors.watch)
        contexts.append(context)
        return context

    try:
        yield open_context
    finally:
        for context in contexts:
            # Error: the browser went away already; the test reports why.
            with contextlib.suppress(Error):
                await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser_context(browser_contexts: BrowserContextFactory) -> BrowserContext:
    """A fresh browser context with the defaults of ``browser_contexts``."""
    return await browser_contexts()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser_context: BrowserContext) -> Page:
    """A new tab in a fresh browser context."""
    return await browser_context.new_page()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Screenshots:
    """This test's screenshots, under ``var/screenshots/<test name>/`` (emptied first: only this run's steps)."""
    folder = screenshot_folder(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    return Screenshots(folder)
