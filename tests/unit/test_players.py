from __future__ import annotations

import random

from players import decide_swings


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
