"""A bounded HTTP load: games through the proxy from concurrent workers."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp


async def play(http: aiohttp.ClientSession, url: str, n: int) -> list[str]:
    """Plays ``n`` games one after another; their ids, each answered 200."""
    ids = []
    for _ in range(n):
        async with http.get(url + "/") as r:
            assert r.status == 200, await r.text()
            ids.append(r.headers["X-Game-Id"])
    return ids


@dataclass
class Load:
    """Plays games until ``games`` are done, ``seconds`` have passed or it is stopped."""

    url: str
    concurrency: int = 8
    games: int = 1_000_000
    seconds: float = 60.0
    request_timeout: float = 30.0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    slowest: float = 0.0
    game_ids: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ok(self) -> int:
        return self.statuses[200]

    @property
    def done(self) -> int:
        return sum(self.statuses.values())

    async def run(self) -> Load:
        deadline = time.monotonic() + self.seconds
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:

            async def worker() -> None:
                while not self.stop.is_set() and time.monotonic() < deadline and self._claim():
                    t0 = time.monotonic()
                    try:
                        async with http.get(self.url + "/") as r:
                            body = await r.text()
                            status = r.status
                            if status == 200:
                                self.game_ids.append(r.headers["X-Game-Id"])
                    except (aiohttp.ClientError, TimeoutError) as e:
                        status, body = 0, f"{type(e).__name__}: {e}"
                    self.slowest = max(self.slowest, time.monotonic() - t0)
                    self.statuses[status] += 1
                    if status != 200:
                        self.failures.append(f"{status} {body.strip()[:160]}")
                        await asyncio.sleep(0.05)  # do not spin while the service is down

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        return self

    _claimed: int = 0

    def _claim(self) -> bool:
        if self._claimed >= self.games:
            return False
        self._claimed += 1
        return True
