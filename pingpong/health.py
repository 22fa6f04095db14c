"""``pingpong healthcheck``: is this container's service connected to NATS?

Every service touches ``HEALTH_FILE`` every few seconds while it is connected
(see :func:`pingpong.bus.connect`); the check passes while the file is fresh.
No network round trip, so it is cheap enough to run every few seconds on a Pi.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

MAX_AGE: Final = 15.0
"""Seconds after the last touch at which the service counts as unhealthy."""


def check(path: Path, max_age: float = MAX_AGE, now: float | None = None) -> str | None:
    """None if healthy, else the one-line reason."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return f"{path} does not exist: not connected to NATS yet"
    if age > max_age:
        return f"not connected to NATS for {age:.0f}s ({path} is stale)"
    return None
