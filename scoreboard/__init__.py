"""The scoreboard: folds the event log into exactly-once scores."""

from scoreboard.logic import Tally, fold
from scoreboard.service import serve

__all__ = ["Tally", "fold", "serve"]
