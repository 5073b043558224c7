"""The browser harness itself: Debian's Chromium starts, renders a page and leaves a screenshot."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from tests.support.browser import Screenshots

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_chromium_renders_a_page_and_keeps_a_screenshot(page: Page, screenshots: Screenshots) -> None:
    await page.set_content("<h1 data-testid='title'>gridwatch</h1>")

    assert await page.get_by_test_id("title").text_content() == "gridwatch"
    shot = await screenshots.take(page, "rendered")
    assert shot.name == "01-rendered.png"
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert shot.parent.name == "test_chromium_renders_a_page_and_keeps_a_screenshot"
