from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pingpong.errors import BadMessageError
from pingpong.messages import (
    Game,
    RallyFinished,
    RallyStarted,
    RallySwing,
    Result,
    Stroke,
    Swing,
    SwingBatch,
    SwingReply,
    decode,
    decode_event,
    encode,
    finished_event,
    game_json,
    now,
    started_event,
    stroke_json,
    swing_batch_json,
    swing_event,
    swing_json,
)
from pingpong.subjects import Side


def stroke(n: int, side: str, result: str) -> Stroke:
    return Stroke(stroke=n, side=side, instance=f"{side}-1@h", result=result, latency_ms=0.5)


def game(*strokes: Stroke, winner: str | None) -> Game:
    return Game(
        game_id="g1",
        strokes=strokes,
        winner=winner,
        manager="manager-1@h",
        duration_ms=1.0,
        started_at=now(),
    )


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


def test_a_finished_event_built_from_the_games_json_is_the_one_pydantic_writes() -> None:
    g = game(stroke(1, "ping", "HIT"), stroke(2, "pong", "MISS"), winner="ping")
    assert finished_event(encode(g)) == encode(RallyFinished(game=g))
    assert decode_event(finished_event(encode(g))) == RallyFinished(game=g)


def test_a_swing_event_built_by_hand_is_the_one_pydantic_writes() -> None:
    s = Stroke(
        stroke=7, side="pong", instance='pong "2"@h\\x', result="MISS", latency_ms=0.25, attempts=2
    )
    t = stroke(8, "ping", "HIT")
    event = swing_event("a-b_1", [encode(s), encode(t)])
    assert event == encode(RallySwing(game_id="a-b_1", strokes=(s, t)))
    assert decode_event(event) == RallySwing(game_id="a-b_1", strokes=(s, t))


ODD_NAMES = ['pong "2"@h\\x', "pïng-1@nœud", "tab\tand\u001fcontrol", "a/b</script>"]
MILLISECONDS = [0.0, 0.001, 0.01, 0.1, 0.5, 1.0, 2.345, 999.999, 123456.789, 1e15 + 0.125]


@pytest.mark.parametrize("instance", ODD_NAMES)
@pytest.mark.parametrize("latency_ms", MILLISECONDS)
def test_a_stroke_written_by_hand_is_the_one_pydantic_writes(
    instance: str, latency_ms: float
) -> None:
    model = Stroke(
        stroke=3, side="pong", instance=instance, result="MISS", latency_ms=latency_ms, attempts=2
    )
    assert stroke_json(3, "pong", instance, Result.MISS, latency_ms, 2) == encode(model)


def test_any_latency_rounded_to_the_microsecond_is_written_as_pydantic_writes_it() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        ms = round(rng.choice([1e-3, 1, 1e3, 1e6, 1e12]) * rng.random(), 3)
        model = Stroke(stroke=1, side="ping", instance="i", result="HIT", latency_ms=ms)
        assert stroke_json(1, "ping", "i", Result.HIT, ms, 1) == encode(model), ms


@pytest.mark.parametrize("winner", [None, "ping", "pong"])
@pytest.mark.parametrize(
    "started_at",
    [
        datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 10, 0, 0, 500, tzinfo=UTC),
        datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_a_game_joined_from_its_strokes_json_is_the_one_pydantic_writes(
    winner: Side | None, started_at: datetime
) -> None:
    strokes = [
        Stroke(stroke=k, side=side, instance=name, result="HIT", latency_ms=0.125 * k)
        for k, (side, name) in enumerate(zip(["ping", "pong", "ping"], ODD_NAMES, strict=False), 1)
    ]
    g = Game(
        game_id="g-1",
        strokes=tuple(strokes),
        winner=winner,
        winner_instance=None if winner is None else ODD_NAMES[1],
        manager=ODD_NAMES[0],
        duration_ms=12.345,
        started_at=started_at,
    )
    written = game_json(
        g.game_id,
        [encode(s) for s in strokes],
        g.winner,
        g.winner_instance,
        g.manager,
        g.duration_ms,
        g.started_at,
    )
    assert written == encode(g)
    assert decode(Game, written) == g


@pytest.mark.parametrize("manager", ODD_NAMES)
@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-3))),
    ],
)
def test_a_started_event_written_by_hand_is_the_one_pydantic_writes(
    manager: str, at: datetime
) -> None:
    model = RallyStarted(game_id="a-b_1", manager=manager, max_rounds=99, at=at)
    assert started_event("a-b_1", manager, 99, at) == encode(model)


def test_swings_and_a_batch_of_them_written_by_hand_are_the_ones_pydantic_writes() -> None:
    swings = [("g1", 1, 8), ("a-b_2", 17, 1), ("x" * 64, 3, 100)]
    models = tuple(Swing(game_id=g, stroke=s, count=c) for g, s, c in swings)
    assert [swing_json(*swing) for swing in swings] == [encode(m) for m in models]
    assert swing_batch_json(swings) == encode(SwingBatch(swings=models))
