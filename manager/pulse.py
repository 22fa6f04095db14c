"""Heartbeats to the requesters that asked for them (``Pingpong-Heartbeat``).

A requester that asks with ``Pingpong-Heartbeat: <seconds>`` hears an empty message
with that header on its reply subject every so often while its game is played, so it
can tell a manager that died mid-game from a long game (the proxy plays such a game
again on another manager). One ticker for all games; most games end before their
first heartbeat is due.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from pingpong import subjects

TICK: Final = 0.1
"""Seconds between checks of what is due."""

SHORTEST: Final = 0.1
"""Seconds between heartbeats at the least, whatever is asked."""

LONGEST: Final = 30.0
"""Seconds between heartbeats at the most, whatever is asked."""


def asked_every(msg: Msg) -> float | None:
    """Seconds between heartbeats that ``msg`` asks for (bounded), or None."""
    every = msg.headers.get(subjects.HEARTBEAT_HEADER) if msg.headers else None
    if not every or not msg.reply:
        return None
    try:
        return min(max(float(every), SHORTEST), LONGEST)
    except ValueError:
        return None


class Pulse:
    """Sends the heartbeats that are due, for every game that asked."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self._due: dict[str, tuple[float, float]] = {}  # reply -> (next, every)
        self._ticker: asyncio.Task[None] | None = None

    def watch(self, msg: Msg) -> str | None:
        """Start heartbeats for ``msg`` if it asked; the key to :meth:`forget`."""
        every = asked_every(msg)
        if every is None or msg.reply is None:
            return None
        loop = asyncio.get_running_loop()
        self._due[msg.reply] = (loop.time() + every, every)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.create_task(self._tick())
        return msg.reply

    def forget(self, reply: str | None) -> None:
        """No more heartbeats to ``reply``."""
        if reply is not None:
            self._due.pop(reply, None)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        beat = {subjects.HEARTBEAT_HEADER: "1"}
        while self._due:
            await asyncio.sleep(TICK)
            now = loop.time()
            for reply, (due, every) in list(self._due.items()):
                if due <= now and reply in self._due:
                    self._due[reply] = (now + every, every)
                    with contextlib.suppress(nats.errors.Error):
                        await self.nc.publish(reply, b"", headers=beat)
