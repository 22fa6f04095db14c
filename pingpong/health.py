"""The health file: touched while connected to NATS, checked by ``pingpong healthcheck``.

Every service touches ``HEALTH_FILE`` every few seconds while it is connected
(:func:`keep_fresh`, from :func:`pingpong.bus.connect`); the check passes while the
file is fresh (:func:`check`). No network round trip, so it is cheap enough to run
every few seconds on a Pi.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Final

from nats.aio.client import Client

TOUCH_EVERY: Final = 5.0
"""Seconds between touches of the file while connected."""

MAX_AGE: Final = 15.0
"""Seconds after the last touch at which the service counts as unhealthy."""

_TOUCHING: set[asyncio.Task[None]] = set()


def keep_fresh(nc: Client, path: Path) -> None:
    """Touch ``path`` every :data:`TOUCH_EVERY` seconds while ``nc`` is connected, until it
    is closed (a task of its own)."""
    task = asyncio.create_task(_touch(nc, path))
    _TOUCHING.add(task)
    task.add_done_callback(_TOUCHING.discard)


async def _touch(nc: Client, path: Path) -> None:
    while not nc.is_closed:
        if nc.is_connected:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(path.touch)
        await asyncio.sleep(TOUCH_EVERY)


def check(path: Path, max_age: float = MAX_AGE, now: float | None = None) -> str | None:
    """None if healthy, else the one-line reason."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return f"{path} does not exist: not connected to NATS yet"
    if age > max_age:
        return f"not connected to NATS for {age:.0f}s ({path} is stale)"
    return None
