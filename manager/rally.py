"""The rally loop, apart from I/O: it asks a requester for the swings.

``play_game`` is tested against a fake requester; the service passes one that
sends NATS requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from pingpong.errors import GameAbortedError, UnansweredError
from pingpong.messages import (
    DEFAULT_MAX_ROUNDS,
    DEFAULT_SWINGS_AHEAD,
    Game,
    Result,
    Stroke,
    Swing,
    SwingReply,
    game_json,
    now,
    stroke_json,
)
from pingpong.subjects import SIDES, Side

Answer = tuple[SwingReply, float]
"""A reply and when it came, on the rally's clock (``time.perf_counter``)."""

Requester = Callable[[Side, Swing], Awaitable[Answer]]
"""Sends one swing to a side and returns the answer; raises :class:`UnansweredError`.

A requester that returns a future (the manager's batcher) costs no task per request."""


class Play(NamedTuple):
    """One stroke as played: the fields of :class:`Stroke`, without building the model."""

    stroke: int
    side: Side
    instance: str
    result: Result
    latency_ms: float
    attempts: int

    def json(self) -> bytes:
        """``encode(Stroke(...))`` of this stroke."""
        return stroke_json(*self)


StrokeSink = Callable[[Play], Awaitable[None]]
"""Called with every stroke as soon as it is played (the manager publishes it)."""


@dataclass(frozen=True, slots=True)
class Played:
    """A game as played: what :class:`Game` holds, written only when it is sent."""

    game_id: str
    manager: str
    strokes: tuple[Play, ...]
    winner: Side | None
    winner_instance: str | None
    duration_ms: float
    started_at: datetime

    def json(self, strokes: Iterable[bytes] | None = None) -> bytes:
        """``encode(self.model())``; ``strokes`` is the strokes' JSON if it is already written."""
        return game_json(
            self.game_id,
            strokes if strokes is not None else (play.json() for play in self.strokes),
            self.winner,
            self.winner_instance,
            self.manager,
            self.duration_ms,
            self.started_at,
        )

    def model(self) -> Game:
        """The game as its message."""
        return Game(
            game_id=self.game_id,
            strokes=tuple(Stroke(**play._asdict()) for play in self.strokes),
            winner=self.winner,
            winner_instance=self.winner_instance,
            manager=self.manager,
            duration_ms=self.duration_ms,
            started_at=self.started_at,
        )


def ms(seconds: float) -> float:
    """Milliseconds, rounded to the microsecond (what the JSON writers expect)."""
    return round(seconds * 1000, 3)


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
    """One side's swings of a round: the request out, its retries, the reply's latency and tries."""

    __slots__ = (
        "attempts",
        "clock",
        "first",
        "latency_ms",
        "limits",
        "pending",
        "reply",
        "request",
        "sent",
        "side",
        "sleep",
        "swing",
    )

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
        self.swing = swing
        self.request = request
        self.limits = limits
        self.clock = clock
        self.sleep = sleep
        self.attempts = 1
        self.sent = clock()
        self.pending: asyncio.Future[Answer] = asyncio.ensure_future(request(side, swing))
        self.reply: SwingReply | None = None
        self.latency_ms = 0.0

    async def answer(self) -> SwingReply:
        """The reply; a request that fails or does not fit is sent again (with backoff)."""
        side, swing, limits = self.side, self.swing, self.limits
        while self.reply is None:
            try:
                reply, at = await self.pending
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
                await self.sleep(min(limits.backoff * 2 ** (self.attempts - 1), limits.max_backoff))
                self.attempts += 1
                self.sent = self.clock()
                self.pending = asyncio.ensure_future(self.request(side, swing))
                continue
            self.latency_ms = ms(at - self.sent)
            self.reply = reply
        return self.reply

    def settle(self) -> None:
        """Cancel the request if it is still out; collect what it raised if it is done."""
        if not self.pending.done():
            self.pending.cancel()
        elif not self.pending.cancelled():
            self.pending.exception()


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
) -> Played:
    """Play one game to a winner or a draw; raise :class:`GameAbortedError` if a side is gone.

    Strokes are asked for ``limits.ahead`` at a time: both sides get one request for
    their strokes of the round, at once. The game is the strokes up to the first MISS.
    ``on_start`` is awaited once the first swings are on their way (the manager publishes
    the started event then, so both leave in one write to the socket).
    """
    start = clock()
    started_at = started_at or now()
    strokes: list[Play] = []
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
                reply = ask.reply if ask.reply is not None else await ask.answer()
                stroke = Play(
                    k,
                    ask.side,
                    reply.instance,
                    reply.results[(k - ask.first) // 2],
                    ask.latency_ms,
                    ask.attempts,
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
    return Played(
        game_id, manager, tuple(strokes), winner, winner_instance, ms(clock() - start), started_at
    )
