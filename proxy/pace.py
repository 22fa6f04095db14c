"""Whether one viewer of the live feed keeps up, as a state machine apart from I/O.

Each viewer's pace::

    KEEPING ──backlog──► BEHIND ──backlog for STUCK_FOR──► DROPPED
       ▲                    │
       └──── no backlog ────┘

A viewer of the whole feed with bytes still waiting in the proxy for it skips the batch
(counted); one with bytes waiting for :data:`STUCK_FOR` seconds is let go. A viewer of
one game (``complete``) must miss nothing: it is sent every event while less than
:data:`GAME_BACKLOG` waits for it, and let go past that.

Driven by hand in ``tests/unit/test_feed.py``, as :class:`~proxy.feed.Feed` is.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

STUCK_FOR: Final = 10.0
"""Seconds bytes may wait in the proxy for a viewer before it is let go."""

GAME_BACKLOG: Final = 256 * 1024
"""Bytes that may wait in the proxy for a viewer of one game when it is sent more (a
long game's events come in a burst); past them it is let go, as it would miss events.
A viewer of the whole feed is sent nothing while anything waits for it."""

HEARTBEAT: Final = 15.0
"""Seconds a viewer may go without a byte before it is sent a keep-alive comment."""


class PacePhase(StrEnum):
    """Whether a viewer keeps up with what it is sent."""

    KEEPING = "keeping"
    """Nothing waits in the proxy for it."""
    BEHIND = "behind"
    """Bytes wait for it: a viewer of the whole feed skips batches meanwhile."""
    DROPPED = "dropped"
    """Behind for :data:`STUCK_FOR` seconds (or, for one game, past
    :data:`GAME_BACKLOG`): let go."""


class Verdict(StrEnum):
    """What to do with a batch (or a quiet tick) for one viewer."""

    SEND = "send"
    SKIP = "skip"
    DROP = "drop"


class Pace:
    """One viewer: is it sent the next batch, does it skip it, or is it let go?"""

    __slots__ = ("behind_since", "complete", "limit", "phase", "quiet_since")

    def __init__(self, now: float, *, complete: bool = False) -> None:
        self.complete = complete
        """A viewer of one game: it must miss nothing, so it is never skipped, only let go."""
        self.limit = GAME_BACKLOG if complete else 0
        """Bytes that may wait for it when it is sent more."""
        self.phase = PacePhase.KEEPING
        self.behind_since = 0.0
        self.quiet_since = now
        """When it was last sent anything."""

    def _stuck(self, backlog: int, now: float) -> bool:
        """Note ``backlog``; True once bytes have waited for :data:`STUCK_FOR` seconds."""
        if backlog <= 0:
            self.phase = PacePhase.KEEPING
            return False
        if self.phase is PacePhase.KEEPING:
            self.phase = PacePhase.BEHIND
            self.behind_since = now
        return now - self.behind_since >= STUCK_FOR

    def offer(self, backlog: int, now: float) -> Verdict:
        """A batch is ready; ``backlog``: bytes still waiting in the proxy for this viewer."""
        if self.phase is PacePhase.DROPPED:
            return Verdict.DROP
        stuck = self._stuck(backlog, now)
        if not stuck and backlog <= self.limit:
            self.quiet_since = now
            return Verdict.SEND
        if stuck or self.complete:
            self.phase = PacePhase.DROPPED
            return Verdict.DROP
        return Verdict.SKIP

    def idle(self, backlog: int, now: float) -> Verdict:
        """A tick with nothing for this viewer: SEND a keep-alive comment if it has been
        quiet :data:`HEARTBEAT` seconds, DROP it if bytes have waited for it
        :data:`STUCK_FOR` seconds, else SKIP (nothing to do)."""
        if self.phase is PacePhase.DROPPED:
            return Verdict.DROP
        if self._stuck(backlog, now):
            self.phase = PacePhase.DROPPED
            return Verdict.DROP
        if backlog <= 0 and now - self.quiet_since >= HEARTBEAT:
            self.quiet_since = now
            return Verdict.SEND
        return Verdict.SKIP
