"""The players: ``ping`` and ``pong`` answer every swing with HIT or MISS."""

from players.logic import decide_swings
from players.service import serve

__all__ = ["decide_swings", "serve"]
