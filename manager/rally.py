"""The rally loop, apart from I/O: it asks a requester for each swing.

``play_game`` is tested against a fake requester; the service passes one that
sends NATS requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from pingpong.errors import GameAbortedError, UnansweredError
from pingpong.messages import DEFAULT_MAX_ROUNDS, Game, Result, Stroke, Swing, SwingReply, now
from pingpong.subjects import SIDES, Side

Requester = Callable[[Side, Swing], Awaitable[SwingReply]]
"""Sends one swing to a side and returns the reply; raises :class:`UnansweredError`."""

StrokeSink = Callable[[Stroke], Awaitable[None]]
"""Called with every stroke as soon as it is played (the manager publishes it)."""


@dataclass(frozen=True)
class Limits:
    """How long a game may go on and how hard the manager tries."""

    max_rounds: int = DEFAULT_MAX_ROUNDS
    """Strokes without a miss after which the game is a draw."""

    retries: int = 3
    """Extra requests for a swing that timed out or met no player."""

    backoff: float = 0.02
    """Seconds before the first retry; doubled for each further retry."""

    max_backoff: float = 0.5
    """Seconds at most between two retries."""


def other(side: Side) -> Side:
    """The opponent of ``side``."""
    return "pong" if side == "ping" else "ping"


async def play_game(
    request: Requester,
    game_id: str,
    manager: str,
    limits: Limits,
    on_stroke: StrokeSink | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    started_at: datetime | None = None,
) -> Game:
    """Play one game to a winner or a draw; raise :class:`GameAbortedError` if a side is gone."""
    start = clock()
    started_at = started_at or now()
    strokes: list[Stroke] = []
    winner: Side | None = None
    winner_instance: str | None = None
    for n in range(1, limits.max_rounds + 1):
        side = SIDES[(n - 1) % 2]
        swing = Swing(game_id=game_id, stroke=n)
        attempt = 0
        while True:
            attempt += 1
            t0 = clock()
            try:
                reply = await request(side, swing)
                break
            except UnansweredError as e:
                if attempt > limits.retries:
                    raise GameAbortedError(
                        f"no {side} player answered stroke {n} ({attempt} tries, last: {e})"
                    ) from None
                await sleep(min(limits.backoff * 2 ** (attempt - 1), limits.max_backoff))
        stroke = Stroke(
            stroke=n,
            side=side,
            instance=reply.instance,
            result=reply.result,
            latency_ms=(clock() - t0) * 1000,
            attempts=attempt,
        )
        strokes.append(stroke)
        if on_stroke is not None:
            await on_stroke(stroke)
        if reply.result is Result.MISS:
            winner = other(side)
            winner_instance = strokes[-2].instance if len(strokes) > 1 else None
            break
    return Game(
        game_id=game_id,
        strokes=tuple(strokes),
        winner=winner,
        winner_instance=winner_instance,
        manager=manager,
        duration_ms=(clock() - start) * 1000,
        started_at=started_at,
    )
