"""The scoreboard page in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import asyncio
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
    fetches: list[str] = []
    page.on("request", lambda r: fetches.append(r.url) if "/scores.json" in r.url else None)
    await page.goto(url + "/scores")
    await page.wait_for_selector("#status.live")
    await expect(page.locator("#games")).to_have_text("0")
    await page.evaluate("window.notReloaded = true")
    fetched_at_open = len(fetches)
    async with aiohttp.ClientSession() as http:
        for _ in range(5):
            async with http.get(url + "/") as r:
                assert r.status == 200
    await expect(page.locator("#games")).to_have_text("5", timeout=10_000)
    assert await page.evaluate("window.notReloaded") is True
    assert len(fetches) == fetched_at_open  # the scores came with the live feed, not fetched
    assert await page.locator("#sampling").is_hidden()  # every game shown at this rate
    shown = [int(await page.inner_text(sel)) for sel in ("#wins-ping", "#wins-pong", "#draws")]
    assert sum(shown) == 5
    assert await page.locator("#last-games tbody tr").count() == 5
    feed = await page.inner_text("#feed")
    assert "The winner is" in feed or "DRAW" in feed
    assert "PING --> " in feed
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "scores.png"), full_page=True)
    assert not errors


async def test_the_page_says_it_samples_when_a_burst_of_games_is_too_many_to_show(
    services: Services, browser: Browser
) -> None:
    await services.scoreboard()
    url = await services.game(feed_rate=4)  # a few events a second: one game in several
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(url + "/scores")
    await page.wait_for_selector("#status.live")
    async with aiohttp.ClientSession() as http:

        async def play(n: int) -> None:
            for _ in range(n):
                async with http.get(url + "/") as r:
                    assert r.status == 200

        await asyncio.gather(*(play(25) for _ in range(8)))  # 200 games in a burst
    sampling = page.locator("#sampling")
    await expect(sampling).to_be_visible(timeout=5_000)
    await expect(sampling).to_contain_text("showing 1 in")
    await expect(sampling).to_contain_text("skipped in the last")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "scores-sampling.png"))
    await expect(page.locator("#games")).to_have_text("200", timeout=10_000)
    feed = await page.inner_text("#feed")
    assert "The winner is" in feed or "DRAW" in feed  # the games it shows, whole
    await expect(sampling).to_be_hidden(timeout=5_000)  # the burst is over: every game again
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
