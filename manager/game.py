"""One game in the manager: its rally, its end, and whom to answer."""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

from manager.ending import Ending
from manager.rally import Ask, Rally
from pingpong import subjects
from pingpong.messages import now


class Game:
    """A game in play: a :class:`Rally`, an :class:`Ending`, and what it takes to publish
    and answer it. No task or future of its own: the answers of the players move it on."""

    __slots__ = (
        "ending",
        "final",
        "game_id",
        "pulse",
        "rally",
        "reply",
        "start",
        "started_at",
        "strokes",
        "swing_subject",
        "timer",
    )

    def __init__(
        self, game_id: str, rally: Rally, ending: Ending, reply: str | None, pulse: str | None
    ) -> None:
        self.game_id = game_id
        self.rally = rally
        self.ending = ending
        self.reply = reply
        """Where the game is answered (None: nobody waits for it)."""
        self.pulse = pulse
        """Its heartbeats' key, if the requester asked for them."""
        self.start = time.perf_counter()
        self.started_at = now()
        self.strokes: list[bytes] = []  # their JSON, written once for the events and the game
        self.swing_subject = subjects.rally_subject(game_id, "swing")
        self.timer: asyncio.TimerHandle | None = None
        """Its ``GAME_TIMEOUT``, cancelled when the rally ends."""
        self.final: tuple[subjects.EventKind, bytes] | None = None
        """Its final event, once it has one: the kind and the event's JSON."""

    @property
    def final_kind(self) -> str:
        """``finished`` or ``aborted`` (``final`` before it has a final event)."""
        return self.final[0] if self.final else "final"

    def waits_for(self, ask: Ask) -> bool:
        """True while the game is played and ``ask`` has no answer yet."""
        return self.ending.playing and self.rally.waits_for(ask)

    def stop_clock(self) -> None:
        """The rally is over (or given up): no more ``GAME_TIMEOUT``."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Asked(NamedTuple):
    """A game's request to one side (an item of a batch of swings)."""

    game: Game
    ask: Ask


def still_asked(item: Asked) -> bool:
    """True while the game still waits for an answer to this request."""
    return item.game.waits_for(item.ask)
