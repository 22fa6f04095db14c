"""The end of a game as a state machine, apart from I/O.

A game is answered once, and only once its final event (``finished`` or ``aborted``)
is in the event log, so the scores count every game a requester was told of. This
machine says what the manager does next; it never sends or waits, and is tested on
its own with no event loop (``tests/unit/test_ending.py``).

::

    PLAYING ──finish / abort──► STORING ──stored──► ANSWERED   (answer: the game or the error)
       │                          ▲  ▲  └─not_stored, past STORE_TIMEOUT──► ANSWERED (503)
       │ finish, early asked      │  └─not_stored: retry_due after STORE_RETRY (tries again)
       ▼                          │
    ANSWERED_EARLY ──stored──► ANSWERED  (forget: the requester heard that ack)
       └─not_stored, early_not_sent──┘   (the requester waits for the answer again)

    fail (a bug, or NATS lost after the rally): any phase but ANSWERED ──► ANSWERED (the error)

An early answer (``pingpong.early``) is asked for by the requester; it is given for a
finished game with the first try to store it through the log, and the stream's ack of
that try goes to the requester too, which hands the game on if it says stored. The game
is ANSWERED_EARLY from the moment that try is decided, before either is sent, so its
ack is read as the early answer's whatever comes first. If that ack says otherwise, or
the early answer could not be sent, the game goes back to STORING and is answered again
once stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

STORE_RETRY: Final = 0.25
"""Seconds between two tries to store a final event."""


class Phase(StrEnum):
    """Where a game is between its first swing and its answer."""

    PLAYING = "playing"
    """The rally goes on; answers of the players count."""
    STORING = "storing"
    """The final event is on its way to the log; the requester has no answer yet."""
    ANSWERED_EARLY = "answered early"
    """The requester has the game; the log's ack of the first try reaches it too."""
    ANSWERED = "answered"
    """Answered once (or the requester has all it needs); the game is forgotten."""


@dataclass(frozen=True, slots=True)
class Store:
    """Store the final event through the log now."""

    early: bool = False
    """Answer early: the stream's ack goes to the requester too, and the game goes with it."""


@dataclass(frozen=True, slots=True)
class RetryStore:
    """Store it again after ``delay`` seconds (then call :meth:`Ending.retry_due`)."""

    delay: float


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer the requester: ``game`` (its JSON) if there is one, else ``error``; forget."""

    game: bytes | None
    error: tuple[int, str]


@dataclass(frozen=True, slots=True)
class Forget:
    """The requester has what it needs: forget the game, send nothing."""


Action = Store | RetryStore | Answer | Forget


class Ending:
    """The end of one game: when its final event is stored and how it is answered."""

    __slots__ = ("answer", "deadline", "error", "phase", "retry", "store_timeout", "tries", "wants")

    def __init__(
        self, *, early: bool = False, store_timeout: float = 20.0, retry: float = STORE_RETRY
    ) -> None:
        self.wants = early
        """The requester asked for the game early."""
        self.store_timeout = store_timeout
        self.retry = retry
        self.phase = Phase.PLAYING
        self.answer: bytes | None = None
        """The game's JSON once it is finished (None for an aborted game)."""
        self.error: tuple[int, str] = (503, "")
        """The answer when there is no game: status code and reason."""
        self.deadline = 0.0
        """Until when a failed store is tried again (the clock of ``now``)."""
        self.tries = 0
        """Tries to store the final event so far."""

    @property
    def playing(self) -> bool:
        """True while the rally goes on (answers of the players count)."""
        return self.phase is Phase.PLAYING

    def finish(self, game: bytes, now: float, *, logged: bool = True) -> Store | None:
        """The rally is over and ``game`` is its JSON: store the finished event.

        ``logged``: it goes through the log (else core NATS, and no early answer).
        None if the game had already ended otherwise.
        """
        if self.phase is not Phase.PLAYING:
            return None
        self.answer = game
        return self._store(now, early=self.wants and logged)

    def abort(self, code: int, reason: str, now: float) -> Store | None:
        """Give the game up (a side never answered, it timed out, NATS went away):
        store the aborted event, then answer ``code``. None if it had already ended."""
        if self.phase is not Phase.PLAYING:
            return None
        self.error = (code, reason)
        return self._store(now, early=False)

    def _store(self, now: float, *, early: bool) -> Store:
        self.phase = Phase.ANSWERED_EARLY if early else Phase.STORING
        self.deadline = now + self.store_timeout
        self.tries = 1
        return Store(early=early)

    def early_not_sent(self) -> None:
        """The early answer could not be sent (after :class:`Store` ``early``): the game
        is answered once stored, as without it."""
        if self.phase is Phase.ANSWERED_EARLY:
            self.phase = Phase.STORING

    def stored(self) -> Answer | Forget | None:
        """The log acked the final event as stored."""
        if self.phase is Phase.ANSWERED_EARLY:  # the requester heard this same ack
            self.phase = Phase.ANSWERED
            return Forget()
        if self.phase is not Phase.STORING:
            return None
        return self._answer()

    def not_stored(self, now: float, why: str) -> Answer | RetryStore | None:
        """A try to store the final event failed (an error, no stream, or no ack in time):
        try again, or past the deadline answer 503 with ``why``."""
        if self.phase not in (Phase.STORING, Phase.ANSWERED_EARLY):
            return None
        self.phase = Phase.STORING  # an early answer's requester waits for the answer again
        if now < self.deadline:
            return RetryStore(self.retry)
        if self.answer is not None:  # an aborted game keeps its own reason
            self.answer, self.error = None, (503, why)
        return self._answer()

    def retry_due(self) -> Store | None:
        """The time to try storing again has come."""
        if self.phase is not Phase.STORING:
            return None
        self.tries += 1
        return Store(early=False)

    def fail(self, code: int, reason: str) -> Answer | None:
        """Answer ``code`` now, whatever the game was doing (a bug in the manager, or NATS
        lost after the rally). None if it was answered already."""
        if self.phase is Phase.ANSWERED:
            return None
        self.answer, self.error = None, (code, reason)
        return self._answer()

    def _answer(self) -> Answer:
        self.phase = Phase.ANSWERED
        return Answer(self.answer, self.error)
