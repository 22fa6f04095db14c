"""The rally as a state machine, apart from I/O.

A :class:`Rally` says which swings to ask for (:meth:`Rally.next_asks`), turns
each answer into the strokes it makes playable (:meth:`Rally.answer`) and says
how long to wait before asking a side again (:meth:`Rally.failed`). It never
sends or waits: the manager does, for many games at once, and this is tested
on its own with no event loop.
"""

from __future__ import annotations

from collections.abc import Iterable
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
)
from pingpong.subjects import SIDES, Side
from pingpong.wire import game_json, stroke_json


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
    """Rounds without a miss after which the game is a draw; a round is a PING stroke and
    a PONG stroke, as in the original (99 rounds: a draw is 198 strokes)."""

    retries: int = 15
    """More requests of a swing that a player took and did not answer in time, before
    the game is given up: enough to outlast nats-server noticing that a lost node's
    players are gone from their queue group (each request may reach one of them)."""

    empty_retries: int = 12
    """More requests of a swing that failed at once (no player serves the side, or the
    answer was broken), before the game is given up: with the backoff, about 4 s, long
    enough for a player whose NATS server went away to reconnect to another."""

    backoff: float = 0.02
    """Seconds before asking again after a request failed at once; doubled each time."""

    max_backoff: float = 0.5
    """Seconds at most between two such requests."""

    ahead: int = DEFAULT_SWINGS_AHEAD
    """Strokes asked for at once, split between the sides (1: one swing at a time)."""

    @property
    def max_strokes(self) -> int:
        """Strokes without a miss after which the game is a draw: two a round."""
        return 2 * self.max_rounds


def other(side: Side) -> Side:
    """The opponent of ``side``."""
    return "pong" if side == "ping" else "ping"


class Ask:
    """One side's swings asked at once: strokes ``first``, ``first + 2``, ... (``count``)."""

    __slots__ = ("attempts", "count", "first", "latency_ms", "results", "sent", "side")

    def __init__(self, side: Side, first: int, count: int, sent: float) -> None:
        self.side = side
        self.first = first
        self.count = count
        self.sent = sent
        """When the request left (the rally's clock), for the strokes' latency."""
        self.attempts = 1
        self.results: tuple[Result, ...] | None = None
        self.latency_ms = 0.0


class Rally:
    """One game's rally: ask both sides for their next strokes, play the answers in order.

    Strokes are asked for ``limits.ahead`` at a time: each side gets one request for its
    strokes asked this time. A stroke is played once its side has answered, in stroke order,
    so the strokes come out in order whichever side answers first. The game is the strokes
    up to the first MISS (the other side's answer is then not waited for), or a draw after
    ``limits.max_rounds`` rounds (:attr:`Limits.max_strokes`).
    """

    __slots__ = (
        "_asks",
        "_instance",
        "_last",
        "_next",
        "game_id",
        "limits",
        "over",
        "strokes",
        "winner",
        "winner_instance",
    )

    def __init__(self, game_id: str, limits: Limits) -> None:
        self.game_id = game_id
        self.limits = limits
        self.strokes: list[Play] = []
        self.winner: Side | None = None
        self.winner_instance: str | None = None
        self.over = False
        """True once a side missed or the cap was reached."""
        self._next = 1  # the next stroke to play
        self._last = 0  # the last stroke asked for so far
        self._asks: dict[Side, Ask] = {}
        self._instance: dict[Side, str] = {}

    def next_asks(self, now: float) -> list[Ask]:
        """The next requests (one per side, one near the cap); [] while some are out or when
        over."""
        if self.over or self._next <= self._last:
            return []
        n = self._next
        last = self._last = min(n + self.limits.ahead - 1, self.limits.max_strokes)
        asks = [
            Ask(SIDES[(first - 1) % 2], first, (last - first) // 2 + 1, now)
            for first in range(n, min(n + 2, last + 1))
        ]
        self._asks = {ask.side: ask for ask in asks}
        return asks

    def waits_for(self, ask: Ask) -> bool:
        """True while ``ask`` is one of the latest requests and has no answer yet."""
        return not self.over and ask.results is None and self._asks.get(ask.side) is ask

    def answer(self, ask: Ask, instance: str, results: tuple[Result, ...], at: float) -> list[Play]:
        """Take a side's answer (``at``: when it came); the strokes it makes playable, in order.

        Raises :class:`UnansweredError` if the answer does not fit the request (the caller
        then treats it as unanswered: :meth:`failed`).
        """
        n = len(results)
        if n > ask.count or (n < ask.count and results[-1] is not Result.MISS):
            raise UnansweredError(f"a {ask.side} player answered {n} of {ask.count} swings")
        ask.results = results
        ask.latency_ms = ms(at - ask.sent)
        self._instance[ask.side] = instance
        return self._play()

    def _play(self) -> list[Play]:
        played: list[Play] = []
        while self._next <= self._last:
            k = self._next
            side = SIDES[(k - 1) % 2]
            ask = self._asks[side]
            if ask.results is None:
                break
            result = ask.results[(k - ask.first) // 2]
            play = Play(k, side, self._instance[side], result, ask.latency_ms, ask.attempts)
            self.strokes.append(play)
            played.append(play)
            self._next = k + 1
            if result is Result.MISS:
                self.over = True
                self.winner = other(side)
                self.winner_instance = self.strokes[-2].instance if len(self.strokes) > 1 else None
                return played
        if self._next > self.limits.max_strokes:
            self.over = True  # a draw
        return played

    def failed(self, ask: Ask, why: UnansweredError) -> float:
        """``ask`` went unanswered: seconds to wait before asking again (its ``attempts``
        counts the next request).

        A request that timed out is asked again at once (the wait was its timeout), and
        its own answer still counts if it comes first: a hedge, not a retry. One that
        failed at once is asked again after a backoff. Raises :class:`GameAbortedError`
        once the side has had ``limits.retries`` more requests (``limits.empty_retries``
        when the last failed at once).
        """
        limits = self.limits
        if ask.attempts > (limits.retries if why.timed_out else limits.empty_retries):
            raise GameAbortedError(
                f"no {ask.side} player answered stroke {ask.first} "
                f"({ask.attempts} tries, last: {why.reason})"
            )
        ask.attempts += 1
        if why.timed_out:
            return 0.0
        delay: float = min(limits.backoff * 2.0 ** (ask.attempts - 2), limits.max_backoff)
        return delay

    def played(self, manager: str, duration_ms: float, started_at: datetime) -> Played:
        """The game as played so far (whole once :attr:`over`)."""
        return Played(
            self.game_id,
            manager,
            tuple(self.strokes),
            self.winner,
            self.winner_instance,
            duration_ms,
            started_at,
        )
