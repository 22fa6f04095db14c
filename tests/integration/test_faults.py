"""Faults and load against real nats-server processes and services as child processes.

Each scenario prints its figures (docs/RELIABILITY.md quotes them). Run with
``make test-slow`` (``pytest -m slow -s``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from nats.aio.client import Client

from pingpong import subjects
from pingpong.messages import Scores
from tests.conftest import wait_for
from tests.load import Load
from tests.natsserver import NatsServer, cluster_of
from tests.processes import ProcessStack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
async def stack(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[ProcessStack]:
    s = ProcessStack(nats_server.url, tmp_path / "stack.log")
    yield s
    await s.close()


async def status_of(http: aiohttp.ClientSession, url: str) -> tuple[int, float]:
    t0 = time.monotonic()
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=30)) as r:
            await r.read()
            return r.status, time.monotonic() - t0
    except aiohttp.ClientError:
        return 0, time.monotonic() - t0


async def healthy(url: str) -> None:
    async with aiohttp.ClientSession() as http:

        async def ok() -> bool:
            return (await status_of(http, url + "/"))[0] == 200

        await wait_for(ok, timeout=30, interval=0.1)


async def stored(nc: Client, kind: subjects.EventKind) -> int:
    """Events of ``kind`` in the RALLY stream."""
    info = await nc.jetstream().stream_info(subjects.STREAM, subjects_filter=f"rally.*.{kind}")
    return sum((info.state.subjects or {}).values())  # state.messages counts the whole stream


async def settled_scores(url: str, games: int) -> Scores:
    async with aiohttp.ClientSession() as http:
        last = Scores()

        async def caught_up() -> bool:
            nonlocal last
            async with http.get(url + "/scores.json") as r:
                last = Scores.model_validate_json(await r.read())
            return last.games + last.aborted >= games

        await wait_for(caught_up, timeout=60, interval=0.25)
        await asyncio.sleep(1)
        async with http.get(url + "/scores.json") as r:
            return Scores.model_validate_json(await r.read())


def report(name: str, **figures: object) -> None:
    print(f"\n[{name}] " + "  ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


async def test_soak_10000_games_at_64_concurrent_lose_nothing(
    stack: ProcessStack, nc: Client
) -> None:
    await stack.game()
    await healthy(stack.url)  # plays the first games
    logged_before = await stored(nc, "finished")
    counted_before = (await settled_scores(stack.url, logged_before)).games
    before = stack.rss()
    t0 = time.monotonic()
    load = await Load(stack.url, concurrency=64, games=10_000, seconds=600).run()
    elapsed = time.monotonic() - t0
    after = stack.rss()
    scores = await settled_scores(stack.url, counted_before + load.ok)
    report(
        "soak",
        games=load.done,
        ok=load.ok,
        seconds=f"{elapsed:.1f}",
        games_per_s=f"{load.done / elapsed:.0f}",
        slowest_s=f"{load.slowest:.2f}",
    )
    for name in before:
        report(
            "soak rss", process=name, before_mb=f"{before[name]:.1f}", after_mb=f"{after[name]:.1f}"
        )
    assert load.failures == []
    assert load.ok == 10_000
    assert await stored(nc, "finished") - logged_before == 10_000
    assert await stored(nc, "aborted") == 0
    assert scores.games - counted_before == 10_000
    assert len(set(load.game_ids)) == 10_000
    for name in before:
        assert after[name] < 120, f"{name} uses {after[name]:.0f} MiB"
        assert after[name] - before[name] < 50, f"{name} grew {after[name] - before[name]:.0f} MiB"


async def test_killing_a_random_player_every_2s_for_60s_fails_no_game(stack: ProcessStack) -> None:
    await stack.game(scoreboard=False)
    await healthy(stack.url)
    load = Load(stack.url, concurrency=8, seconds=62)
    running = asyncio.ensure_future(load.run())
    rng = random.Random(5)
    kills = 0
    end = time.monotonic() + 60
    while time.monotonic() < end:
        await asyncio.sleep(2)
        stack.kill9(rng.choice([f"{side}-{n}" for side in ("ping", "pong") for n in (1, 2)]))
        kills += 1
    await running
    report(
        "kill players", kills=kills, games=load.done, ok=load.ok, slowest_s=f"{load.slowest:.2f}"
    )
    assert load.ok > 100
    assert load.failures == []


async def test_killing_a_manager_mid_game_leaves_no_request_unanswered(stack: ProcessStack) -> None:
    await stack.game(scoreboard=False)
    await healthy(stack.url)
    load = Load(stack.url, concurrency=32, seconds=12)
    running = asyncio.ensure_future(load.run())
    await asyncio.sleep(3)
    stack.kill9("manager-1")
    await running
    report("kill manager", games=load.done, ok=load.ok, slowest_s=f"{load.slowest:.2f}")
    assert load.failures == []  # every in-flight game was played again on manager-2
    assert load.slowest < 6


async def test_nats_down_for_5s_gives_fast_503s_then_full_service(
    stack: ProcessStack, nats_server: NatsServer
) -> None:
    await stack.game()
    await healthy(stack.url)
    load = Load(stack.url, concurrency=8, seconds=30)
    running = asyncio.ensure_future(load.run())
    await asyncio.sleep(2)
    await nats_server.stop()
    down_at = time.monotonic()
    probes: list[tuple[int, float]] = []
    async with aiohttp.ClientSession() as http:
        while time.monotonic() - down_at < 5:
            probes.append(await status_of(http, stack.url + "/"))
            await asyncio.sleep(0.2)
        await nats_server.start()
        back_at = time.monotonic()

        async def served() -> bool:
            return (await status_of(http, stack.url + "/"))[0] == 200

        await wait_for(served, timeout=10, interval=0.05)
        recovered = time.monotonic() - back_at
        failures_then = len(load.failures)
        await asyncio.sleep(3)
        probe_after = [await status_of(http, stack.url + "/") for _ in range(20)]
    load.stop.set()
    await running
    report(
        "nats down",
        probes=len(probes),
        slowest_probe_s=f"{max(p[1] for p in probes):.3f}",
        recovered_s=f"{recovered:.2f}",
        games=load.done,
        ok=load.ok,
        failed_while_down=failures_then,
    )
    assert {p[0] for p in probes} == {503}
    assert max(p[1] for p in probes) < 1.0
    assert recovered < 3.0
    assert all(p[0] == 200 for p in probe_after)
    assert len(load.failures) == failures_then  # none after the recovery
    assert all(stack.alive().values())
    assert all(not c.exits for c in stack.children.values()), "a service exited"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[list[NatsServer]]:
    servers = cluster_of([tmp_path / f"js{n}" for n in range(3)])
    await asyncio.gather(*(s.start() for s in servers))
    yield servers
    for s in servers:
        await s.close()


async def test_a_3_server_cluster_losing_one_server_fails_no_game_and_loses_no_event(
    cluster: list[NatsServer], tmp_path: Path
) -> None:
    urls = ",".join(s.url for s in cluster)
    stack = ProcessStack(urls, tmp_path / "stack.log")
    try:
        await stack.game(STREAM_REPLICAS="3")
        await healthy(stack.url)
        load = Load(stack.url, concurrency=16, seconds=20)
        running = asyncio.ensure_future(load.run())
        await asyncio.sleep(5)
        await cluster[0].kill()
        await running
        report("cluster", games=load.done, ok=load.ok, slowest_s=f"{load.slowest:.2f}")
        assert load.ok > 100
        assert load.failures == []
        nc = Client()
        await nc.connect([s.url for s in cluster[1:]])
        try:
            await asyncio.sleep(1)  # the last acks
            finished = await stored(nc, "finished")
        finally:
            await nc.close()
        scores = await settled_scores(stack.url, finished)
        report("cluster log", finished_stored=finished, scores_games=scores.games)
        assert finished >= load.ok  # every game answered 200 is in the log
        assert scores.games == finished
    finally:
        await stack.close()
