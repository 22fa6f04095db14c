"""Messages made for the unit tests: a stroke, a game of strokes."""

from __future__ import annotations

from pingpong.messages import Game, Stroke, now


def stroke(n: int, side: str, result: str) -> Stroke:
    """Stroke ``n`` of ``side`` by its first player."""
    return Stroke(stroke=n, side=side, instance=f"{side}-1@h", result=result, latency_ms=0.5)


def game(*strokes: Stroke, winner: str | None) -> Game:
    """A game ``g1`` of these strokes."""
    return Game(
        game_id="g1",
        strokes=strokes,
        winner=winner,
        manager="manager-1@h",
        duration_ms=1.0,
        started_at=now(),
    )
