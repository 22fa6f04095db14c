from __future__ import annotations

import re

import pytest

from pingpong.errors import BadMessageError
from pingpong.messages import (
    RallyFinished,
    RallySwing,
    Result,
    Swing,
    SwingReply,
    decode,
    decode_event,
    encode,
)
from tests.unit.made import game, stroke


def test_transcript_matches_the_original_format_line_by_line() -> None:
    g = game(
        stroke(1, "ping", "HIT"), stroke(2, "pong", "HIT"), stroke(3, "ping", "MISS"), winner="pong"
    )
    assert g.transcript().splitlines() == [
        "PING --> HIT",
        "PONG --> HIT",
        "PING --> MISS",
        "The winner is PONG",
    ]


def test_a_draw_ends_the_transcript_with_draw() -> None:
    g = game(stroke(1, "ping", "HIT"), stroke(2, "pong", "HIT"), winner=None)
    assert g.transcript().splitlines()[-1] == "DRAW"
    assert g.is_draw


def test_messages_round_trip_through_json() -> None:
    g = game(stroke(1, "ping", "MISS"), winner="pong")
    event = RallyFinished(game=g)
    assert decode_event(encode(event)) == event
    assert decode(Swing, encode(Swing(game_id="abc", stroke=3))) == Swing(game_id="abc", stroke=3)


def test_every_message_carries_the_schema_version() -> None:
    assert b'"v":1' in encode(SwingReply(side="ping", instance="i", results=(Result.HIT,)))


def test_a_swing_asks_for_one_stroke_unless_it_says_how_many() -> None:
    assert decode(Swing, b'{"game_id":"g","stroke":1}').count == 1
    assert decode(Swing, b'{"game_id":"g","stroke":1,"count":8}').count == 8


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"side":"ping","instance":"i","results":[]}', "results: Tuple should have at least 1"),
        (
            b'{"side":"ping","instance":"i","results":["MISS","HIT"]}',
            "Value error, results go on after a MISS",
        ),
        (b'{"side":"ping","instance":"i","result":"HIT"}', "results: Field required"),
    ],
)
def test_a_swing_reply_is_one_result_a_stroke_up_to_the_first_miss(
    payload: bytes, expected: str
) -> None:
    with pytest.raises(BadMessageError, match=f"^bad SwingReply: .*{re.escape(expected)}"):
        decode(SwingReply, payload)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"not json", "bad Swing: payload: Invalid JSON"),
        (b'{"game_id": "a b", "stroke": 1}', "bad Swing: game_id: String should match pattern"),
        (b'{"game_id": "g", "stroke": 0}', "bad Swing: stroke: Input should be greater than"),
        (b'{"game_id": "g", "stroke": 1, "x": 1}', "bad Swing: x: Extra inputs are not permitted"),
        (b'{"v": 2, "game_id": "g", "stroke": 1}', "bad Swing: v: Input should be 1"),
    ],
)
def test_a_malformed_payload_raises_one_line_naming_the_problem(
    payload: bytes, expected: str
) -> None:
    with pytest.raises(BadMessageError) as info:
        decode(Swing, payload)
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_an_event_of_unknown_kind_is_rejected() -> None:
    with pytest.raises(BadMessageError, match="bad rally event"):
        decode_event(b'{"v": 1, "kind": "exploded", "game_id": "g"}')


def test_messages_are_frozen() -> None:
    swing = Swing(game_id="g", stroke=1)
    with pytest.raises(ValueError, match="frozen"):
        swing.stroke = 2  # type: ignore[misc]


def test_a_swing_event_keeps_its_strokes_and_says_it_is_version_2() -> None:
    strokes = (stroke(4, "pong", "HIT"), stroke(6, "pong", "MISS"))
    event = encode(RallySwing(game_id="g", strokes=strokes))
    assert decode_event(event) == RallySwing(game_id="g", strokes=strokes)
    assert event.startswith(b'{"v":2,"kind":"swing"')


def test_a_swing_event_of_version_1_or_without_strokes_is_refused_in_one_line() -> None:
    old = b'{"v":1,"kind":"swing","game_id":"g","stroke":' + encode(stroke(1, "ping", "HIT"))
    with pytest.raises(BadMessageError, match=r"^bad rally event: swing\.v: Input should be 2"):
        decode_event(old + b"}")
    with pytest.raises(BadMessageError, match="strokes"):
        decode_event(b'{"v":2,"kind":"swing","game_id":"g","strokes":[]}')
