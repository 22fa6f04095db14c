"""The viewers scenario of ``pingpong bench``: games through :3000 while a crowd holds
``/events`` open (the live feed of the scores page, one stream a browser tab).

Games/s at :data:`CONCURRENCY` concurrent games with no viewer, :data:`VIEWERS` ``[1]``
and ``[2]`` viewers, measured in rounds in the same run (each round every crowd size,
in an order that turns a step each round), the ratio of each to the no-viewer figure
of its round (the median over the rounds), and the proxy's RSS with the largest crowd
open, against the targets.

The viewers live in this process as plain asyncio protocols: a GET, then every byte
is counted and thrown away, so a thousand of them cost this process (which shares the
machine with the game) as little as a reader can. They stand for browsers on other
machines.

Alone, on a stack of its own: ``.venv/bin/python -m bench.viewers [--seconds S]
[--rounds N]``; ``pingpong bench`` runs it after its other measurements.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import statistics
import sys
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, TextIO
from urllib.parse import urlsplit

import aiohttp

from bench.harness import Bench, BenchOptions, Op, Sample, _wait_game, measure, say
from bench.process import rss_mb
from pingpong.runner import tune_gc

VIEWERS: Final = (0, 100, 1000)
"""Crowd sizes: ``/events`` clients open while games are played."""

CONCURRENCY: Final = 64
"""Games in flight at once while a crowd watches."""

MIN_RATIO: Final = 0.8
"""Target: games/s with the largest crowd at least this share of the no-viewer figure."""

MAX_RSS_MB: Final = 100.0
"""Target: the proxy's RSS with the largest crowd open, MB."""

DWELL: Final = 0.6
"""Seconds a crowd stays after its games: the batch of the last of them reaches it (the
proxy sends one every 0.5 s), so the events a viewer got cover every game measured."""

OPEN_AT_ONCE: Final = 100
"""Connections opened at a time (the proxy's listen backlog is 1,024)."""

OPEN_TIMEOUT: Final = 30.0
"""Seconds a crowd may take to open."""


def raise_nofile(wanted: int) -> None:
    """Raise this process's soft limit of open files to ``wanted`` (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class _Viewer(asyncio.Protocol):
    """One ``/events`` client: sends its GET, then counts what comes and drops it (or,
    ``stuck``, stops reading once it has the answer's head)."""

    def __init__(self, crowd: Crowd, request: bytes, stuck: bool = False) -> None:
        self.crowd = crowd
        self.request = request
        self.stuck = stuck
        self.status = 0
        self.opened: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def itself(self) -> _Viewer:
        """The protocol factory of this one connection."""
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)  # uvloop's: no subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.status:
            line = data.split(b"\r\n", 1)[0].split()
            self.status = int(line[1]) if len(line) > 1 and line[1].isdigit() else -1
            if not self.opened.done():
                self.opened.set_result(self.status)
            if self.stuck and self.transport is not None:
                self.transport.pause_reading()
        self.crowd.bytes += len(data)
        self.crowd.events += data.count(b"event: ")

    def connection_lost(self, exc: Exception | None) -> None:
        self.crowd.lost += 1
        if not self.opened.done():
            self.opened.set_result(0)


@dataclass
class Crowd:
    """``/events`` clients of one proxy, all open at once."""

    url: str
    viewers: list[_Viewer] = field(default_factory=list)
    bytes: int = 0
    events: int = 0
    lost: int = 0
    """Connections that ended (the proxy dropped them, or it went away)."""
    refused: int = 0
    """Clients the proxy did not take (a status other than 200)."""
    unopened: int = 0
    """Clients without an answer after :data:`OPEN_TIMEOUT` (measured without them)."""

    async def open(self, n: int, path: str = "/events", *, stuck: bool = False) -> None:
        """Open ``n`` clients of ``path``, :data:`OPEN_AT_ONCE` at a time; each has its
        answer's head. ``stuck``: clients that then read nothing (with a small receive
        buffer, so the proxy soon has bytes waiting for them)."""
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        loop = asyncio.get_running_loop()

        async def connect(viewer: _Viewer) -> None:
            if not stuck:
                await loop.create_connection(viewer.itself, host, port)
                return
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
            sock.setblocking(False)
            await loop.sock_connect(sock, (host, port))
            await loop.create_connection(viewer.itself, sock=sock)

        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                for start in range(0, n, OPEN_AT_ONCE):
                    size = min(OPEN_AT_ONCE, n - start)
                    batch = [_Viewer(self, request, stuck) for _ in range(size)]
                    self.viewers += batch
                    await asyncio.gather(*(connect(v) for v in batch))
                    statuses = await asyncio.gather(*(v.opened for v in batch))
                    self.refused += sum(1 for s in statuses if s != 200)
        except TimeoutError:
            self.unopened = sum(1 for v in self.viewers if v.status == 0) + n - len(self.viewers)

    def close(self) -> None:
        """Close every client (the proxy sees them go)."""
        for viewer in self.viewers:
            if viewer.transport is not None:
                viewer.transport.close()
        self.viewers.clear()


def _rotated(sizes: Sequence[int], n: int) -> list[int]:
    k = n % len(sizes)
    return [*sizes[k:], *sizes[:k]]


@dataclass
class ViewersResult:
    """What the scenario measured."""

    sizes: tuple[int, ...]
    samples: dict[int, Sample] = field(default_factory=dict)
    proxy_rss: dict[int, list[float]] = field(default_factory=dict)
    """The proxy's RSS (MB) at the end of each round, by crowd size."""
    events_per_viewer_s: dict[int, list[float]] = field(default_factory=dict)
    """Events a second one viewer received, each round, by crowd size."""
    refused: int = 0
    lost: int = 0
    unopened: int = 0

    def report(self, out: TextIO) -> dict[str, float]:
        """Print the scenario's table and its ratios against the targets; the ratios."""
        say(out)
        say(out, f"viewers: games via :3000 at {CONCURRENCY} concurrent with /events clients open")
        say(out, "  (proxy MB: its RSS at the end of a round, the largest; it keeps what it got)")
        say(
            out,
            f"{'viewers':>8}{'games/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
            f"{'proxy MB':>10}{'proxy ms/game':>15}{'events/s a viewer':>19}",
        )
        for size in self.sizes:
            s = self.samples.get(size)
            if s is None:
                continue
            rss = max(self.proxy_rss.get(size, [0.0]))
            cpu = s.cpu.get("proxy", 0.0) / s.ops * 1000 if s.ops else 0.0
            per = self.events_per_viewer_s.get(size)
            cell = f"{statistics.median(per):19.1f}" if per else f"{'':>19}"
            say(
                out,
                f"{size:>8}{s.rate:>10.0f}{s.pct(0.5):>9.2f}{s.pct(0.99):>9.2f}{s.errors:>8}"
                f"{rss:>10.1f}{cpu:>15.3f}{cell}",
            )
        if self.refused or self.lost or self.unopened:
            say(
                out,
                f"  clients refused: {self.refused}, dropped by the proxy: {self.lost}, "
                f"not answered within {OPEN_TIMEOUT:g}s: {self.unopened}",
            )
        ratios: dict[str, float] = {}
        none = self.samples.get(0)
        for size in self.sizes:
            s = self.samples.get(size)
            if size == 0 or s is None or none is None:
                continue
            rounds = [g / b for g, b in zip(s.rates, none.rates, strict=True) if b]
            if rounds:
                ratios[f"viewers_{size}_vs_none"] = statistics.median(rounds)
                lo, hi = min(rounds), max(rounds)
                label = f"games/s with {size} viewers / with none"
                target = f"[>= {MIN_RATIO:g}]" if size == max(self.sizes) else "(no target)"
                say(
                    out,
                    f"  {label + ' ' + target:<58} {ratios[f'viewers_{size}_vs_none']:8.3f}"
                    f"   rounds {lo:.3f} to {hi:.3f}",
                )
        top = max(self.sizes)
        if top and top in self.proxy_rss:
            ratios[f"proxy_rss_mb_{top}_viewers"] = rss = max(self.proxy_rss[top])
            label = f"the proxy's RSS with {top} viewers, MB [<= {MAX_RSS_MB:g}]"
            say(out, f"  {label:<58} {rss:8.1f}")
        return ratios


async def scenario(
    url: str,
    play: Op,
    pids: dict[str, int],
    options: BenchOptions,
) -> ViewersResult:
    """Measure games/s through the proxy at ``url`` with each crowd size of
    ``options.viewers`` open, in rounds."""
    sizes = options.viewers
    raise_nofile(max(sizes) + 1024)
    result = ViewersResult(tuple(sizes))
    proxy = pids["proxy"]
    for n in range(options.rounds):
        for size in _rotated(sizes, n):
            crowd = Crowd(url)
            try:
                await crowd.open(size)
                before = crowd.events
                sample = await measure(f"viewers {size}", play, CONCURRENCY, options, pids)
                result.proxy_rss.setdefault(size, []).append(rss_mb(proxy))
                if size:
                    await asyncio.sleep(DWELL)
                    seconds = options.warmup + sample.elapsed + DWELL
                    got = (crowd.events - before) / size / seconds
                    result.events_per_viewer_s.setdefault(size, []).append(got)
            finally:
                result.refused += crowd.refused
                result.lost += crowd.lost
                result.unopened += crowd.unopened
                crowd.close()
            result.samples.setdefault(size, Sample(f"viewers {size}", CONCURRENCY)).add(sample)
            await _gone(url)  # the proxy has seen them go before the next round
    return result


async def _gone(url: str, timeout: float = 10.0) -> None:
    """Wait until the proxy counts no viewer (``pingpong_viewers`` in ``/metrics``)."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(timeout):
        while True:
            async with http.get(url + "/metrics") as r:
                text = await r.text()
            if "\npingpong_viewers 0.0\n" in text:
                return
            await asyncio.sleep(0.1)


async def _alone(options: BenchOptions, out: TextIO) -> dict[str, float]:
    """The scenario on a stack of its own (nats-server and every service, as ``up``)."""
    bench = Bench(out)
    try:
        url, nats_pid = await bench.nats("viewers")
        port, service_pids = await bench.game(options, url, "bench")
        pids = {"nats-server": nats_pid, **service_pids}
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await _wait_game(http, base + "/")

            async def play() -> int:
                async with http.get(base + "/") as r:
                    body = await r.text()
                    if r.status != 200:
                        raise RuntimeError(r.status)
                return body.count("\n") - 1

            result = await scenario(base, play, pids, options)
    finally:
        await bench.close()
    return result.report(out)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.viewers``: the viewers scenario alone."""
    parser = argparse.ArgumentParser(prog="python -m bench.viewers", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="per crowd size (5)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    args = parser.parse_args(argv)
    options = BenchOptions(seconds=args.seconds, rounds=args.rounds, viewers=VIEWERS)
    tune_gc()  # as pingpong bench runs
    try:
        import uvloop
    except ImportError:
        asyncio.run(_alone(options, sys.stdout))
    else:
        uvloop.run(_alone(options, sys.stdout))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
