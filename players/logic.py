"""What a player does with the ball: pure, seeded for tests."""

from __future__ import annotations

import random

from pingpong.messages import Result


def decide_swing(hit_chance: int, rng: random.Random) -> Result:
    """HIT with probability ``hit_chance`` percent, else MISS."""
    return Result.HIT if rng.random() * 100 < hit_chance else Result.MISS
