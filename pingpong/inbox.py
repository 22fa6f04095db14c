"""Replies to this process's requests: the one request/reply inbox of every service.

nats-py's ``request()`` makes a NUID and a random suffix for every request and waits
with ``asyncio.wait_for``: with 64 requests in flight it takes about a third more CPU a
round trip than this (``python -m bench.micro``, docs/BENCHMARKS.md). Here a reply subject is
``<prefix>.<n>`` (:data:`REPLY_SHAPE`; ``prefix`` is ``_INBOX.<nuid>`` once a process),
and one wildcard subscription, ``<prefix>.>``, hands each message to whoever waits on its
reply subject:

- :meth:`Inbox.request` waits for the first reply (nats-py's contract, errors included);
- :meth:`Inbox.send` hands it to a callback instead, so a caller with many requests out
  needs no task or future for each (the manager's swings and stores);
- :meth:`Inbox.listen` hands every message to a reply subject *or below it*
  (``<reply>.<rest>``) to a listener until :meth:`Inbox.forget`: a request answered more
  than once (the proxy's games: heartbeats, an early answer, the stream's ack);
- :meth:`Inbox.mailbox` is a reply subject with a subscription of its own, for replies
  that arrive under other subjects (JetStream deliveries carry their stream subject).

``given``, a wildcard of the caller's, takes the replies to :meth:`Inbox.send` with a
reply subject of its own (one that some other party hears as well: the early answer's
stored acks); those are matched by their whole subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from typing import Final

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

__all__ = ["REPLY_SHAPE", "Inbox", "Listener", "Mailbox", "OnReply", "is_no_responders"]

REPLY_SHAPE: Final = "_INBOX.*.*"
"""The shape of every reply subject :meth:`Inbox.reply_subject` makes (a subject pattern)."""

NO_RESPONDERS: Final = "503"
"""The ``Status`` header the server puts on a request that no one serves."""

OnReply = Callable[[Msg | None], Awaitable[None]]
"""Called with the reply to a request sent by :meth:`Inbox.send`, or None if none came in time."""

Listener = Callable[[Msg, str], Awaitable[None]]
"""Called with each message to a reply subject of :meth:`Inbox.listen` and what its subject has
after that reply subject (``""``, or ``"stored.m1"`` for ``<reply>.stored.m1``)."""


def is_no_responders(msg: Msg) -> bool:
    """True for the server's no-responders status message (no subscriber took the request)."""
    headers = msg.headers
    return not msg.data and headers is not None and headers.get("Status") == NO_RESPONDERS


class Mailbox:
    """A reply subject with a subscription of its own (:meth:`Inbox.mailbox`)."""

    def __init__(self, subject: str, sub: Subscription) -> None:
        self.subject = subject
        self._sub = sub

    async def close(self) -> None:
        """Unsubscribe (a lost connection is no error here)."""
        with contextlib.suppress(nats.errors.Error):
            await self._sub.unsubscribe()


class Inbox:
    """Requests whose replies come to one wildcard subscription, matched by a counter."""

    def __init__(self, nc: Client, *, given: str | None = None) -> None:
        self.nc = nc
        self.prefix = nc.new_inbox()
        self._skip = len(self.prefix) + 1
        self._given = given
        self._tokens = itertools.count()
        self._futures: dict[str, asyncio.Future[Msg]] = {}
        # by token, or by whole subject for a given reply subject (tokens have no dots)
        self._handlers: dict[str, tuple[OnReply, asyncio.TimerHandle]] = {}
        self._listeners: dict[str, Listener] = {}
        self._sub: asyncio.Future[Subscription] | None = None
        self._expired: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Subscribe (once; kept across reconnects by nats-py). The other methods call it."""
        if self._sub is None:
            self._sub = asyncio.ensure_future(self._subscribe())
        await asyncio.shield(self._sub)

    @property
    def started(self) -> bool:
        """True once the subscription is made."""
        return self._sub is not None and self._sub.done() and not self._sub.exception()

    async def _subscribe(self) -> Subscription:
        sub = await self.nc.subscribe(f"{self.prefix}.>", cb=self._on_reply)
        if self._given is not None:
            await self.nc.subscribe(self._given, cb=self._on_given_reply)
        return sub

    def reply_subject(self) -> str:
        """A reply subject no other request of this inbox has (:data:`REPLY_SHAPE`)."""
        return f"{self.prefix}.{next(self._tokens)}"

    async def _on_reply(self, msg: Msg) -> None:
        token, _, rest = msg.subject[self._skip :].partition(".")
        future = self._futures.pop(token, None)
        if future is not None:
            if not future.done():
                future.set_result(msg)
            return
        listener = self._listeners.get(token)
        if listener is not None:
            await listener(msg, rest)
            return
        await self._handle(token, msg)

    async def _on_given_reply(self, msg: Msg) -> None:
        await self._handle(msg.subject, msg)

    async def _handle(self, key: str, msg: Msg) -> None:
        handler = self._handlers.pop(key, None)
        if handler is not None:
            handler[1].cancel()
            await handler[0](msg)

    async def request(
        self,
        subject: str,
        payload: bytes,
        timeout: float,
        headers: dict[str, str] | None = None,
        *,
        late: OnReply | None = None,
        linger: float = 0.0,
    ) -> Msg:
        """The reply; raises ``nats.errors.TimeoutError`` or ``nats.errors.NoRespondersError``.

        ``late``: a reply that comes within ``linger`` seconds after the timeout goes to
        it (a hedged request: asked again elsewhere, the first answer still counts).
        """
        if not self.started:
            await self.start()
        token = str(next(self._tokens))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Msg] = loop.create_future()
        self._futures[token] = future
        timer = loop.call_later(timeout, _time_out, future)
        try:
            await self.nc.publish(subject, payload, reply=f"{self.prefix}.{token}", headers=headers)
            msg = await future
        except nats.errors.TimeoutError:
            if late is not None and linger > 0 and token in self._futures:
                self._handlers[token] = (late, loop.call_later(linger, self._forget, token))
            raise
        finally:
            timer.cancel()
            self._futures.pop(token, None)
        if is_no_responders(msg):
            raise nats.errors.NoRespondersError
        return msg

    async def send(
        self,
        subject: str,
        payload: bytes,
        timeout: float,
        on_reply: OnReply,
        headers: dict[str, str] | None = None,
        *,
        reply: str | None = None,
    ) -> None:
        """Publish a request; ``on_reply`` gets its reply, or None after ``timeout`` seconds.

        ``reply``, a subject that the inbox's ``given`` wildcard matches, is the reply
        subject instead of one of the inbox's own. ``on_reply`` runs in the subscription's
        callback: it must not wait for another reply to this inbox. Raises what ``publish``
        raises (then ``on_reply`` is not called).
        """
        if not self.started:
            await self.start()
        if reply is None:
            key = str(next(self._tokens))
            reply = f"{self.prefix}.{key}"
        else:
            key = reply
        timer = asyncio.get_running_loop().call_later(timeout, self._expire, key)
        self._handlers[key] = (on_reply, timer)
        try:
            await self.nc.publish(subject, payload, reply=reply, headers=headers)
        except BaseException:
            timer.cancel()
            del self._handlers[key]
            raise

    def _forget(self, key: str) -> None:
        self._handlers.pop(key, None)

    def _expire(self, key: str) -> None:
        handler = self._handlers.pop(key, None)
        if handler is not None:
            task = asyncio.ensure_future(handler[0](None))
            self._expired.add(task)
            task.add_done_callback(self._expired.discard)

    def listen(self, on_msg: Listener) -> str:
        """A new reply subject whose every message (and every message below it) goes to
        ``on_msg`` until :meth:`forget`. Call :meth:`start` first."""
        token = str(next(self._tokens))
        self._listeners[token] = on_msg
        return f"{self.prefix}.{token}"

    def forget(self, reply: str) -> None:
        """Stop listening on ``reply`` (from :meth:`listen`)."""
        self._listeners.pop(reply[self._skip :], None)

    async def mailbox(self, on_msg: Callable[[Msg], Awaitable[None]]) -> Mailbox:
        """A reply subject with a subscription of its own: every message that comes to it goes
        to ``on_msg``, whatever its subject (a JetStream delivery carries its stream subject,
        so the wildcard above cannot tell whose it is)."""
        subject = self.nc.new_inbox()
        return Mailbox(subject, await self.nc.subscribe(subject, cb=on_msg))


def _time_out(future: asyncio.Future[Msg]) -> None:
    if not future.done():
        future.set_exception(nats.errors.TimeoutError())
