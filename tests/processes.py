"""The services as real child processes (as ``pingpong up`` runs them), for fault tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from pathlib import Path

from bench.process import free_port, rss_mb
from pingpong.supervisor import Child, Supervisor

GO: bool = bool(os.environ.get("CI") or shutil.which("go"))
"""The Go original can be built: CI always has Go (``make go`` installs it)."""


class ProcessStack:
    """Players, managers, scoreboard and proxy as child processes, restarted when they die."""

    def __init__(self, nats_url: str, log: Path, restart_delay: float = 0.5) -> None:
        self.nats_url = nats_url
        self._log = log.open("w")
        self.sup = Supervisor(out=self._log, max_restarts=10_000, restart_delay=restart_delay)
        self.children: dict[str, Child] = {}
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def add(self, name: str, *args: str, **env: str) -> Child:
        child = Child(
            name,
            [sys.executable, "-m", "pingpong", *args],
            {
                **os.environ,
                "NATS_URL": self.nats_url,
                "INSTANCE_ID": f"{name}@test",
                "PYTHONUNBUFFERED": "1",
                **env,
            },
            ready_line=" serving " if args[0] != "proxy" else "listening on",
        )
        self.children[name] = child
        await self.sup.start(child)
        return child

    async def game(
        self, players: int = 2, managers: int = 2, scoreboard: bool = True, **env: str
    ) -> None:
        """Start a whole stack and wait until every child serves."""
        for n in range(1, players + 1):
            for side in ("ping", "pong"):
                await self.add(f"{side}-{n}", "player", side, **env)
        for n in range(1, managers + 1):
            await self.add(f"manager-{n}", "manager", **env)
        if scoreboard:
            await self.add("scoreboard", "scoreboard", **env)
        await self.add("proxy", "proxy", HTTP_HOST="127.0.0.1", HTTP_PORT=str(self.port), **env)
        await self.ready()

    async def ready(self, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            for child in self.children.values():
                await child.ready.wait()

    def pid(self, name: str) -> int:
        proc = self.children[name].proc
        assert proc is not None
        return proc.pid

    def kill9(self, name: str) -> None:
        """SIGKILL, as a crash; the supervisor restarts it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid(name), signal.SIGKILL)

    def alive(self) -> dict[str, bool]:
        return {
            n: c.proc is not None and c.proc.returncode is None for n, c in self.children.items()
        }

    def rss(self) -> dict[str, float]:
        return {n: rss_mb(self.pid(n)) for n in self.children}

    async def close(self) -> None:
        await self.sup.stop_all(
            [
                [c for n, c in self.children.items() if n == "proxy"],
                [c for n, c in self.children.items() if n != "proxy"],
            ]
        )
        self._log.close()
