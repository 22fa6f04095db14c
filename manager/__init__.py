"""The manager plays games: ping, pong, ping, ... until one misses."""

from manager.rally import Limits, Rally
from manager.service import serve

__all__ = ["Limits", "Rally", "serve"]
