"""``pingpong bench``: games through :3000 and ``game.play`` against the two baselines.

Everything runs on this machine at once, so the ratios compare like with like:
a raw nats-py request/reply (a bare responder process, on a nats-server of its
own as it runs out of the box) and a bare aiohttp ``HIT`` endpoint, and the real
services (2 ping, 2 pong, 2 managers, scoreboard, proxy: separate processes on
an embedded nats-server, as ``pingpong up`` runs them), and the Go original
(``bench.original``: HTTP per swing), all driven by the same client code from this
process. Each concurrency is measured in rounds, each
round a baseline and the games that are compared with it, one after the other
(the baseline first in even rounds, the games first in odd ones), so a host that
speeds up or slows down during the run moves both sides of a ratio; a ratio is
the median of its rounds'.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, TextIO

import aiohttp
from nats.aio.client import Client

from bench import original
from bench.process import free_port, output, rss_mb
from pingpong import subjects
from pingpong.handlers import raise_for_error
from pingpong.local import UpOptions, cast, find_nats_server, nats_child
from pingpong.messages import Game, GameRequest, decode, encode
from pingpong.supervisor import Child, Supervisor


@dataclass(frozen=True)
class BenchOptions:
    """What to measure and for how long."""

    seconds: float = 5.0
    """Seconds of load per measurement, split over its rounds."""
    concurrency: tuple[int, ...] = (1, 8, 64)
    """Requests in flight at once, one measurement each."""
    warmup: float = 0.3
    """Seconds of load before each round of a measurement, not counted."""
    rounds: int = 5
    """Rounds per concurrency, each a turn of every measurement."""
    players: int = 2
    """Players per side (processes)."""
    managers: int = 2
    """Manager processes."""
    viewers: tuple[int, ...] = (0, 100, 1000)
    """Crowd sizes of the viewers scenario (``bench.viewers``): ``/events`` clients open
    while games are played; () leaves the scenario out."""


@dataclass
class Sample:
    """One measurement: operations, units (swings), latencies, CPU of the processes."""

    name: str
    concurrency: int
    ops: int = 0
    units: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    rates: list[float] = field(default_factory=list)
    """Operations a second of each round."""
    unit_rates: list[float] = field(default_factory=list)
    """Units (swings) a second of each round."""
    medians: list[float] = field(default_factory=list)
    """The median latency (ms) of each round."""

    @property
    def rate(self) -> float:
        return self.ops / self.elapsed if self.elapsed else 0.0

    @property
    def unit_rate(self) -> float:
        return self.units / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def cpu_per_op_ms(self) -> float:
        return sum(self.cpu.values()) / self.ops * 1000 if self.ops else 0.0

    def add(self, other: Sample) -> None:
        """Count another round of the same measurement in."""
        self.ops += other.ops
        self.units += other.units
        self.elapsed += other.elapsed
        self.latencies += other.latencies
        self.errors += other.errors
        for name, cpu in other.cpu.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + cpu
        self.rates.append(other.rate)
        self.unit_rates.append(other.unit_rate)
        self.medians.append(other.pct(0.5))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


FLOOR = "games via floor mgr"
"""The floor manager's measurement (``bench.baselines floor``): at the top concurrency only."""

Op = Callable[[], Awaitable[int]]
"""One operation; returns its units (swings of a game, 1 for a baseline)."""


async def measure(
    name: str, op: Op, concurrency: int, options: BenchOptions, pids: dict[str, int]
) -> Sample:
    """One round: run ``op`` from ``concurrency`` workers, warm up, then count for
    ``options.seconds / options.rounds``."""
    sample = Sample(name, concurrency)
    counting = False
    stop_at = time.perf_counter() + options.warmup + options.seconds / options.rounds

    async def worker() -> None:
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            try:
                units = await op()
            except Exception:
                sample.errors += 1
                await asyncio.sleep(0.01)
                continue
            if counting:
                sample.ops += 1
                sample.units += units
                sample.latencies.append(time.perf_counter() - t0)

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    await asyncio.sleep(options.warmup)
    counting = True
    cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
    t0 = time.perf_counter()
    await asyncio.gather(*workers)
    sample.elapsed = time.perf_counter() - t0
    sample.cpu = {n: cpu_seconds(p) - cpu0[n] for n, p in pids.items()}
    return sample


class Bench:
    """Owns the processes of one benchmark run."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.log = open(os.devnull, "w")  # noqa: SIM115 (closed in close())
        self.sup = Supervisor(out=self.log, max_restarts=1)
        self.store = tempfile.TemporaryDirectory(prefix="pingpong-bench-")
        self.children: list[Child] = []

    async def start(self, child: Child, timeout: float = 20) -> Child:
        await self.sup.start(child)
        self.children.append(child)
        await asyncio.wait_for(child.ready.wait(), timeout)
        return child

    async def nats(self, name: str, sync_interval: str = "always") -> tuple[str, int]:
        """A nats-server as ``pingpong up`` runs it, its store in a directory of its own:
        its URL and its pid."""
        store = os.path.join(self.store.name, name)
        os.makedirs(store, exist_ok=True)
        port = free_port()
        child = nats_child(find_nats_server(), port, store, name, sync_interval=sync_interval)
        await self.start(child)
        return f"nats://127.0.0.1:{port}", _pid(child)

    async def game(
        self, options: BenchOptions, nats_url: str, host: str
    ) -> tuple[int, dict[str, int]]:
        """Every service of a game on ``nats_url``, as ``pingpong up`` runs them: the
        proxy's port and each service's pid."""
        port = free_port()
        services = cast(
            UpOptions(port=port, players=options.players, managers=options.managers),
            nats_url,
            host,
        )
        for child in services.start_order:
            child.ready_line = "listening on" if child is services.proxy else " serving "
            await self.start(child)
        return port, {c.name: _pid(c) for c in services.start_order}

    async def close(self) -> None:
        await self.sup.stop_all([list(reversed(self.children))])
        self.log.close()
        self.store.cleanup()


def say(out: TextIO, line: str = "") -> None:
    print(line, file=out, flush=True)


async def run_bench(options: BenchOptions, out: TextIO = sys.stdout) -> dict[str, float]:
    """Run every measurement, print the table and the ratios; the ratios."""
    bench = Bench(out)
    samples: dict[tuple[str, int], Sample] = {}
    split: dict[str, float] = {}
    server = find_nats_server()
    py = [sys.executable, "-m", "bench.baselines"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        # baseline 1: raw nats-py request/reply to a bare responder, nats-server as it comes
        raw_port = free_port()
        raw_store = os.path.join(bench.store.name, "raw")
        raw_server = await bench.start(
            nats_child(server, raw_port, raw_store, "raw", embedded=False)
        )
        raw_url = f"nats://127.0.0.1:{raw_port}"
        raw_nc = Client()
        await raw_nc.connect(raw_url)
        responder = await bench.start(Child("raw-nats", [*py, "nats", raw_url], env, "ready"))
        raw_pids = {"raw-nats": _pid(responder), "nats-server": _pid(raw_server)}
        if 1 in options.concurrency:  # the reference's round trip: nats-py on plain asyncio
            await bench.start(Child("raw-asyncio", [*py, "nats-asyncio", raw_url], env, "ready"))

        # the game's nats-server, as pingpong up runs it
        url, nats_pid = await bench.nats("bench")
        nc = Client()
        await nc.connect(url)
        request = encode(GameRequest())

        async def via_nats() -> int:
            msg = await nc.request(subjects.GAME_PLAY, request, timeout=15)
            # the strokes, counted as cheaply as the raw client reads its HIT: each has one
            # "stroke" key (a key's quotes are never inside a JSON string unescaped)
            return raise_for_error(msg).data.count(b'"stroke":')

        # context: a floor manager, the design's messages of a game and nothing else
        top = max(options.concurrency)
        floor = await bench.start(Child("floor", [*py, "floor", url], env, ready_line="ready"))
        floor_pids = {"floor": _pid(floor), "nats-server": nats_pid}
        floor_sample = Sample(FLOOR, top)
        for _ in range(options.rounds):
            floor_sample.add(await measure(FLOOR, via_nats, top, options, floor_pids))
        samples[(FLOOR, top)] = floor_sample
        await bench.sup.stop_all([[floor]])  # no restarts from here on, as in the end
        for stream in (subjects.STREAM, subjects.STROKES_STREAM):  # its games do not count
            await nc.jetstream().purge_stream(stream)

        # baseline 2: a bare aiohttp endpoint
        http_port = free_port()
        bare = await bench.start(
            Child("raw-http", [*py, "http", str(http_port)], env, ready_line="ready")
        )
        bare_pids = {"raw-http": _pid(bare)}

        # the Go original, side by side, if there is a Go toolchain to build it
        go_url, go_pids = None, {}
        binary = await original.build(bench.store.name)
        if binary is None:
            say(out, f"{GO_ORIGINAL}: not measured, no Go toolchain (apt-get install golang-go)")
        else:
            go_children, go_url = original.children(binary, UpOptions().hit_chance)
            for child in go_children:
                await bench.start(child)
            go_pids = {c.name: _pid(c) for c in go_children}

        # the real thing
        port, service_pids = await bench.game(options, url, "bench")
        pids = {"nats-server": nats_pid, **service_pids}

        # the same game with lazy syncs (NATS_SYNC_INTERVAL=120s, nats-server's default):
        # what storing every result on disk before its ack costs, in the same rounds
        lazy_url, lazy_nats_pid = await bench.nats("lazy", LAZY_SYNC)
        lazy_port, lazy_service_pids = await bench.game(options, lazy_url, "lazy")
        lazy_pids = {"nats-server": lazy_nats_pid, **lazy_service_pids}

        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            await _wait_game(http, f"http://127.0.0.1:{port}/")

            async def raw_request() -> int:
                await raw_nc.request("bench.hit", b"x", timeout=5)
                return 1

            async def raw_http() -> int:
                async with http.get(f"http://127.0.0.1:{http_port}/") as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(r.status)
                return 1

            def transcript(url: str) -> Op:
                """A game asked for with GET: its strokes, a line each before the verdict."""

                async def play() -> int:
                    async with http.get(url) as r:
                        body = await r.text()
                        if r.status != 200:
                            raise RuntimeError(r.status)
                    return body.count("\n") - 1

                return play

            pairs: list[list[tuple[str, Op, dict[str, int]]]] = [
                [(RAW_NATS, raw_request, raw_pids), (VIA_NATS, via_nats, pids)],
                [
                    (RAW_HTTP, raw_http, bare_pids),
                    (VIA_PROXY, transcript(f"http://127.0.0.1:{port}/"), pids),
                    (VIA_PROXY_LAZY, transcript(f"http://127.0.0.1:{lazy_port}/"), lazy_pids),
                ],
            ]
            if go_url is not None:  # next to the games via :3000, in every round
                pairs[1].append((GO_ORIGINAL, transcript(go_url), go_pids))
            for c in options.concurrency:
                for n in range(options.rounds):
                    for pair in pairs:  # baseline first in even rounds, games first in odd
                        for name, op, of in pair if n % 2 == 0 else reversed(pair):
                            sample = await measure(name, op, c, options, of)
                            samples.setdefault((name, c), Sample(name, c)).add(sample)
                    if c == 1:
                        sample = await asyncio_trips(py, env, raw_url, options)
                        samples.setdefault((RAW_ASYNCIO, c), Sample(RAW_ASYNCIO, c)).add(sample)
            if 1 in options.concurrency:
                seconds = options.seconds / options.rounds
                split = await split_game(http, f"http://127.0.0.1:{port}/", seconds)
            rss = {n: rss_mb(p) for n, p in {**pids, **go_pids}.items()}
            crowd = None  # the viewers scenario (bench/viewers.py), last: it opens sockets
            if options.viewers:
                from bench import viewers

                play = transcript(f"http://127.0.0.1:{port}/")
                crowd = await viewers.scenario(f"http://127.0.0.1:{port}", play, pids, options)
        await nc.close()
        await raw_nc.close()
    finally:
        await bench.close()
    order = [
        FLOOR,
        RAW_NATS,
        RAW_ASYNCIO,
        RAW_HTTP,
        GO_ORIGINAL,
        VIA_PROXY_LAZY,
        VIA_PROXY,
        VIA_NATS,
    ]
    table = sorted(samples.values(), key=lambda s: (order.index(s.name), s.concurrency))
    ratios = report(table, rss, options, out, split)
    if crowd is not None:
        ratios.update(crowd.report(out))
    return ratios


SPLIT_GAMES: Final = 2000
"""Most games of :func:`split_game`."""


async def split_game(http: aiohttp.ClientSession, url: str, seconds: float) -> dict[str, float]:
    """Where a game at 1 client through :3000 spends its time (median ms of each part),
    from the game's own fields: ``started_at``, when the manager took the request (wall
    clock, as this process's), and ``duration_ms``, until its result was known."""
    parts: dict[str, list[float]] = {SPLIT_TO: [], SPLIT_IN: [], SPLIT_BACK: []}
    end = time.monotonic() + seconds
    for _ in range(SPLIT_GAMES):
        if time.monotonic() >= end:
            break
        sent = time.time()
        async with http.get(url, params={"format": "json"}) as r:
            data = await r.read()
        answered = time.time()
        if r.status != 200:
            continue
        game = decode(Game, data)
        taken = game.started_at.timestamp()
        known = taken + game.duration_ms / 1000
        for times, part in zip(
            parts.values(), (taken - sent, known - taken, answered - known), strict=True
        ):
            times.append(part * 1000)
    return {key: statistics.median(v) for key, v in parts.items() if v}


async def asyncio_trips(
    py: list[str], env: dict[str, str], url: str, options: BenchOptions
) -> Sample:
    """One round of sequential raw round trips on plain asyncio, from a process of its own."""
    seconds = options.seconds / options.rounds
    out = await output(
        *py, "trips", url, str(seconds), timeout=seconds + 30, what="bench.baselines trips", env=env
    )
    latencies: list[float] = json.loads(out)
    return Sample(RAW_ASYNCIO, 1, ops=len(latencies), elapsed=sum(latencies), latencies=latencies)


REFERENCE_TRIPS: Final = 2.0 / 0.54
"""The issue's 2 ms in its machine's sequential raw nats-py round trips (0.54 ms each,
nats-py as it comes). Context only: the target, 2x the Go original's median game, is
read against the Go original measured in the same rounds."""

SPLIT_TO: Final = "split_to_manager_ms"
SPLIT_IN: Final = "split_in_manager_ms"
SPLIT_BACK: Final = "split_stored_and_answered_ms"
"""The parts of a game at 1 client (:func:`split_game`), in the ratios."""

RAW_NATS: Final = "raw nats req/reply"
RAW_ASYNCIO: Final = "raw nats on asyncio"
RAW_HTTP: Final = "bare aiohttp"
VIA_PROXY: Final = "games via :3000"
VIA_PROXY_LAZY: Final = "games via :3000 lazy"
LAZY_SYNC: Final = "120s"
"""The lazy stack's ``NATS_SYNC_INTERVAL``: nats-server's own default, 2 minutes."""
VIA_NATS: Final = "games via game.play"
GO_ORIGINAL: Final = "games via go original"


async def _wait_game(http: aiohttp.ClientSession, url: str) -> None:
    async with asyncio.timeout(30):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)


def _pid(child: Child) -> int:
    assert child.proc is not None
    return child.proc.pid


def _find(samples: Sequence[Sample], name: str, c: int) -> Sample | None:
    return next((s for s in samples if s.name == name and s.concurrency == c), None)


def report(
    samples: Sequence[Sample],
    rss: dict[str, float],
    options: BenchOptions,
    out: TextIO,
    split: dict[str, float] | None = None,
) -> dict[str, float]:
    """Print the table, CPU and RSS per process, and the ratios to the baselines."""
    say(
        out,
        f"pingpong bench: {options.seconds:g}s per measurement in {options.rounds} rounds, "
        f"{options.players} player(s) per side, {options.managers} manager(s), "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}",
    )
    say(
        out,
        f"{'measurement':<22}{'conc':>5}{'ops/s':>10}{'swings/s':>10}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'cpu ms/op':>10}{'errors':>8}",
    )
    for s in samples:
        swings = f"{s.unit_rate:10.0f}" if s.name.startswith("games") else f"{'':>10}"
        cpu_cell = f"{s.cpu_per_op_ms:>10.2f}" if s.cpu else f"{'':>10}"  # trips: not measured
        say(
            out,
            f"{s.name:<22}{s.concurrency:>5}{s.rate:>10.0f}{swings}{s.pct(0.5):>9.2f}"
            f"{s.pct(0.99):>9.2f}{cpu_cell}{s.errors:>8}",
        )
    say(out)
    top, low = max(options.concurrency), min(options.concurrency)
    proxy = _find(samples, VIA_PROXY, top)
    go = _find(samples, GO_ORIGINAL, top)
    for sample, title in (
        (
            proxy,
            f"CPU seconds per process at {top} concurrent games via :3000, RSS, "
            f"and CPU ms a game at {low}:",
        ),
        (go, f"the same for the Go original at {top} concurrent games (and at {low}):"),
    ):
        if sample is not None:
            say(out, title)
            first = _find(samples, sample.name, low)
            for name, cpu in sample.cpu.items():
                at_low = (
                    f"   at {low}: {first.cpu[name] / first.ops * 1000:5.2f} ms a game"
                    if first is not None and first.ops and name in first.cpu
                    else ""
                )
                say(out, f"  {name:<12} cpu {cpu:6.2f}s   rss {rss.get(name, 0):6.1f} MB{at_low}")
    ratios: dict[str, float] = {}
    spread: dict[str, tuple[float, float]] = {}

    def paired(key: str, games: list[float], base: list[float]) -> None:
        """The median of the rounds' ratios (each round: the baseline, then the games)."""
        each = [g / b for g, b in zip(games, base, strict=True) if b]
        if each:
            ratios[key] = statistics.median(each)
            spread[key] = (min(each), max(each))

    bare = _find(samples, RAW_HTTP, top)
    if proxy and bare:
        paired("proxy_vs_aiohttp", proxy.rates, bare.rates)
    if proxy and go:
        paired("proxy_vs_original", proxy.rates, go.rates)
    lazy = _find(samples, VIA_PROXY_LAZY, top)
    if proxy and lazy:
        paired("durable_vs_lazy", proxy.rates, lazy.rates)
        if go:
            paired("lazy_vs_original", lazy.rates, go.rates)
    lazy_one = _find(samples, VIA_PROXY_LAZY, low)
    go_low = _find(samples, GO_ORIGINAL, low)
    if lazy_one and go_low:
        paired("lazy_median_vs_original", lazy_one.medians, go_low.medians)
    via = _find(samples, VIA_NATS, top)
    raw = _find(samples, RAW_NATS, top)
    managers = sum(1 for n in (proxy.cpu if proxy else {}) if n.startswith("manager"))
    if via and raw:
        paired("manager_swings_vs_raw", via.unit_rates, raw.rates)
        if managers and "manager_swings_vs_raw" in ratios:
            ratios["per_manager_swings_vs_raw"] = ratios["manager_swings_vs_raw"] / managers
    floor = _find(samples, FLOOR, top)
    if floor and raw and raw.rate:  # measured before the rest: context, not a target
        ratios["floor_swings_vs_raw"] = floor.unit_rate / raw.rate
    one = _find(samples, VIA_PROXY, min(options.concurrency))
    if one:
        ratios["median_game_ms_1_client"] = median = one.pct(0.5)
        go_one = _find(samples, GO_ORIGINAL, one.concurrency)
        if go_one:
            paired("median_game_vs_original", one.medians, go_one.medians)
            ratios["original_median_game_ms"] = go_one.pct(0.5)
        for key, name in (
            ("median_game_in_asyncio_trips", RAW_ASYNCIO),
            ("median_game_in_raw_trips", RAW_NATS),
        ):
            trips = _find(samples, name, one.concurrency)
            if trips and trips.pct(0.5):
                ratios[key] = median / trips.pct(0.5)
    ratios.update(split or {})  # context for the median game, no targets
    if one and proxy and one.cpu_per_op_ms:
        ratios["cpu_per_game_top_vs_1"] = proxy.cpu_per_op_ms / one.cpu_per_op_ms
    if rss:
        ratios["max_service_rss_mb"] = max(
            v for n, v in rss.items() if n != "nats-server" and not n.startswith("go-")
        )
    say(out, "ratios (targets in brackets):")
    labels = {
        "proxy_vs_aiohttp": f"games/s via :3000 / bare aiohttp req/s at {top}   [>= 0.13]",
        "proxy_vs_original": f"games/s via :3000 / the Go original's at {top}    [>= 2]",
        "durable_vs_lazy": f"  games/s synced before each ack / lazy syncs at {top} (no target)",
        "lazy_vs_original": "  games/s with lazy syncs / the Go original's (no target)",
        "manager_swings_vs_raw": f"swings/s via game.play / raw nats req/s at {top} [>= 0.8]",
        "per_manager_swings_vs_raw": "  the same per manager process",
        "floor_swings_vs_raw": "  the same for the floor manager (no target)",
        "median_game_vs_original": "median game at 1 client / the Go original's   [<= 2]",
        "lazy_median_vs_original": "  the same with lazy syncs (no target)",
        "median_game_ms_1_client": "median game at 1 client, ms (no target here)",
        "original_median_game_ms": "  the Go original's, ms",
        SPLIT_TO: "  ours: to the manager (HTTP, proxy, NATS), ms",
        SPLIT_IN: "  ours: in the manager (players' answers in), ms",
        SPLIT_BACK: "  ours: stored and answered (JetStream, NATS, HTTP), ms",
        "median_game_in_asyncio_trips": "  in raw nats-py round trips on plain asyncio "
        f"(issue's machine: {REFERENCE_TRIPS:.1f})",
        "median_game_in_raw_trips": "  in raw nats-py round trips on uvloop",
        "cpu_per_game_top_vs_1": f"CPU per game at {top} / at 1                   [flat: <= 1]",
        "max_service_rss_mb": "largest service RSS, MB                     [<= 60]",
    }
    for key, label in labels.items():
        if key in ratios:
            low_high = (
                f"   rounds {spread[key][0]:.3f} to {spread[key][1]:.3f}" if key in spread else ""
            )
            say(out, f"  {label:<58} {ratios[key]:8.3f}{low_high}")
    return ratios
