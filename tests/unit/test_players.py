from __future__ import annotations

import random

from pingpong.messages import Result, Swing, SwingBatch, SwingBatchReply, decode, encode
from players import decide_swings
from players.service import Player


def test_a_player_with_hit_chance_100_never_misses() -> None:
    rng = random.Random(1)
    assert {decide_swings(100, 8, rng) for _ in range(1000)} == {8}


def test_a_player_with_hit_chance_0_misses_its_first_swing() -> None:
    rng = random.Random(1)
    assert {decide_swings(0, 8, rng) for _ in range(1000)} == {0}


def test_hit_chance_85_hits_about_85_percent_with_a_seeded_rng() -> None:
    rng = random.Random(42)
    hits = sum(decide_swings(85, 1, rng) for _ in range(10_000))
    assert 8_350 < hits < 8_650


def test_swings_in_a_row_stop_at_the_first_miss_as_often_as_single_swings_would() -> None:
    rng = random.Random(3)
    runs = [decide_swings(85, 4, rng) for _ in range(20_000)]
    # P(k hits then a miss) = 0.85^k * 0.15 for k < 4; P(all 4 hit) = 0.85^4
    assert abs(runs.count(0) / 20_000 - 0.15) < 0.01
    assert abs(runs.count(4) / 20_000 - 0.85**4) < 0.01
    assert set(runs) == {0, 1, 2, 3, 4}


def test_the_same_seed_gives_the_same_swings() -> None:
    first, second = random.Random(7), random.Random(7)
    a = [decide_swings(50, 3, first) for _ in range(100)]
    b = [decide_swings(50, 3, second) for _ in range(100)]
    assert a == b
    assert len(set(a)) == 4


def test_a_batch_reply_written_by_hand_is_the_one_pydantic_writes() -> None:
    player = Player("pong", 'pong "1"@h', hit_chance=60, rng=random.Random(5))
    batch = SwingBatch(
        swings=tuple(Swing(game_id=f"g{n}", stroke=2, count=n % 4 + 1) for n in range(30))
    )
    data = player.batch_reply(batch)
    reply = decode(SwingBatchReply, data)
    assert data == encode(reply)
    assert reply.side == "pong"
    assert reply.instance == 'pong "1"@h'
    assert all(len(r) <= s.count for r, s in zip(reply.results, batch.swings, strict=True))
    assert {r[-1] for r in reply.results} == {Result.HIT, Result.MISS}


def test_a_batch_decides_each_swing_as_a_single_swing_would_with_the_same_seed() -> None:
    swings = tuple(Swing(game_id=f"g{n}", stroke=1, count=3) for n in range(50))
    batched = Player("ping", "ping-1@h", 70, random.Random(9))
    single = Player("ping", "ping-1@h", 70, random.Random(9))
    reply = decode(SwingBatchReply, batched.batch_reply(SwingBatch(swings=swings)))
    one_by_one = [decide_swings(70, 3, single.rng) for _ in swings]
    assert [r.count(Result.HIT) for r in reply.results] == one_by_one
