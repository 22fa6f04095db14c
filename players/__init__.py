"""The players: ``ping`` and ``pong`` answer every swing with HIT or MISS."""

from players.logic import decide_swing
from players.service import serve

__all__ = ["decide_swing", "serve"]
