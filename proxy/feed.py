"""What the viewers of the live feed get, as state machines apart from I/O.

The proxy takes every rally event once (one subscription, ``proxy.live``) and hands it
to one :class:`Feed`, which decides what the viewers of the whole feed (``GET /events``)
see; each viewer has a :class:`~proxy.pace.Pace`, which decides whether it is sent a
batch, skips it or is let go. Neither sends nor waits: they are driven by hand in
``tests/unit/test_feed.py`` with no event loop.

**Sampling.** A game is taken or skipped at its ``started`` event: taken when the
budget (a token bucket of ``FEED_RATE`` events a second, one second deep) holds the
events a game is expected to have (the mean of the games shown lately), which it is
charged then, so at a high game rate the feed shows some games and counts the rest as
skipped, and many games starting at once take no more than the budget covers. A game
longer than expected costs a token an event past that; one shorter gives the rest
back. A taken game's every event goes out, but only once the game has ended:
its frames are held until ``finished`` or ``aborted`` and then sent together, so a
rally is shown whole or not at all (one too long to read, or that never ends, is
dropped and counted as skipped). A game whose ``started`` came before the subscription
is never taken.

**Batches.** Every :data:`FLUSH` seconds :meth:`Feed.tick` gives one batch, the same
bytes for every viewer: the rallies that ended, a ``sampling`` event every
:data:`SAMPLING_EVERY` seconds while games come, and the newest ``scores``. A batch
holds whole rallies only, so a viewer that skips one misses whole games.

**Scores.** The scores tick at most every :data:`SCORES_EVERY` seconds, and only when
results came in::

    QUIET ──result──► DUE ──tick, SCORES_EVERY after the last fetch──► FETCHING
      ▲                ▲                                              │
      │                └─ fetched, a result in the SETTLE before it ◄─┤  (or failed:
      └──────────────── fetched, no result in the SETTLE before it ◄──┘   DUE, retried)

A result is folded by the scoreboard a moment after its event, so a fetch that began
less than :data:`SETTLE` seconds after the last result is followed by one more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

KINDS: Final = frozenset({"started", "swing", "finished", "aborted"})
"""The event kinds of ``rally.<game_id>.<kind>``; others are not relayed."""

ENDS: Final = frozenset({"finished", "aborted"})
"""The kinds that end a game (the results)."""

FLUSH: Final = 0.5
"""Seconds between two batches to the viewers. A write costs the proxy about 16 µs
whatever its size (the system call, and loopback's delivery, more than aiohttp): with
1,000 viewers two batches a second cost 3 % of a core, four twice that."""

SCORES_EVERY: Final = 0.5
"""Seconds at least between two ``scores.get`` for the feed."""

SETTLE: Final = 0.5
"""Seconds a result may take to be folded into the scores after its event."""

SCORES_RETRY: Final = 2.0
"""Seconds before the scores are asked for again after a failed ``scores.get``."""

SAMPLING_EVERY: Final = 1.0
"""Seconds a ``sampling`` event covers."""

RALLY_BYTES: Final = 32 * 1024
"""Bytes of a taken game's frames past which it is dropped (too long to read; about
150 strokes: a game of the default 85 % HIT chance has 7 on average)."""

RALLY_TIMEOUT: Final = 60.0
"""Seconds a taken game may go without its end before it is dropped."""

GAME_EVENTS: Final = 4.0
"""Events a game is expected to have before any was shown (started, two swing events,
its end); then the mean of the games shown, weighted to the last :data:`COST_WEIGHT`."""

COST_WEIGHT: Final = 8
"""Games the expected events of a game follow (an exponential mean)."""

OPEN_RALLIES: Final = 32
"""Taken games not yet ended, at most; a game started beyond them is skipped."""

BATCH_BYTES: Final = 64 * 1024
"""Bytes of rallies in one batch at most; the rest wait for the next."""

READY_BYTES: Final = 2 * BATCH_BYTES
"""Bytes of ended rallies waiting for a batch at most; a rally beyond is dropped."""

HELLO: Final = b"retry: 2000\n: connected\n\n"
"""The first bytes of every stream: the reconnect delay for ``EventSource``, and a comment."""

KEEPALIVE: Final = b": keep-alive\n\n"
"""A comment that keeps a quiet stream open through proxies."""


def frame(kind: str, data: bytes) -> bytes:
    """One server-sent event; every line of ``data`` gets its own ``data:`` field."""
    lines = b"".join(b"data: " + line + b"\n" for line in data.split(b"\n"))
    return b"event: " + kind.encode() + b"\n" + lines + b"\n"


class ScoresPhase(StrEnum):
    """Where the feed's scores are between two results."""

    QUIET = "quiet"
    """Every result is in the scores last sent: nothing to ask for."""
    DUE = "due"
    """Results came in since: ask at the first tick :data:`SCORES_EVERY` after the last."""
    FETCHING = "fetching"
    """A ``scores.get`` is out."""


@dataclass(frozen=True, slots=True)
class Tick:
    """What to do at a tick: send ``batch`` to every viewer of the feed, ask for scores."""

    batch: bytes
    """The same bytes for every viewer (empty: nothing to send)."""
    events: int
    """Server-sent events in ``batch`` (what a viewer that skips it misses)."""
    fetch_scores: bool
    """Ask the scoreboard now, then call :meth:`Feed.scores` or :meth:`Feed.scores_failed`."""
    skipped: int
    """Games skipped since the last tick (not taken, or dropped)."""


class _Rally:
    """A taken game's frames until its end."""

    __slots__ = ("charged", "frames", "since", "size")

    def __init__(self, first: bytes, now: float, charged: float) -> None:
        self.frames = [first]
        self.size = len(first)
        self.since = now
        self.charged = charged
        """Tokens taken at its start, for as many events."""


class Feed:
    """The whole feed of one proxy: which games are shown, and when the scores tick."""

    __slots__ = (
        "_cost",
        "_fetch_started",
        "_games",
        "_last_result",
        "_next_fetch",
        "_noted",
        "_open",
        "_rate",
        "_ready",
        "_ready_bytes",
        "_scores",
        "_scores_frame",
        "_shown",
        "_skipped",
        "_skipped_since_tick",
        "_tokens",
        "_updated",
        "_window_start",
        "phase",
    )

    def __init__(self, rate: float, now: float) -> None:
        self._rate = rate
        self._cost = GAME_EVENTS
        """Events a game is expected to have: the mean of the games shown lately."""
        self._tokens = max(rate, self._cost)
        """The budget, in events; a game is taken when it covers the game's expected cost."""
        self._updated = now
        self._open: dict[str, _Rally] = {}
        """Taken games not yet ended, by game id."""
        self._ready: list[tuple[bytes, int]] = []
        """Ended taken games' frames and their number of events, waiting for a batch."""
        self._ready_bytes = 0
        self._window_start = now
        self._games = 0
        """Games started in this sampling window."""
        self._shown = 0
        """Games sent whole in this window."""
        self._skipped = 0
        """Games not shown in this window (not taken, or dropped)."""
        self._skipped_since_tick = 0
        self._noted = False
        """The last ``sampling`` event said games were skipped (the next says if not)."""
        self.phase = ScoresPhase.QUIET
        self._last_result = float("-inf")
        self._fetch_started = float("-inf")
        self._next_fetch = float("-inf")
        self._scores = b""
        """The scores last sent (the same again is not sent)."""
        self._scores_frame = b""
        """The newest scores' frame, for the next batch."""

    @property
    def open_games(self) -> int:
        """Taken games not yet ended."""
        return len(self._open)

    def event(self, game: str, kind: str, data: bytes, now: float) -> None:
        """Event ``rally.<game>.<kind>`` with payload ``data`` came in at ``now``."""
        if kind == "started":
            self._started(game, data, now)
            return
        if kind in ENDS:
            self._result(now)
        elif kind != "swing":
            return
        rally = self._open.get(game)
        if rally is None:
            return
        part = frame(kind, data)
        rally.frames.append(part)
        rally.size += len(part)
        events = len(rally.frames)
        if events > rally.charged:  # longer than expected: it costs as it goes
            self._tokens -= 1
        if rally.size > RALLY_BYTES:
            self._drop(game)
        elif kind in ENDS:
            del self._open[game]
            self._tokens += max(0.0, rally.charged - events)  # shorter: the rest back
            self._cost += (events - self._cost) / COST_WEIGHT
            if self._ready_bytes + rally.size > READY_BYTES:
                self._skip()
                return
            self._ready.append((b"".join(rally.frames), events))
            self._ready_bytes += rally.size
            self._shown += 1

    def _started(self, game: str, data: bytes, now: float) -> None:
        self._games += 1
        if game in self._open:  # the same id again: the first one never ended
            self._drop(game)
        cost = self._cost
        burst = max(self._rate, cost)  # a second's worth, and at least one game's
        self._tokens = min(burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens < cost or len(self._open) >= OPEN_RALLIES:
            self._skip()
            return
        self._tokens -= cost
        self._open[game] = _Rally(frame("started", data), now, cost)

    def _skip(self) -> None:
        self._skipped += 1
        self._skipped_since_tick += 1

    def _drop(self, game: str) -> None:
        """A taken game will not be shown after all."""
        del self._open[game]
        self._skip()

    def _result(self, now: float) -> None:
        self._last_result = now
        if self.phase is ScoresPhase.QUIET:
            self.phase = ScoresPhase.DUE

    def lost(self) -> None:
        """Events may have been lost (the subscription was slow, or ended): every taken
        game not yet ended is dropped, as it could not be shown whole."""
        for game in list(self._open):
            self._drop(game)

    def tick(self, now: float) -> Tick:
        """Every :data:`FLUSH` seconds: the batch for the viewers, and whether to fetch
        the scores."""
        for game, taken in list(self._open.items()):
            if now - taken.since > RALLY_TIMEOUT:
                self._drop(game)
        parts: list[bytes] = []
        size = events = 0
        while self._ready and (not parts or size + len(self._ready[0][0]) <= BATCH_BYTES):
            rally, count = self._ready.pop(0)
            parts.append(rally)
            size += len(rally)
            events += count
        self._ready_bytes -= size
        if now - self._window_start >= SAMPLING_EVERY:
            note = self._sampling(now)
            if note:
                parts.append(note)
                events += 1
        if self._scores_frame:
            parts.append(self._scores_frame)
            self._scores_frame = b""
            events += 1
        fetch = self.phase is ScoresPhase.DUE and now >= self._next_fetch
        if fetch:
            self.phase = ScoresPhase.FETCHING
            self._fetch_started = now
        skipped, self._skipped_since_tick = self._skipped_since_tick, 0
        return Tick(b"".join(parts), events, fetch, skipped)

    def _sampling(self, now: float) -> bytes:
        """The ``sampling`` event of the window that ends now (none while no games come)."""
        games, shown, skipped = self._games, self._shown, self._skipped
        seconds = now - self._window_start
        self._window_start = now
        self._games = self._shown = self._skipped = 0
        if not games and not skipped and not self._noted:
            return b""
        self._noted = skipped > 0
        note = {"seconds": round(seconds, 3), "games": games, "shown": shown, "skipped": skipped}
        return frame("sampling", json.dumps(note, separators=(",", ":")).encode())

    def scores(self, data: bytes) -> None:
        """The scores came back (``scores.get``'s JSON): they go out in the next batch."""
        if self.phase is not ScoresPhase.FETCHING:
            return
        settled = self._last_result + SETTLE <= self._fetch_started
        self.phase = ScoresPhase.QUIET if settled else ScoresPhase.DUE
        self._next_fetch = self._fetch_started + SCORES_EVERY
        if data != self._scores:
            self._scores = data
            self._scores_frame = frame("scores", data)

    def scores_failed(self, now: float) -> None:
        """``scores.get`` failed (no scoreboard, a timeout): ask again later."""
        if self.phase is not ScoresPhase.FETCHING:
            return
        self.phase = ScoresPhase.DUE
        self._next_fetch = now + SCORES_RETRY
