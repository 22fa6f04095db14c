"""Real nats-server processes on free loopback ports, for the integration tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from nats.js import JetStreamContext

from bench.process import free_port
from pingpong import eventlog
from pingpong.local import find_nats_server
from pingpong.settings import Settings

__all__ = ["NatsServer", "cluster_of", "free_port", "stream_takes_no_rally_events"]


@dataclass
class NatsServer:
    """One nats-server; ``start`` again after ``stop``/``kill`` reuses port and store."""

    store: Path
    jetstream: bool = True
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    name: str = "test"
    monitor_port: int | None = None
    """Where its monitoring endpoint listens (``-m``), if anywhere."""
    proc: asyncio.subprocess.Process | None = None
    log: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 10.0) -> None:
        args = ["-a", "127.0.0.1", "-p", str(self.port), "-n", self.name, *self.extra_args]
        if self.jetstream:
            args += ["-js", "-sd", str(self.store)]
        if self.monitor_port is not None:
            args += ["-m", str(self.monitor_port)]
        self.proc = await asyncio.create_subprocess_exec(
            find_nats_server(),
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        async with asyncio.timeout(timeout):
            async for raw in self.proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                self.log.append(line)
                if "Server is ready" in line:
                    break
            else:
                raise RuntimeError("nats-server exited:\n" + "\n".join(self.log))
        self._drain = asyncio.ensure_future(self._read_rest(self.proc))

    async def _read_rest(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            self.log.append(raw.decode(errors="replace").rstrip())

    async def subscriptions(self) -> int:
        """The server's count of subscriptions, from its monitoring endpoint (``/varz``)."""
        assert self.monitor_port is not None, "started without a monitoring port"
        url = f"http://127.0.0.1:{self.monitor_port}/varz"
        async with aiohttp.ClientSession() as http, http.get(url) as r:
            return int((await r.json())["subscriptions"])

    async def stop(self) -> None:
        """SIGTERM (lame duck off: a plain shutdown) and wait."""
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()

    async def kill(self) -> None:
        """SIGKILL, as a crash."""
        if self.proc and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            await self.kill()


def cluster_of(stores: Sequence[Path], *extra_args: str) -> list[NatsServer]:
    """One server a store, routed to each other as cluster ``pingpong`` (not started)."""
    ports = [free_port() for _ in stores]
    routes = ",".join(f"nats://127.0.0.1:{p}" for p in ports)
    return [
        NatsServer(
            store=store,
            name=f"s{n}",
            extra_args=[
                *extra_args,
                "--cluster_name",
                "pingpong",
                "--cluster",
                f"nats://127.0.0.1:{port}",
                "--routes",
                routes,
            ],
        )
        for n, (store, port) in enumerate(zip(stores, ports, strict=True))
    ]


async def stream_takes_no_rally_events(js: JetStreamContext) -> None:
    """Have ``RALLY`` take other subjects: a stored publish of a rally event meets no
    stream, as while a cluster elects a stream leader, but the stream is there (so no
    one makes it again). ``ensure_stream`` with the settings' config undoes it."""
    config = eventlog.stream_config(Settings())
    config.subjects = ["rally-elsewhere.>"]
    await js.update_stream(config)
