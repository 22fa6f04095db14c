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
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from pingpong import bus, early, subjects
from pingpong.inbox import Inbox, Listener, is_no_responders

log = logging.getLogger(__name__)

HEARTBEAT: Final = 0.5
"""Seconds between a manager's heartbeats, asked for with each request."""

FAILOVER_GRACE: Final = 2.0
"""Seconds a request keeps retrying no responders when managers answered a moment ago."""

FAILOVER_WINDOW: Final = 10.0
"""Seconds after the last answered game in which no responders counts as a failover."""

REPLAY_WINDOW: Final = 10.0
"""Seconds from a game's first request in which it is played again when its manager went
silent or its connection dropped: long enough for nats-server to notice a lost node's
manager (a replay may reach it again until then) and for a reconnect to another server."""

RECONNECT_GRACE: Final = 0.5
"""Seconds a game waits for the connection to come back when it knows one server only:
NATS is down, so answer 503 soon."""

CLUSTER_RECONNECT_GRACE: Final = 5.0
"""The same when the connection knows other servers (a cluster): a dead server is noticed
by pings within about 3 s, and the client moves to another one."""


class ManagerSilentError(Exception):
    """The manager that took the game stopped sending heartbeats (it died or hung)."""


class LostConnectionError(Exception):
    """The NATS connection dropped while the game was waited for."""


@dataclass(eq=False)
class _Waiting:
    """One game waited for."""

    future: asyncio.Future[Msg]
    heard: float = field(default=0.0)
    early: Msg | None = None
    """The manager's early answer, held until the event log's ack says stored."""
    stored: bool | None = None
    """What that ack said (None: none yet)."""


class GameClient:
    """Sends ``game.play`` requests and waits for the game, watching the manager's pulse."""

    def __init__(self, nc: Client, silence: float = 4 * HEARTBEAT) -> None:
        self.nc = nc
        self.silence = silence
        self.inbox = Inbox(nc)
        self._headers = {subjects.HEARTBEAT_HEADER: str(HEARTBEAT), **early.ASK}
        self._loop = asyncio.get_running_loop()
        self._answered = -FAILOVER_WINDOW  # loop time of the last manager answer
        self._waiting: set[_Waiting] = set()

    @property
    def ready(self) -> bool:
        """Connected, with the reply subscription in place."""
        return self.inbox.started and self.nc.is_connected

    async def start(self) -> None:
        """Subscribe to this client's reply subjects (kept across reconnects by nats-py)."""
        await self.inbox.start()
        await bus.sync(self.nc)

    def _on_reply(self, waiting: _Waiting) -> Listener:
        """What comes to one game's reply subject: heartbeats, the early answer and the
        stream's ack of it, or the answer."""

        async def on_msg(msg: Msg, rest: str) -> None:
            if waiting.future.done():
                return
            waiting.heard = self._loop.time()
            if early.is_stored_ack(rest):  # the event log's ack of the game answered early
                waiting.stored = early.says_stored(msg)
                if waiting.stored and waiting.early is not None:
                    waiting.future.set_result(waiting.early)
                return  # not stored: the manager tries again and answers again
            headers = msg.headers
            if headers:
                if subjects.HEARTBEAT_HEADER in headers and not msg.data:
                    return  # still playing
                if early.is_early_answer(msg) and waiting.early is None:
                    self._answered = waiting.heard
                    if waiting.stored:
                        waiting.future.set_result(msg)
                    else:
                        waiting.early = msg
                    return
            if msg.data:  # a manager's answer, not the server's no-responders status
                self._answered = waiting.heard
            waiting.future.set_result(msg)

        return on_msg

    @property
    def reconnect_grace(self) -> float:
        """Seconds worth waiting for the connection to come back (see the constants)."""
        return CLUSTER_RECONNECT_GRACE if len(self.nc.servers) > 1 else RECONNECT_GRACE

    async def play(
        self, payload: bytes, timeout: float, on_replay: Callable[[], None] = lambda: None
    ) -> Msg:
        """:meth:`request`, played again (``on_replay``) while its manager goes silent or its
        connection drops, within :data:`REPLAY_WINDOW`: such a game never reached the log,
        so it counts once."""
        give_up = self._loop.time() + REPLAY_WINDOW
        while True:
            try:
                return await self.request(payload, timeout)
            except ManagerSilentError:
                if self._loop.time() >= give_up:
                    raise
                log.warning("a manager went silent mid-game; asking another")
            except LostConnectionError:
                left = give_up - self._loop.time()
                if left <= 0 or not await self.reconnected(min(left, self.reconnect_grace)):
                    raise
            on_replay()

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
        for waiting in self._waiting:
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
        loop = self._loop
        now = loop.time()
        waiting = _Waiting(loop.create_future(), heard=now)
        reply = self.inbox.listen(self._on_reply(waiting))
        self._waiting.add(waiting)
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
            await self.nc.publish(subjects.GAME_PLAY, payload, reply=reply, headers=self._headers)
            msg = await waiting.future
        finally:
            timer.cancel()
            self.inbox.forget(reply)
            self._waiting.discard(waiting)
        if is_no_responders(msg):
            raise nats.errors.NoRespondersError
        return msg
