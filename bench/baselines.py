"""The baselines, each run as its own process: ``python -m bench.baselines KIND ARG``.

``nats URL``: a bare nats-py responder on ``bench.hit`` answering ``HIT``.
``nats-asyncio URL``: the same on ``bench.hit.asyncio``, on plain asyncio (no uvloop, no
gc tuning: nats-py as the issue's reference machine measured it).
``trips URL SECONDS``: sequential requests to ``nats-asyncio`` from plain asyncio for
``SECONDS`` after a warm-up; prints the seconds of each as a JSON list.
``http PORT``: a bare aiohttp endpoint answering ``HIT``.
``floor URL``: a floor manager on ``game.play``: the messages of a game as the
design has them (started, a swing event an answer, finished stored through
JetStream, the game answered) for one canned 7-stroke game, with no players and
no rally logic. What it plays per second is what the design's NATS traffic
allows on this machine; the gap to the real services is their own work.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import sys
import time
from datetime import UTC, datetime

from aiohttp import web
from nats.aio.client import Client
from nats.aio.msg import Msg

from pingpong import subjects
from pingpong.eventlog import ensure_log, log_configs, stored_sequence
from pingpong.inbox import Inbox
from pingpong.messages import (
    Game,
    RallyStarted,
    Result,
    Stroke,
    encode,
)
from pingpong.runner import tune_gc
from pingpong.settings import Settings
from pingpong.wire import finished_event, swing_event

HIT = "bench.hit"
HIT_ASYNCIO = "bench.hit.asyncio"
PLAIN = ("nats-asyncio", "trips")
"""The kinds that run on plain asyncio, as nats-py comes."""

TRIPS_WARMUP = 200
"""Round trips of ``trips`` before it starts counting."""

FLOOR_STROKES = 7
"""Strokes of the floor's game (the real games average about 6.6 at 85 % hits)."""


async def nats_responder(url: str, subject: str = HIT) -> None:
    nc = Client()
    await nc.connect(url)

    async def hit(msg: object) -> None:
        await msg.respond(b"HIT")  # type: ignore[attr-defined]

    await nc.subscribe(subject, cb=hit)
    await nc.flush()
    await nc.flush()
    print("ready", flush=True)
    await _until_signal()
    await nc.close()


def canned_game(game_id: str) -> Game:
    """A game of ``FLOOR_STROKES`` strokes, PONG missing the last."""
    strokes = tuple(
        Stroke(
            stroke=n,
            side=subjects.SIDES[(n - 1) % 2],
            instance=f"{subjects.SIDES[(n - 1) % 2]}-1@bench",
            result=Result.MISS if n == FLOOR_STROKES else Result.HIT,
            latency_ms=0.5,
            attempts=1,
        )
        for n in range(1, FLOOR_STROKES + 1)
    )
    return Game(
        game_id=game_id,
        strokes=strokes,
        winner="ping",
        winner_instance="ping-1@bench",
        manager="floor-1@bench",
        duration_ms=1.0,
        started_at=datetime.now(UTC),
    )


async def floor_manager(url: str) -> None:
    nc = Client()
    await nc.connect(url)
    problem = await ensure_log(nc.jetstream(), log_configs(Settings()))
    if problem:
        raise SystemExit(problem)
    inbox = Inbox(nc)
    game = canned_game("000000000000")
    data = encode(game)
    finished = finished_event(data)
    started = encode(
        RallyStarted(game_id=game.game_id, manager=game.manager, max_rounds=99, at=game.started_at)
    )
    # one swing event an answer: ping's first stroke, then the rest once pong's answer is in
    strokes = [encode(stroke) for stroke in game.strokes]
    swings = [swing_event(game.game_id, strokes[:1]), swing_event(game.game_id, strokes[1:])]
    ids = itertools.count()
    tasks: set[asyncio.Task[None]] = set()

    async def play(msg: Msg) -> None:
        game_id = f"{next(ids):012x}"  # events of the same bytes, on each game's subjects
        await nc.publish(subjects.rally_subject(game_id, "started"), started)
        subject = subjects.rally_subject(game_id, "swing")
        for event in swings:
            await nc.publish(subject, event)
        msg_id = {"Nats-Msg-Id": subjects.finished_msg_id(game_id, "finished")}
        stored_sequence(
            await inbox.request(subjects.rally_subject(game_id, "finished"), finished, 5.0, msg_id)
        )
        await nc.publish(msg.reply, data)

    async def on_request(msg: Msg) -> None:
        task = asyncio.create_task(play(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    await nc.subscribe(subjects.GAME_PLAY, queue=subjects.MANAGER_QUEUE, cb=on_request)
    await nc.flush()
    print("ready", flush=True)
    await _until_signal()
    await nc.close()


async def trips(url: str, seconds: float) -> None:
    nc = Client()
    await nc.connect(url)
    for _ in range(TRIPS_WARMUP):
        await nc.request(HIT_ASYNCIO, b"x", timeout=5)
    latencies = []
    end = time.perf_counter() + seconds
    while (t0 := time.perf_counter()) < end:
        await nc.request(HIT_ASYNCIO, b"x", timeout=5)
        latencies.append(time.perf_counter() - t0)
    print(json.dumps(latencies), flush=True)
    await nc.close()


async def http_endpoint(port: int) -> None:
    async def hit(_: web.Request) -> web.Response:
        return web.Response(text="HIT")

    app = web.Application()
    app.router.add_get("/", hit)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("ready", flush=True)
    await _until_signal()
    await runner.cleanup()


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main() -> None:
    kind, arg = sys.argv[1], sys.argv[2]
    if kind not in (*PLAIN, "http"):  # as the NATS services run (the proxy does not)
        tune_gc()
    run = asyncio.run
    if kind not in PLAIN:
        with contextlib.suppress(ImportError):
            import uvloop

            run = uvloop.run
    if kind == "nats":
        run(nats_responder(arg))
    elif kind == "nats-asyncio":
        run(nats_responder(arg, HIT_ASYNCIO))
    elif kind == "trips":
        run(trips(arg, float(sys.argv[3])))
    elif kind == "floor":
        run(floor_manager(arg))
    else:
        run(http_endpoint(int(arg)))


if __name__ == "__main__":
    main()
