"""The hand-written JSON of ``pingpong.wire``, pinned to the bytes pydantic writes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pingpong.messages import (
    Game,
    GameRequest,
    RallyFinished,
    RallyStarted,
    RallySwing,
    Result,
    Stroke,
    Swing,
    SwingBatch,
    decode,
    decode_event,
    encode,
)
from pingpong.subjects import Side
from pingpong.wire import (
    finished_event,
    game_json,
    game_request_json,
    started_event,
    stroke_json,
    swing_batch_json,
    swing_event,
    swing_json,
)
from tests.unit.made import game, stroke


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


@pytest.mark.parametrize("max_rounds", [None, 1, 1000])
def test_a_game_request_written_by_hand_is_the_one_pydantic_writes(max_rounds: int | None) -> None:
    written = game_request_json("0123456789ab", max_rounds)
    assert written == encode(GameRequest(game_id="0123456789ab", max_rounds=max_rounds))
