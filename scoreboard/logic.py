"""Folding rally events into scores: pure, no I/O.

The tally is stored with the last stream sequence it folded in, so whoever
reads the log again skips what is already counted (exactly-once across
restarts). The same game id counts once: ``recent`` remembers the last
``RECENT_IDS`` games counted, which covers any retried publish the stream's
duplicate window let through.
"""

from __future__ import annotations

from typing import Final

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


class Tally(Message):
    """What the scoreboard stores: the scores and the ids of the games counted last."""

    scores: Scores = Field(default_factory=Scores)
    recent: tuple[str, ...] = Field(default=(), description="Newest last.")


def fold(tally: Tally, event: RallyEvent, seq: int) -> Tally:
    """The tally after the event at stream sequence ``seq`` (unchanged if already counted)."""
    s = tally.scores
    if seq <= s.last_seq:
        return tally
    if isinstance(event, RallyFinished):
        game_id = event.game.game_id
    elif isinstance(event, RallyAborted):
        game_id = event.game_id
    else:  # started and swing events do not change the scores
        return tally.model_copy(update={"scores": s.model_copy(update={"last_seq": seq})})
    if game_id in tally.recent:
        return tally.model_copy(update={"scores": s.model_copy(update={"last_seq": seq})})
    update: dict[str, object] = {"last_seq": seq}
    if isinstance(event, RallyFinished):
        game = event.game
        strokes = len(game.strokes)
        games = s.games + 1
        total = s.total_strokes + strokes
        update.update(
            games=games,
            total_strokes=total,
            average_rally=round(total / games, 3),
            longest_rally=max(s.longest_rally, strokes),
        )
        if game.winner is None:
            update["draws"] = s.draws + 1
        else:
            update["wins"] = {**s.wins, game.winner: s.wins.get(game.winner, 0) + 1}
            if game.winner_instance:
                by = dict(s.wins_by_instance)
                by[game.winner_instance] = by.get(game.winner_instance, 0) + 1
                update["wins_by_instance"] = by
        summary = GameSummary(
            game_id=game_id,
            outcome="draw" if game.winner is None else "win",
            winner=game.winner,
            strokes=strokes,
            manager=game.manager,
            at=game.started_at,
        )
    else:
        assert isinstance(event, RallyAborted)
        update["aborted"] = s.aborted + 1
        summary = GameSummary(
            game_id=game_id,
            outcome="aborted",
            strokes=event.strokes,
            manager=event.manager,
            at=event.at,
        )
    update["last_games"] = (summary, *s.last_games)[:LAST_GAMES]
    return Tally(scores=s.model_copy(update=update), recent=(*tally.recent, game_id)[-RECENT_IDS:])
