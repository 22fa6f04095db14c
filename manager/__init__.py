"""The manager plays games: ping, pong, ping, ... until one misses."""

from manager.rally import Limits, play_game
from manager.service import serve

__all__ = ["Limits", "play_game", "serve"]
