"""The scoreboard's views: ``/scores`` (page), ``/scores.json``, ``/events`` (live SSE)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from pathlib import Path
from typing import Final

import nats.errors
from aiohttp import web
from nats.aio.msg import Msg

from pingpong import subjects
from pingpong.messages import GAME_ID_PATTERN
from proxy.keys import NATS, SHUTTING_DOWN
from proxy.middlewares import error

log = logging.getLogger(__name__)

STATIC: Final = Path(__file__).parent / "static"
"""The page and its assets (no external CDN)."""

HEARTBEAT: Final = 15.0
"""Seconds between SSE keep-alive comments."""

QUEUE: Final = 1000
"""Events buffered per SSE client; a client that falls further behind misses events."""

SCORES_TIMEOUT: Final = 2.0
"""Seconds to wait for the scoreboard."""

_GAME_ID = re.compile(GAME_ID_PATTERN)


async def page(request: web.Request) -> web.FileResponse:
    """``GET /scores``: the live scoreboard page."""
    return web.FileResponse(STATIC / "scores.html")


async def scores_json(request: web.Request) -> web.Response:
    """``GET /scores.json``: the scores from ``scores.get``."""
    nc = request.app[NATS]
    if not nc.is_connected:
        return error(503, "not connected to NATS; try again shortly", {"Retry-After": "1"})
    try:
        msg = await nc.request(subjects.SCORES_GET, b"", timeout=SCORES_TIMEOUT)
    except nats.errors.NoRespondersError:
        return error(503, "no scoreboard is running", {"Retry-After": "1"})
    except nats.errors.TimeoutError:
        return error(504, f"no answer from the scoreboard within {SCORES_TIMEOUT:g}s")
    except nats.errors.Error:
        return error(503, "not connected to NATS; try again shortly", {"Retry-After": "1"})
    return web.Response(
        body=msg.data, content_type="application/json", headers={"Cache-Control": "no-store"}
    )


def sse_frame(kind: str, data: bytes) -> bytes:
    """One server-sent event; every line of ``data`` gets its own ``data:`` field."""
    lines = b"".join(b"data: " + line + b"\n" for line in data.split(b"\n"))
    return b"event: " + kind.encode() + b"\n" + lines + b"\n"


async def events(request: web.Request) -> web.StreamResponse:
    """``GET /events[?game=ID]``: rally events as server-sent events, as they happen."""
    game = request.query.get("game")
    if game is not None and not _GAME_ID.match(game):
        return error(400, f"game must be a game id (letters, digits, - and _), not {game[:70]!r}")
    nc = request.app[NATS]
    if not nc.is_connected:
        return error(503, "not connected to NATS; try again shortly", {"Retry-After": "1"})
    queue: asyncio.Queue[Msg] = asyncio.Queue(QUEUE)
    dropped = 0

    async def enqueue(msg: Msg) -> None:
        nonlocal dropped
        try:
            queue.put_nowait(msg)
        except asyncio.QueueFull:
            dropped += 1

    subject = subjects.rally_game(game) if game else subjects.RALLY_ALL
    sub = await nc.subscribe(subject, cb=enqueue)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    closing = request.app[SHUTTING_DOWN]
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n: connected\n\n")
        while not closing.is_set():
            getter = asyncio.ensure_future(queue.get())
            stopper = asyncio.ensure_future(closing.wait())
            done, _ = await asyncio.wait(
                {getter, stopper}, timeout=HEARTBEAT, return_when=asyncio.FIRST_COMPLETED
            )
            stopper.cancel()
            if getter not in done:
                getter.cancel()
                if not closing.is_set():
                    await response.write(b": keep-alive\n\n")
                continue
            msg = getter.result()
            await response.write(sse_frame(msg.subject.rsplit(".", 1)[-1], msg.data))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()
        if dropped:
            log.warning("an /events client fell behind; %d events not sent to it", dropped)
    return response


def setup_scores(app: web.Application) -> None:
    """Add the scoreboard routes and the static assets."""
    app.router.add_get("/scores", page)
    app.router.add_get("/scores.json", scores_json)
    app.router.add_get("/events", events)
    app.router.add_static("/static/", STATIC, append_version=False)
