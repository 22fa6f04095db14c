"""The scoreboard page in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.conftest import Services

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium; fails (never skips) when it is not installed."""
    assert os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} not found: apt-get install chromium (or set CHROMIUM)"
    )
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        await b.close()


async def test_the_scores_page_updates_live_without_a_reload(
    services: Services, browser: Browser
) -> None:
    await services.scoreboard()
    url = await services.game()
    page = await browser.new_page(viewport={"width": 420, "height": 900})  # a phone
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(url + "/scores")
    await page.wait_for_selector("#status.live")
    await expect(page.locator("#games")).to_have_text("0")
    await page.evaluate("window.notReloaded = true")
    async with aiohttp.ClientSession() as http:
        for _ in range(5):
            async with http.get(url + "/") as r:
                assert r.status == 200
    await expect(page.locator("#games")).to_have_text("5", timeout=10_000)
    assert await page.evaluate("window.notReloaded") is True
    shown = [int(await page.inner_text(sel)) for sel in ("#wins-ping", "#wins-pong", "#draws")]
    assert sum(shown) == 5
    assert await page.locator("#last-games tbody tr").count() == 5
    feed = await page.inner_text("#feed")
    assert "The winner is" in feed or "DRAW" in feed
    assert "PING --> " in feed
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "scores.png"), full_page=True)
    assert not errors


async def test_the_page_uses_no_external_assets(services: Services, browser: Browser) -> None:
    url = await services.proxy()
    page = await browser.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    await page.goto(url + "/scores")
    await page.wait_for_load_state("domcontentloaded")
    assert requested
    assert all(r.startswith(url) for r in requested), requested
