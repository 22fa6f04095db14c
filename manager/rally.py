"""The rally loop, apart from I/O: it asks a requester for the swings.

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
from pingpong.messages import (
    DEFAULT_MAX_ROUNDS,
    DEFAULT_SWINGS_AHEAD,
    Game,
    Result,
    Stroke,
    Swing,
    SwingReply,
    now,
)
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

    ahead: int = DEFAULT_SWINGS_AHEAD
    """Strokes asked for at once, split between the sides (1: one swing at a time)."""


def other(side: Side) -> Side:
    """The opponent of ``side``."""
    return "pong" if side == "ping" else "ping"


class _Ask:
    """One swing request of a round, with its retries: the reply, its latency, its tries."""

    def __init__(
        self,
        request: Requester,
        side: Side,
        swing: Swing,
        limits: Limits,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.side = side
        self.first = swing.stroke
        self.latency_ms = 0.0
        self.attempts = 0
        self.task = asyncio.ensure_future(self._run(request, swing, limits, clock, sleep))

    async def _run(
        self,
        request: Requester,
        swing: Swing,
        limits: Limits,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> SwingReply:
        side = self.side
        while True:
            self.attempts += 1
            t0 = clock()
            try:
                reply = await request(side, swing)
                n = len(reply.results)
                if (
                    reply.side != side
                    or n > swing.count
                    or (n < swing.count and reply.results[-1] is not Result.MISS)
                ):
                    raise UnansweredError(f"a {side} player answered {n} of {swing.count} swings")
            except UnansweredError as e:
                if self.attempts > limits.retries:
                    raise GameAbortedError(
                        f"no {side} player answered stroke {swing.stroke} "
                        f"({self.attempts} tries, last: {e})"
                    ) from None
                await sleep(min(limits.backoff * 2 ** (self.attempts - 1), limits.max_backoff))
                continue
            self.latency_ms = (clock() - t0) * 1000
            return reply

    def settle(self) -> None:
        """Cancel the request if it is still out; collect what it raised if it is done."""
        if not self.task.done():
            self.task.cancel()
        elif not self.task.cancelled():
            self.task.exception()


async def play_game(
    request: Requester,
    game_id: str,
    manager: str,
    limits: Limits,
    on_stroke: StrokeSink | None = None,
    *,
    on_start: Callable[[], Awaitable[None]] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    started_at: datetime | None = None,
) -> Game:
    """Play one game to a winner or a draw; raise :class:`GameAbortedError` if a side is gone.

    Strokes are asked for ``limits.ahead`` at a time: both sides get one request for
    their strokes of the round, at once. The game is the strokes up to the first MISS.
    ``on_start`` is awaited once the first swings are on their way (the manager publishes
    the started event then, so both leave in one write to the socket).
    """
    start = clock()
    started_at = started_at or now()
    strokes: list[Stroke] = []
    winner: Side | None = None
    winner_instance: str | None = None
    n = 1
    while n <= limits.max_rounds and winner is None:
        last = min(n + limits.ahead - 1, limits.max_rounds)
        asks = {
            SIDES[(first - 1) % 2]: _Ask(
                request,
                SIDES[(first - 1) % 2],
                Swing(game_id=game_id, stroke=first, count=(last - first) // 2 + 1),
                limits,
                clock,
                sleep,
            )
            for first in range(n, min(n + 2, last + 1))
        }
        try:
            if n == 1 and on_start is not None:
                await on_start()
            for k in range(n, last + 1):
                ask = asks[SIDES[(k - 1) % 2]]
                reply = await ask.task
                stroke = Stroke(
                    stroke=k,
                    side=ask.side,
                    instance=reply.instance,
                    result=reply.results[(k - ask.first) // 2],
                    latency_ms=ask.latency_ms,
                    attempts=ask.attempts,
                )
                strokes.append(stroke)
                if on_stroke is not None:
                    await on_stroke(stroke)
                if stroke.result is Result.MISS:
                    winner = other(ask.side)
                    winner_instance = strokes[-2].instance if len(strokes) > 1 else None
                    break
        finally:
            for ask in asks.values():
                ask.settle()
        n = last + 1
    return Game(
        game_id=game_id,
        strokes=tuple(strokes),
        winner=winner,
        winner_instance=winner_instance,
        manager=manager,
        duration_ms=(clock() - start) * 1000,
        started_at=started_at,
    )
