"""The scoreboard: folds the event log into exactly-once scores."""

from scoreboard.logic import Tally, fold, fold_all
from scoreboard.service import serve

__all__ = ["Tally", "fold", "fold_all", "serve"]
