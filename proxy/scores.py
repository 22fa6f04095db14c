"""The scoreboard's views: ``/scores`` (page), ``/scores.json``, ``/events`` (live SSE)."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Final

import nats.errors
from aiohttp import web

from pingpong import subjects
from pingpong.messages import GAME_ID_PATTERN
from proxy.feed import HELLO
from proxy.keys import LIVE, METRICS, NATS
from proxy.live import SCORES_TIMEOUT, Viewer
from proxy.middlewares import error

log = logging.getLogger(__name__)

STATIC: Final = Path(__file__).parent / "static"
"""The page and its assets (no external CDN)."""

VIEWERS_RETRY: Final = 10
"""Seconds a client refused for ``MAX_VIEWERS`` is asked to wait (``Retry-After``)."""

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


async def events(request: web.Request) -> web.StreamResponse:
    """``GET /events[?game=ID]``: the live feed as server-sent events.

    Without ``game``: whole rallies of sampled games (``FEED_RATE``), a ``sampling``
    event a second while games come, and ``scores`` when results came in. With
    ``game``: every event of that game, as it happens.
    """
    game = request.query.get("game")
    if game is not None and not _GAME_ID.match(game):
        return error(400, f"game must be a game id (letters, digits, - and _), not {game[:70]!r}")
    if not request.app[NATS].is_connected:
        return error(503, "not connected to NATS; try again shortly", {"Retry-After": "1"})
    hub = request.app[LIVE]
    audience = hub.audience
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    viewer = Viewer(request, response, game, asyncio.get_running_loop().time())
    if not audience.admit(viewer):
        if audience.closing:
            return error(503, "the proxy is stopping", {"Retry-After": "1"})
        request.app[METRICS].viewers_refused.inc()
        return error(
            503,
            f"too many live viewers on this proxy ({audience.max_viewers}); try again shortly",
            {"Retry-After": str(VIEWERS_RETRY)},
        )
    try:
        await response.prepare(request)
        await response.write(HELLO)
        await hub.join(viewer)
        await viewer.gone.wait()
    except (ConnectionResetError, nats.errors.Error):
        pass
    finally:
        audience.leave(viewer)
    return response


def setup_scores(app: web.Application) -> None:
    """Add the scoreboard routes and the static assets."""
    app.router.add_get("/scores", page)
    app.router.add_get("/scores.json", scores_json)
    app.router.add_get("/events", events)
    app.router.add_static("/static/", STATIC, append_version=False)
