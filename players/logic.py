"""What a player does with the ball: pure, seeded for tests."""

from __future__ import annotations

import random


def decide_swings(hit_chance: int, count: int, rng: random.Random) -> int:
    """Swing up to ``count`` times, each a HIT with ``hit_chance`` percent, stopping at the
    first MISS: how many were HITs (``count`` means every swing hit, fewer that the next missed).
    """
    for n in range(count):
        if rng.random() * 100 >= hit_chance:
            return n
    return count
