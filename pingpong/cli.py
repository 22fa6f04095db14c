"""The ``pingpong`` command: one console script for every role.

pingpong player ping --hit-chance 85
pingpong manager
pingpong proxy
pingpong up
pingpong watch
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from pingpong import __version__
from pingpong.errors import PingpongError, SettingsError
from pingpong.logs import setup_logging
from pingpong.runner import Service, run
from pingpong.settings import Settings


def _positive(text: str) -> float:
    """A number of seconds above 0 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return value


def _rounds(text: str) -> int:
    """A whole number from 1 to 100 (argparse type)."""
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 100, not {text!r}")
    return int(text)


def _concurrency(text: str) -> tuple[int, ...]:
    """Comma-separated whole numbers from 1 to 1000 (argparse type)."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(1 <= v <= 1000 for v in values):
        raise argparse.ArgumentTypeError(
            f"must be whole numbers from 1 to 1000 with commas between, not {text!r}"
        )
    return values


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; flags override environment variables."""
    parser = argparse.ArgumentParser(
        prog="pingpong", description="A distributed ping-pong game on NATS."
    )
    parser.add_argument("--version", action="version", version=f"pingpong {__version__}")
    parser.add_argument("--nats-url", help="NATS server URL(s) (env NATS_URL)")
    roles = parser.add_subparsers(dest="role", required=True, metavar="COMMAND")

    player = roles.add_parser("player", help="answer swings for one side")
    player.add_argument("side", choices=["ping", "pong"])
    player.add_argument("--hit-chance", metavar="N", help="percent of swings that HIT (0-100)")

    manager = roles.add_parser("manager", help="play games (serves game.play)")
    manager.add_argument(
        "--max-rounds", metavar="N", help="rounds (a PING and a PONG stroke) before a draw (99)"
    )
    manager.add_argument("--max-games", metavar="N", help="games in flight at once")

    proxy = roles.add_parser("proxy", help="HTTP on :3000: curl it to play a game")
    proxy.add_argument("--port", dest="http_port", metavar="PORT", help="HTTP port (3000)")
    proxy.add_argument("--host", dest="http_host", metavar="HOST", help="listen address")

    up = roles.add_parser("up", help="run the whole game locally (embedded nats-server)")
    up.add_argument("--port", type=int, default=3000, help="HTTP port of the proxy (3000)")
    up.add_argument("--nats-port", type=int, default=4222, help="NATS client port (4222)")
    up.add_argument("--players", type=int, default=2, help="players per side (2)")
    up.add_argument("--managers", type=int, default=2, help="managers (2)")
    up.add_argument("--hit-chance", metavar="N", help="percent of swings that HIT (85)")
    up.add_argument(
        "--no-auth",
        action="store_true",
        help="no NATS users (by default every role has its own, generated)",
    )
    up.add_argument(
        "--no-anonymous",
        action="store_true",
        help="refuse connections without credentials (by default they are the read-only "
        "watcher; env NATS_ANONYMOUS=off)",
    )

    secrets = roles.add_parser(
        "auth-secrets", help="new NATS passwords: passwords.conf and <role>.password"
    )
    secrets.add_argument("directory", help="where to write them (created 0700)")

    roles.add_parser("scoreboard", help="keep the scores from the event log (scores.get)")

    bench = roles.add_parser("bench", help="benchmark against raw NATS and bare aiohttp")
    bench.add_argument("--seconds", type=_positive, default=5.0, help="per measurement (5)")
    bench.add_argument(
        "--concurrency", type=_concurrency, default=(1, 8, 64), help="comma-separated (1,8,64)"
    )
    bench.add_argument(
        "--rounds", type=_rounds, default=5, metavar="N", help="rounds a measurement (5)"
    )
    bench.add_argument("--players", type=int, default=2, help="players per side (2)")
    bench.add_argument("--managers", type=int, default=2, help="managers (2)")

    health = roles.add_parser("healthcheck", help="exit 0 if this container's service is up")
    health.add_argument("--max-age", type=float, default=15.0, help="seconds (15)")

    watch = roles.add_parser("watch", help="print rallies live (rally.>)")
    watch.add_argument("--results", action="store_true", help="only finished and aborted games")
    return parser


def _service(role: str, args: argparse.Namespace, settings: Settings) -> Service:
    if role == "player":
        from players import serve as serve_player

        return lambda stop: serve_player(settings, args.side, stop)
    if role == "manager":
        from manager import serve as serve_manager

        return lambda stop: serve_manager(settings, stop)
    if role == "proxy":
        from proxy import serve as serve_proxy

        return lambda stop: serve_proxy(settings, stop)
    if role == "scoreboard":
        from scoreboard import serve as serve_scoreboard

        return lambda stop: serve_scoreboard(settings, stop)
    if role == "watch":
        from pingpong.watch import watch

        return lambda stop: watch(settings, stop, results_only=args.results)
    if role == "bench":
        from bench import BenchOptions, run_bench

        opts = BenchOptions(
            seconds=args.seconds,
            concurrency=args.concurrency,
            rounds=args.rounds,
            players=args.players,
            managers=args.managers,
        )

        async def run_benchmark(stop: asyncio.Event) -> None:
            await run_bench(opts)

        return run_benchmark
    if role == "up":
        from pingpong.local import UpOptions, up

        options = UpOptions(
            port=args.port,
            nats_port=args.nats_port,
            players=args.players,
            managers=args.managers,
            hit_chance=settings.hit_chance,
            auth=not args.no_auth,
            anonymous=settings.nats_anonymous and not args.no_anonymous,
            sync_interval=settings.nats_sync_interval,
        )

        async def run_up(stop: asyncio.Event) -> None:
            code = await up(options, stop)
            if code:
                raise SystemExit(code)

        return run_up
    raise AssertionError(role)  # pragma: no cover


def _healthcheck(settings: Settings, max_age: float) -> int:
    from pingpong.health import check

    if settings.health_file is None:
        print("pingpong: HEALTH_FILE is not set", file=sys.stderr)
        return 2
    problem = check(settings.health_file, max_age)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


FEW_COLLECTIONS: Final = ("player", "manager", "scoreboard", "bench")
"""Roles run with :data:`pingpong.runner.GC_THRESHOLDS` (the bench, for its NATS clients)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, configure, run; a bad setting exits 2 with one line naming it."""
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {
        k: getattr(args, k, None)
        for k in ("nats_url", "hit_chance", "max_rounds", "max_games", "http_port", "http_host")
    }
    try:
        settings = Settings.from_env(**overrides)
    except SettingsError as e:
        print(f"pingpong: {e}", file=sys.stderr)
        return 2
    role = args.role
    if role == "healthcheck":
        return _healthcheck(settings, args.max_age)
    if role == "auth-secrets":
        from pingpong.auth import generate

        for name, path in generate(Path(args.directory)).items():
            print(f"{name:<11} {path}")
        return 0
    name = args.side if role == "player" else role
    setup_logging(settings.instance(name), settings.log_level, settings.log_format)
    try:
        return run(_service(role, args, settings), few_collections=role in FEW_COLLECTIONS)
    except PingpongError as e:
        print(f"pingpong: {e}", file=sys.stderr)
        return 1
