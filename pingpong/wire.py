"""The hot messages' JSON written by hand: the bytes pydantic would write, without
building and validating a model for each.

The manager writes every stroke, swing request, event and game it sends; the players
write their replies (``players.service``). Each writer here is pinned to
``encode(Model(...))`` by a test (``tests/unit/test_wire.py``), so the contract stays
the models' in ``pingpong.messages``; this module is only how fast it is written.
Floats must be rounded to 3 decimals (the manager keeps microseconds): in
``[0, 1e16)`` Python's repr of such a float is the number pydantic writes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from pingpong.messages import SCHEMA_VERSION, SWING_EVENT_VERSION, Result
from pingpong.subjects import Side

__all__ = [
    "finished_event",
    "game_json",
    "game_request_json",
    "started_event",
    "stroke_json",
    "swing_batch_json",
    "swing_event",
    "swing_json",
]


def finished_event(game: bytes) -> bytes:
    """``encode(RallyFinished(game=...))`` from the game's JSON, without encoding it again."""
    return _FINISHED_HEAD + game + b"}"


_FINISHED_HEAD: Final = b'{"v":%d,"kind":"finished","game":' % SCHEMA_VERSION


def started_event(game_id: str, manager: str, max_rounds: int, at: datetime) -> bytes:
    """``encode(RallyStarted(...))`` of these fields, without building the model.

    ``game_id`` must be valid (it is one subject token, so it needs no JSON escaping).
    """
    return (
        f'{{"v":{SCHEMA_VERSION},"kind":"started","game_id":"{game_id}",'
        f'"manager":{_json_str(manager)},"max_rounds":{max_rounds},"at":"{_json_time(at)}"}}'
    ).encode()


def game_request_json(game_id: str, max_rounds: int | None = None) -> bytes:
    """``encode(GameRequest(game_id=..., max_rounds=...))`` of these fields.

    ``game_id`` must be valid (it is one subject token, so it needs no JSON escaping).
    """
    rounds = b"null" if max_rounds is None else b"%d" % max_rounds
    return b'{"v":%d,"game_id":"%s","max_rounds":%s}' % (
        SCHEMA_VERSION,
        game_id.encode(),
        rounds,
    )


def swing_json(game_id: str, stroke: int, count: int) -> bytes:
    """``encode(Swing(...))`` of these fields, without building the model."""
    return b'{"v":%d,"game_id":"%s","stroke":%d,"count":%d}' % (
        SCHEMA_VERSION,
        game_id.encode(),
        stroke,
        count,
    )


def swing_batch_json(swings: Iterable[tuple[str, int, int]]) -> bytes:
    """``encode(SwingBatch(...))`` of swings given as (game id, stroke, count)."""
    return b'{"v":%d,"swings":[%s]}' % (
        SCHEMA_VERSION,
        b",".join(swing_json(*swing) for swing in swings),
    )


def swing_event(game_id: str, strokes: Iterable[bytes]) -> bytes:
    """``encode(RallySwing(game_id=game_id, strokes=...))`` from the strokes' JSON.

    ``game_id`` must be valid (it is one subject token, so it needs no JSON escaping).
    """
    return b'%s%s","strokes":[%s]}' % (_SWING_HEAD, game_id.encode(), b",".join(strokes))


_SWING_HEAD: Final = b'{"v":%d,"kind":"swing","game_id":"' % SWING_EVENT_VERSION


@functools.lru_cache(maxsize=1024)
def _json_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _json_time(at: datetime) -> str:
    """A datetime as pydantic writes it (UTC as ``Z``)."""
    text = at.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def stroke_json(
    stroke: int, side: Side, instance: str, result: Result, latency_ms: float, attempts: int
) -> bytes:
    """``encode(Stroke(...))`` of these fields, without building the model."""
    return (
        f'{{"v":{SCHEMA_VERSION},"stroke":{stroke},"side":"{side}",'
        f'"instance":{_json_str(instance)},"result":"{result.value}",'
        f'"latency_ms":{latency_ms!r},"attempts":{attempts}}}'
    ).encode()


def game_json(
    game_id: str,
    strokes: Iterable[bytes],
    winner: Side | None,
    winner_instance: str | None,
    manager: str,
    duration_ms: float,
    started_at: datetime,
) -> bytes:
    """``encode(Game(...))`` from the JSON of its strokes (:func:`stroke_json`).

    ``game_id`` must be valid (a subject token needs no JSON escaping).
    """
    at = _json_time(started_at)
    head = f'{{"v":{SCHEMA_VERSION},"game_id":"{game_id}","strokes":['.encode()
    won = "null" if winner is None else f'"{winner}"'
    won_by = "null" if winner_instance is None else _json_str(winner_instance)
    tail = (
        f'],"winner":{won},"winner_instance":{won_by},"manager":{_json_str(manager)},'
        f'"duration_ms":{duration_ms!r},"started_at":"{at}"}}'
    ).encode()
    return head + b",".join(strokes) + tail
