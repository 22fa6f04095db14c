"""The Go original the bench measures plays games as the original did."""

from __future__ import annotations

import asyncio
import io
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import aiohttp
import pytest

from bench import original
from pingpong.supervisor import Supervisor
from tests.processes import GO

pytestmark = pytest.mark.skipif(not GO, reason="no Go toolchain (make go installs it)")

Table = Callable[[int], AbstractAsyncContextManager[str]]


@pytest.fixture(scope="module")
def binary() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="pingpong-original-") as dest:
        built = asyncio.run(original.build(dest))
        assert built is not None, "no go on PATH"
        yield built


@pytest.fixture
def table(binary: str) -> Table:
    @asynccontextmanager
    async def run(hit_chance: int) -> AsyncIterator[str]:
        sup = Supervisor(out=io.StringIO(), max_restarts=1)
        children, url = original.children(binary, hit_chance)
        try:
            for child in children:
                await sup.start(child)
                await asyncio.wait_for(child.ready.wait(), 10)
            yield url
        finally:
            await sup.stop_all([children])

    return run


async def get(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        assert r.status == 200
        return await r.text()


async def test_a_player_that_always_misses_loses_on_the_first_stroke(table: Table) -> None:
    async with table(0) as url:
        assert await get(url) == "PING --> MISS\nThe winner is PONG\n"


async def test_players_that_never_miss_play_99_rounds_to_a_draw(table: Table) -> None:
    async with table(100) as url:
        lines = (await get(url)).splitlines()
    assert lines[:4] == ["PING --> HIT", "PONG --> HIT", "PING --> HIT", "PONG --> HIT"]
    assert len(lines) == 2 * 99 + 1
    assert lines[-1] == "DRAW"


async def test_a_game_ends_at_the_first_miss_with_the_other_side_the_winner(table: Table) -> None:
    async with table(85) as url:
        for _ in range(20):
            *strokes, verdict = (await get(url)).splitlines()
            assert all(line.endswith("--> HIT") for line in strokes[:-1])
            side = strokes[-1].split()[0]
            assert strokes[-1] == f"{side} --> MISS"
            assert verdict == f"The winner is {'PONG' if side == 'PING' else 'PING'}"
