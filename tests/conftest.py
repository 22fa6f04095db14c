"""Fixtures shared by every test: real nats-server processes and in-process services."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from nats.aio.client import Client

from pingpong.settings import Settings
from pingpong.subjects import SIDES, Side
from tests.natsserver import NatsServer, free_port


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """A real nats-server with JetStream on a free loopback port (and its monitoring
    endpoint on another)."""
    server = NatsServer(store=tmp_path / "js", monitor_port=free_port())
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    """A client connected to ``nats_server``."""
    client = Client()
    await client.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=1)
    yield client
    await client.close()


ServiceFn = Callable[[Settings, asyncio.Event, asyncio.Event], Awaitable[None]]
"""A service: ``serve(settings, stop, ready)``."""


@dataclass
class Running:
    """A service coroutine running as a task until its ``stop`` is set."""

    name: str
    stop: asyncio.Event
    ready: asyncio.Event
    task: asyncio.Task[None]

    async def shutdown(self, timeout: float = 15.0) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, timeout)


@dataclass
class Services:
    """Starts services in this event loop; stops all of them at teardown."""

    settings: Settings
    running: list[Running] = field(default_factory=list)

    async def start(self, name: str, service: ServiceFn, **overrides: object) -> Running:
        """Start ``service`` as instance ``name`` and wait until it serves."""
        settings = self.settings.model_copy(update={"instance_id": name, **overrides})
        stop, ready = asyncio.Event(), asyncio.Event()
        run = Running(name, stop, ready, asyncio.ensure_future(service(settings, stop, ready)))
        self.running.append(run)
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait([waiter, run.task], timeout=10, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if run.task.done():
            run.task.result()  # raise what it died of
        assert ready.is_set(), f"{name} did not become ready"
        return run

    async def player(self, side: Side, n: int = 1, **overrides: object) -> Running:
        from players import serve

        async def run(s: Settings, stop: asyncio.Event, ready: asyncio.Event) -> None:
            await serve(s, side, stop, ready)

        return await self.start(f"{side}-{n}@test", run, **overrides)

    async def manager(self, n: int = 1, **overrides: object) -> Running:
        from manager import serve

        return await self.start(f"manager-{n}@test", serve, **overrides)

    async def scoreboard(self, n: int = 1, **overrides: object) -> Running:
        from scoreboard import serve

        return await self.start(f"scoreboard-{n}@test", serve, **overrides)

    async def proxy(self, **overrides: object) -> str:
        """Start a proxy on a free port; its base URL."""
        from proxy import serve

        port = free_port()
        await self.start("proxy@test", serve, http_host="127.0.0.1", http_port=port, **overrides)
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:

            async def healthy() -> bool:
                async with http.get(f"{url}/healthz") as r:
                    return r.status == 200

            await wait_for(healthy)
        return url

    async def game(self, players: int = 2, managers: int = 1, **overrides: object) -> str:
        """Players for both sides, managers and a proxy; the proxy's base URL."""
        for n in range(1, players + 1):
            for side in SIDES:
                await self.player(side, n, **overrides)
        for n in range(1, managers + 1):
            await self.manager(n, **overrides)
        return await self.proxy(**overrides)

    async def close(self) -> None:
        for run in reversed(self.running):
            run.stop.set()
        for run in reversed(self.running):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run.task, 15)


@pytest.fixture
def settings(nats_server: NatsServer) -> Settings:
    """Settings pointing at ``nats_server``, with short timeouts for tests."""
    return Settings(nats_url=nats_server.url, swing_timeout=0.5, game_timeout=5.0)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    """In-process services; all stopped at the end of the test."""
    svc = Services(settings)
    yield svc
    await svc.close()


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0, interval: float = 0.02
) -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(interval)
