"""Folding rally events into scores: pure, no I/O.

The results are read by kind (one reader for ``finished`` events, one for
``aborted``), and the tally is stored with the last stream sequence each reader
folded in, so whoever reads the log again skips what is already counted
(exactly-once across restarts). The same game id counts once: ``recent``
remembers the last ``RECENT_IDS`` games counted, which covers any retried
publish the stream's duplicate window let through.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final, Literal

from pydantic import Field

from pingpong.messages import (
    GameSummary,
    Message,
    RallyAborted,
    RallyEvent,
    RallyFinished,
    Scores,
)

LAST_GAMES: Final = 20
"""Recent games shown on the scoreboard."""

RECENT_IDS: Final = 1000
"""Game ids remembered to drop a game counted twice."""


ResultKind = Literal["finished", "aborted"]
"""The events that change the scores; each is read by a consumer of its own."""

RESULT_KINDS: Final[tuple[ResultKind, ...]] = ("finished", "aborted")


class Tally(Message):
    """What the scoreboard stores: the scores, the ids of the games counted last, and how
    far each kind of result has been read."""

    scores: Scores = Field(default_factory=Scores)
    recent: tuple[str, ...] = Field(default=(), description="Newest last.")
    read: dict[ResultKind, int] = Field(
        default_factory=dict,
        description="The last stream sequence folded in, by kind of result "
        "(missing: ``scores.last_seq``, as a tally from before the readers split).",
    )
    stream: datetime | None = Field(
        default=None,
        description="When the event log whose sequences these are was made: a log made "
        "since (its store came back empty) starts its sequences anew.",
    )

    def cursor(self, kind: ResultKind) -> int:
        """The last stream sequence of a ``kind`` event folded in."""
        return self.read.get(kind, self.scores.last_seq)

    def rewound(self, last_seq: int, stream: datetime | None = None) -> Tally:
        """The same scores, every cursor at ``last_seq`` at the most, of the log made at
        ``stream`` (a log that went back to end there is read on from its end)."""
        read = {kind: min(self.cursor(kind), last_seq) for kind in RESULT_KINDS}
        scores = self.scores.model_copy(update={"last_seq": min(self.scores.last_seq, last_seq)})
        return Tally(scores=scores, recent=self.recent, read=read, stream=stream or self.stream)


def fold(tally: Tally, event: RallyEvent | None, seq: int, kind: ResultKind = "finished") -> Tally:
    """The tally after the event at stream sequence ``seq`` (unchanged if already counted)."""
    return fold_all(tally, [(event, seq)], kind)


def fold_all(
    tally: Tally, events: Iterable[tuple[RallyEvent | None, int]], kind: ResultKind = "finished"
) -> Tally:
    """The tally after a batch of ``(event, stream sequence)`` that the ``kind`` reader got,
    in stream order.

    Events at or below that reader's sequence are skipped, a game id already counted
    counts once, and ``None`` (an event that could not be read) only moves the sequence.
    ``scores.last_seq`` is the furthest any reader has got.
    """
    s = tally.scores
    first_seq = last_seq = tally.cursor(kind)
    games, draws, aborted = s.games, s.draws, s.aborted
    total, longest = s.total_strokes, s.longest_rally
    wins, by_instance = dict(s.wins), dict(s.wins_by_instance)
    recent = list(tally.recent)
    counted = set(recent)
    counted_now: list[RallyFinished | RallyAborted] = []  # oldest first
    for event, seq in events:
        if seq <= last_seq:
            continue
        last_seq = seq
        if isinstance(event, RallyFinished):
            game = event.game
            if game.game_id in counted:
                continue
            strokes = len(game.strokes)
            games += 1
            total += strokes
            longest = max(longest, strokes)
            if game.winner is None:
                draws += 1
            else:
                wins[game.winner] = wins.get(game.winner, 0) + 1
                if game.winner_instance:
                    by_instance[game.winner_instance] = by_instance.get(game.winner_instance, 0) + 1
            game_id = game.game_id
        elif isinstance(event, RallyAborted):
            if event.game_id in counted:
                continue
            aborted += 1
            game_id = event.game_id
        else:  # started and swing events (and unreadable ones) do not change the scores
            continue
        counted.add(game_id)
        recent.append(game_id)
        counted_now.append(event)
    if last_seq == first_seq:
        return tally
    read = {**{k: tally.cursor(k) for k in RESULT_KINDS}, kind: last_seq}
    update: dict[str, object] = {"last_seq": max(s.last_seq, last_seq)}
    if counted_now:
        summaries = [summary(event) for event in counted_now[-LAST_GAMES:]]  # only those shown
        update.update(
            games=games,
            draws=draws,
            aborted=aborted,
            total_strokes=total,
            longest_rally=longest,
            average_rally=round(total / games, 3) if games else 0.0,
            wins=wins,
            wins_by_instance=by_instance,
            last_games=(*reversed(summaries[-LAST_GAMES:]), *s.last_games)[:LAST_GAMES],
        )
    return Tally(
        scores=s.model_copy(update=update),
        recent=tuple(recent[-RECENT_IDS:]),
        read=read,
        stream=tally.stream,
    )


def summary(event: RallyFinished | RallyAborted) -> GameSummary:
    """The scoreboard's line for a counted game."""
    if isinstance(event, RallyAborted):
        return GameSummary(
            game_id=event.game_id,
            outcome="aborted",
            strokes=event.strokes,
            manager=event.manager,
            at=event.at,
        )
    game = event.game
    return GameSummary(
        game_id=game.game_id,
        outcome="draw" if game.winner is None else "win",
        winner=game.winner,
        strokes=len(game.strokes),
        manager=game.manager,
        at=game.started_at,
    )


def missed(delivered: int, sequences: Sequence[int]) -> int | None:
    """The first delivery sequence that never arrived, or None.

    ``delivered`` is the consumer's delivery sequence of the last event that arrived
    (0 before the first); ``sequences`` those of a fetched batch, in order.
    """
    expected = delivered + 1
    for seq in sequences:
        if seq != expected:
            return expected
        expected += 1
    return None
