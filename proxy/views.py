"""The proxy's views: play a game, health."""

from __future__ import annotations

import logging
import time

import nats.errors
from aiohttp import web

from pingpong.errors import BadMessageError, RemoteError
from pingpong.handlers import raise_for_error
from pingpong.messages import LARGEST_MAX_ROUNDS, Game, decode, new_game_id
from pingpong.wire import game_request_json
from proxy.games import LostConnectionError, ManagerSilentError
from proxy.keys import GAMES, METRICS, NATS, SETTINGS
from proxy.middlewares import error

log = logging.getLogger(__name__)

FORMATS = ("text", "json")
"""Values of ``?format=``."""


class BadQueryError(Exception):
    """A query value is wrong; the message is the one-line reason."""


def wants_json(request: web.Request) -> bool:
    """``?format=json``, or ``Accept: application/json`` when no format is given."""
    fmt = request.query.get("format")
    if fmt is None:
        return "application/json" in request.headers.get("Accept", "")
    if fmt not in FORMATS:
        raise BadQueryError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt == "json"


def max_rounds(request: web.Request) -> int | None:
    """``?max_rounds=N`` (1 to :data:`LARGEST_MAX_ROUNDS`), or None."""
    value = request.query.get("max_rounds")
    if value is None:
        return None
    if not value.isdigit() or not 1 <= int(value) <= LARGEST_MAX_ROUNDS:
        raise BadQueryError(
            f"max_rounds must be a whole number from 1 to {LARGEST_MAX_ROUNDS}, not {value!r}"
        )
    return int(value)


async def play(request: web.Request) -> web.Response:
    """``GET /``: play a game; the original's transcript, or JSON."""
    try:
        as_json = wants_json(request)
        rounds = max_rounds(request)
    except BadQueryError as e:
        return error(400, str(e))
    # the game's id is the proxy's: a game played again (its manager went silent) keeps
    # it, so if the first play's result is stored after all, the log stores it once
    payload = game_request_json(new_game_id(), rounds)
    metrics = request.app[METRICS]
    if metrics.playing >= request.app[SETTINGS].max_inflight:
        metrics.failed(503)
        return error(
            503, "too many games in flight on this proxy; try again shortly", {"Retry-After": "1"}
        )
    metrics.start()
    t0 = time.perf_counter()
    try:
        result = await _play(request.app, payload)
    finally:
        metrics.end()
    if isinstance(result, web.Response):
        metrics.failed(result.status)
        return result
    game, data = result
    metrics.game(game, time.perf_counter() - t0)
    headers = {"X-Game-Id": game.game_id}
    if as_json:
        return web.Response(body=data, content_type="application/json", headers=headers)
    return web.Response(text=game.transcript(), headers=headers)


async def _play(app: web.Application, payload: bytes) -> tuple[Game, bytes] | web.Response:
    """The game and its JSON, or the error answer."""
    games = app[GAMES]
    if not games.ready and not await games.reconnected(games.reconnect_grace):
        return error(503, "not connected to NATS; try again shortly", {"Retry-After": "1"})
    timeout = app[SETTINGS].answer_timeout
    try:
        msg = await games.play(payload, timeout, on_replay=app[METRICS].replays.inc)
        raise_for_error(msg)
        return decode(Game, msg.data), msg.data
    except nats.errors.NoRespondersError:
        return error(503, "no manager is running", {"Retry-After": "1"})
    except ManagerSilentError:
        return error(503, "the managers went silent mid-game; try again", {"Retry-After": "1"})
    except LostConnectionError:
        return error(503, "lost the NATS connection mid-game; try again", {"Retry-After": "1"})
    except nats.errors.TimeoutError:
        return error(504, f"no game result within {timeout:g}s")
    except RemoteError as e:
        return error(e.code if e.code in (400, 503, 504) else 502, e.description)
    except BadMessageError as e:
        log.error("bad reply from a manager: %s", e)
        return error(502, "bad reply from the manager")
    except (
        nats.errors.ConnectionClosedError,
        nats.errors.ConnectionReconnectingError,
        nats.errors.ConnectionDrainingError,
        nats.errors.OutboundBufferLimitError,
    ):
        return error(503, "not connected to NATS; try again shortly", {"Retry-After": "1"})


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 when connected to NATS, else 503."""
    if request.app[NATS].is_connected:
        return web.Response(text="ok\n")
    return error(503, "not connected to NATS")
