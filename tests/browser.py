"""A real headless Chromium for tests that check what a person sees on a page.

Playwright drives Debian's ``chromium`` (``/usr/bin/chromium``, or ``$CHROMIUM``) through
``executable_path``: no browser is ever downloaded. ``running_chromium()`` is an async context
manager yielding a page factory; the ``browser_pages`` fixture wraps it for one test, and
``screenshot(page, path)`` saves what the page looks like for a person to look at afterwards.

    async def test_page(browser_pages: PageFactory, tmp_path: Path) -> None:
        page = await browser_pages(credentials=("user", "secret"))
        await page.goto(url)
        assert "GREEN" in await page.inner_text("h1")
        await screenshot(page, tmp_path / "green.png")
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

DEFAULT_CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 900}


class PageFactory(Protocol):
    """Opens a fresh page in its own browser context (own cookies, own credentials)."""

    async def __call__(self, *, credentials: tuple[str, str] | None = None) -> Page: ...


def chromium_path() -> Path:
    """Where Chromium is: ``$CHROMIUM`` or Debian's ``/usr/bin/chromium``."""
    path = Path(os.environ.get("CHROMIUM") or DEFAULT_CHROMIUM)
    if not path.exists():
        pytest.fail(
            f"no Chromium at {path}: install Debian's (apt-get install chromium) or set CHROMIUM"
        )
    return path


@asynccontextmanager
async def running_chromium() -> AsyncIterator[PageFactory]:
    """Launch headless Chromium for the block; every page and context is closed after."""
    async with async_playwright() as playwright:
        browser: Browser = await playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        contexts: list[BrowserContext] = []

        async def new_page(*, credentials: tuple[str, str] | None = None) -> Page:
            context = await browser.new_context(
                viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]},
                http_credentials=(
                    {"username": credentials[0], "password": credentials[1]}
                    if credentials
                    else None
                ),
            )
            contexts.append(context)
            return await context.new_page()

        try:
            yield new_page
        finally:
            for context in contexts:
                await context.close()
            await browser.close()


@pytest.fixture
async def browser_pages() -> AsyncIterator[PageFactory]:
    """A headless Chromium for one test, as a page factory."""
    async with running_chromium() as new_page:
        yield new_page


async def screenshot(page: Page, path: Path) -> Path:
    """Save the whole page as PNG at ``path`` and print where, for a person to look at."""
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
