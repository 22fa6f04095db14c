"""``game.play`` requests that notice a dead manager or a lost NATS connection.

nats-py's ``request()`` waits out its whole timeout when the manager that took
the request dies, or when the connection drops. This client asks the manager
for heartbeats (``Pingpong-Heartbeat`` header) on its own reply subscription,
so a manager that goes silent is given up after ``silence`` seconds and a lost
connection fails every waiting request at once.

It also asks for the game early (``Pingpong-Early`` header): the manager answers
as soon as the game is played, and the event log's ack of the game's result
comes to this client as well as to the manager. The game is handed on only once
that ack says stored, so an answered game is in the log, one NATS hop sooner
than waiting for the manager to hear the ack and answer. Any other ack is left
to the manager, which tries again and answers again.

No responders is answered at once, except just after games were being played:
then the managers are most likely moving to another server of a cluster, and the
request is retried for up to ``FAILOVER_GRACE`` seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Final

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from pingpong import bus, subjects

HEARTBEAT: Final = 0.5
"""Seconds between a manager's heartbeats, asked for with each request."""

FAILOVER_GRACE: Final = 2.0
"""Seconds a request keeps retrying no responders when managers answered a moment ago."""

FAILOVER_WINDOW: Final = 10.0
"""Seconds after the last answered game in which no responders counts as a failover."""


class ManagerSilentError(Exception):
    """The manager that took the game stopped sending heartbeats (it died or hung)."""


class LostConnectionError(Exception):
    """The NATS connection dropped while the game was waited for."""


@dataclass
class _Waiting:
    future: asyncio.Future[Msg]
    heard: float = field(default=0.0)
    early: Msg | None = None
    """The manager's early answer, held until the event log's ack says stored."""
    stored: bool | None = None
    """What that ack said (None: none yet)."""


def _says_stored(ack: Msg) -> bool:
    """True if the stream's ack says the message is stored (duplicates included)."""
    try:
        bus.stored_sequence(ack)
    except (nats.errors.Error, nats.js.errors.APIError):
        return False
    return True


class GameClient:
    """Sends ``game.play`` requests and waits for the game, watching the manager's pulse."""

    def __init__(self, nc: Client, silence: float = 4 * HEARTBEAT) -> None:
        self.nc = nc
        self.silence = silence
        self._prefix = f"_INBOX.{secrets.token_hex(8)}"
        self._tokens = itertools.count()  # a reply subject a request: the prefix is this client's
        self._waiting: dict[str, _Waiting] = {}
        self._sub: Subscription | None = None
        self._headers = {subjects.HEARTBEAT_HEADER: str(HEARTBEAT), subjects.EARLY_HEADER: "1"}
        self._loop = asyncio.get_running_loop()
        self._answered = -FAILOVER_WINDOW  # loop time of the last manager answer

    @property
    def ready(self) -> bool:
        """Connected, with the reply subscription in place."""
        return self._sub is not None and self.nc.is_connected

    async def start(self) -> None:
        """Subscribe to this client's reply subjects (kept across reconnects by nats-py)."""
        sub = await self.nc.subscribe(f"{self._prefix}.>", cb=self._on_reply)
        await bus.sync(self.nc)
        self._sub = sub

    async def _on_reply(self, msg: Msg) -> None:
        token, _, stored = msg.subject[len(self._prefix) + 1 :].partition(".")
        waiting = self._waiting.get(token)
        if waiting is None or waiting.future.done():
            return
        waiting.heard = self._loop.time()
        if stored:  # the event log's ack of the game the manager answered early
            waiting.stored = _says_stored(msg)
            if waiting.stored and waiting.early is not None:
                waiting.future.set_result(waiting.early)
            return  # not stored: the manager tries again and answers again
        headers = msg.headers
        if headers:
            if subjects.HEARTBEAT_HEADER in headers and not msg.data:
                return  # still playing
            if subjects.EARLY_HEADER in headers and waiting.early is None:
                self._answered = waiting.heard
                if waiting.stored:
                    waiting.future.set_result(msg)
                else:
                    waiting.early = msg
                return
        if msg.data:  # a manager's answer, not the server's no-responders status
            self._answered = waiting.heard
        waiting.future.set_result(msg)

    async def reconnected(self, within: float) -> bool:
        """True once the connection is back within ``within`` seconds."""
        deadline = self._loop.time() + within
        while not self.ready:
            if self._loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def connection_lost(self) -> None:
        """Fail every waiting request now (call from the disconnect callback)."""
        for waiting in self._waiting.values():
            if not waiting.future.done():
                waiting.future.set_exception(LostConnectionError())

    async def request(self, payload: bytes, timeout: float) -> Msg:
        """The manager's reply (maybe an error reply); raises ``nats.errors.NoRespondersError``,
        ``nats.errors.TimeoutError``, :class:`ManagerSilentError` or :class:`LostConnectionError`.
        """
        loop = self._loop
        give_up = loop.time() + FAILOVER_GRACE
        while True:
            try:
                return await self._request(payload, timeout)
            except nats.errors.NoRespondersError:
                now = loop.time()
                if now - self._answered > FAILOVER_WINDOW or now >= give_up:
                    raise
            await asyncio.sleep(0.05)

    async def _request(self, payload: bytes, timeout: float) -> Msg:
        token = str(next(self._tokens))
        loop = self._loop
        now = loop.time()
        waiting = _Waiting(loop.create_future(), heard=now)
        self._waiting[token] = waiting
        deadline = now + timeout
        timer: asyncio.TimerHandle

        def watch() -> None:  # one timer per game, re-armed while the manager is heard
            nonlocal timer
            if waiting.future.done():
                return
            now = loop.time()
            if now >= deadline:
                waiting.future.set_exception(nats.errors.TimeoutError())
            elif now - waiting.heard > self.silence:
                waiting.future.set_exception(ManagerSilentError())
            else:
                timer = loop.call_at(min(deadline, waiting.heard + self.silence) + 0.001, watch)

        timer = loop.call_at(min(deadline, now + self.silence), watch)
        try:
            await self.nc.publish(
                subjects.GAME_PLAY, payload, reply=f"{self._prefix}.{token}", headers=self._headers
            )
            msg = await waiting.future
        finally:
            timer.cancel()
            del self._waiting[token]
        if bus.is_no_responders(msg):
            raise nats.errors.NoRespondersError
        return msg
