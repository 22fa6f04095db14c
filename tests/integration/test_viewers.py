"""A crowd on the scores page under game load: services as child processes, a real
nats-server with its monitoring endpoint, 1,000 ``/events`` clients in waves.

Prints its figures, as test_faults.py does. Run with ``make test-slow``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bench.viewers import Crowd, raise_nofile
from tests.conftest import wait_for
from tests.integration.test_faults import healthy, report
from tests.load import Load
from tests.natsserver import NatsServer
from tests.processes import ProcessStack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

VIEWERS = 1000
"""``/events`` clients at once at the top of each cycle (``MAX_VIEWERS``' default)."""

WAVE = 250
"""Clients that connect (or leave) together."""

CYCLES = 3
"""Times the crowd comes and goes."""

STUCK = 100
"""Of each cycle's crowd, clients that read nothing once connected."""

RSS_BOUND_MB = 100.0
"""The proxy's RSS may not pass this (its Swarm limit is 128 MB; the bench's target)."""


@pytest.fixture
async def stack(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[ProcessStack]:
    s = ProcessStack(nats_server.url, tmp_path / "stack.log")
    yield s
    await s.close()


async def metrics(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as r:
        text = await r.text()
    return {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("pingpong_") and " " in line
    }


async def test_1000_viewers_coming_and_going_under_load_fail_no_game_and_leave_nothing(
    stack: ProcessStack, nats_server: NatsServer
) -> None:
    raise_nofile(VIEWERS + 1024)  # this process holds the crowd's sockets
    await stack.game()
    await healthy(stack.url)
    # the subscriptions the services make at their first games (each manager's inboxes)
    # and the proxy's reply inbox (its scores ticks' too) are made before the count
    warm = await Load(stack.url, concurrency=16, games=500, seconds=60).run()
    assert warm.failures == []
    async with aiohttp.ClientSession() as http, http.get(stack.url + "/scores.json") as r:
        assert r.status == 200
    before = await nats_server.subscriptions()
    rss_before = stack.rss()["proxy"]
    peak = rss_before
    watching = True

    async def watch_rss() -> None:
        nonlocal peak
        while watching:
            peak = max(peak, stack.rss()["proxy"])
            await asyncio.sleep(0.2)

    watcher = asyncio.ensure_future(watch_rss())
    load = Load(stack.url, concurrency=32, seconds=300)
    running = asyncio.ensure_future(load.run())
    t0 = time.monotonic()
    during: list[int] = []
    opened = refused = lost = 0
    for _ in range(CYCLES):
        crowds: list[Crowd] = []
        for n in range(VIEWERS // WAVE):  # the crowd comes in waves, some of one game
            crowd = Crowd(stack.url)
            if n == 0:
                await crowd.open(STUCK, stuck=True)
                await crowd.open(WAVE - STUCK)
            elif n == 1:
                await crowd.open(WAVE, f"/events?game=g{n}")
            else:
                await crowd.open(WAVE)
            crowds.append(crowd)
            opened += len(crowd.viewers)
            await asyncio.sleep(1)
        during.append(await nats_server.subscriptions())
        await asyncio.sleep(3)  # all of them watch a while
        for crowd in crowds:  # and leave in waves
            refused += crowd.refused + crowd.unopened
            lost += crowd.lost
            crowd.close()
            await asyncio.sleep(0.5)

        async def all_gone() -> bool:
            return (await metrics(stack.url))["pingpong_viewers"] == 0

        await wait_for(all_gone, timeout=10, interval=0.2)
    seconds = time.monotonic() - t0
    load.stop.set()
    await running
    watching = False
    await watcher

    async def unsubscribed() -> bool:
        return await nats_server.subscriptions() == before

    await wait_for(unsubscribed, timeout=10, interval=0.2)
    after = await nats_server.subscriptions()
    figures = await metrics(stack.url)
    report(
        "viewers",
        cycles=CYCLES,
        clients=opened,
        refused=refused,
        dropped_by_proxy=lost,
        games=load.done,
        ok=load.ok,
        games_per_s=f"{load.done / seconds:.0f}",
        slowest_s=f"{load.slowest:.2f}",
        proxy_rss_mb=f"{rss_before:.1f}->{peak:.1f} (peak)",
        subscriptions=f"{before}->{max(during)}->{after}",
        viewers_let_go=int(figures["pingpong_viewers_dropped_total"]),
        events_dropped=int(figures["pingpong_feed_events_dropped_total"]),
        games_skipped=int(figures["pingpong_feed_games_skipped_total"]),
    )
    assert load.failures == []
    assert load.ok > 1000
    assert opened == CYCLES * VIEWERS
    assert refused == 0  # MAX_VIEWERS' default takes them all
    assert peak < RSS_BOUND_MB, f"the proxy's RSS reached {peak:.1f} MB"
    assert during == [before + 1] * CYCLES  # one subscription, however many watch
    assert after == before
    assert figures["pingpong_viewers"] == 0
    assert figures["pingpong_feed_events_dropped_total"] > 0  # the stuck ones skipped
