"""``pingpong watch`` prints one readable line per rally event."""

from __future__ import annotations

import asyncio
import io

import aiohttp

from pingpong.watch import watch
from tests.conftest import Services


async def test_watch_prints_every_event_of_a_game_in_order(services: Services) -> None:
    url = await services.game(players=1)
    out = io.StringIO()
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.ensure_future(watch(services.settings, stop, out=out, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    async with aiohttp.ClientSession() as http, http.get(url + "/") as r:
        game_id = r.headers["X-Game-Id"]
        transcript = (await r.text()).splitlines()
    async with asyncio.timeout(5):
        while "finished" not in out.getvalue():
            await asyncio.sleep(0.02)
    stop.set()
    await task
    lines = [line for line in out.getvalue().splitlines() if line.startswith(game_id)]
    assert "started" in lines[0]
    assert "manager-1@test" in lines[0]
    swings = lines[1:-1]
    assert [" ".join(line.split()[2:5]) for line in swings] == transcript[:-1]
    assert all(("ping-1@test" in s) or ("pong-1@test" in s) for s in swings)
    assert "finished" in lines[-1]
