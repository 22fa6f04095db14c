from __future__ import annotations

import random

from pingpong.messages import Result
from players import decide_swing


def test_a_player_with_hit_chance_100_never_misses() -> None:
    rng = random.Random(1)
    assert {decide_swing(100, rng) for _ in range(1000)} == {Result.HIT}


def test_a_player_with_hit_chance_0_always_misses() -> None:
    rng = random.Random(1)
    assert {decide_swing(0, rng) for _ in range(1000)} == {Result.MISS}


def test_hit_chance_85_hits_about_85_percent_with_a_seeded_rng() -> None:
    rng = random.Random(42)
    hits = sum(decide_swing(85, rng) is Result.HIT for _ in range(10_000))
    assert 8_350 < hits < 8_650


def test_the_same_seed_gives_the_same_swings() -> None:
    first, second = random.Random(7), random.Random(7)
    a = [decide_swing(50, first) for _ in range(100)]
    b = [decide_swing(50, second) for _ in range(100)]
    assert a == b
    assert len(set(a)) == 2
