"""NATS plumbing shared by every service: connect, check replies, the event log."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.micro.request import ERROR_CODE_HEADER, ERROR_HEADER

from pingpong import subjects
from pingpong.errors import RemoteError
from pingpong.settings import Settings

log = logging.getLogger(__name__)

_BACKGROUND: set[asyncio.Task[None]] = set()

RECONNECT_WAIT: Final = 1.0
"""Seconds between reconnect attempts (forever)."""

PING_INTERVAL: Final = 3
"""Seconds between client pings; a dead server is noticed after two missed pongs."""


class _ConnectionLog:
    """Connection callbacks that log each change of state once and never raise."""

    def __init__(self, nc: Client, on_disconnect: Callable[[], None] | None) -> None:
        self.nc = nc
        self.on_disconnect = on_disconnect
        self._last_error = ""

    async def error(self, e: Exception) -> None:
        text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        if text != self._last_error:  # a dead server repeats itself every second
            self._last_error = text
            log.warning("nats error: %s", text)

    async def disconnected(self) -> None:
        if not self.nc.is_closed:  # a deliberate close also calls this
            log.warning("disconnected from NATS; reconnecting")
        if self.on_disconnect is not None:
            self.on_disconnect()

    async def reconnected(self) -> None:
        self._last_error = ""
        log.info("reconnected to NATS")

    async def closed(self) -> None:
        log.info("NATS connection closed")


def connect_options(
    settings: Settings, name: str, nc: Client, on_disconnect: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``nc.connect``: reconnect forever, log every change."""
    cb = _ConnectionLog(nc, on_disconnect)
    options: dict[str, Any] = {
        "servers": settings.servers,
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": RECONNECT_WAIT,
        "connect_timeout": 2,
        "ping_interval": PING_INTERVAL,
        "max_outstanding_pings": 2,
        "error_cb": cb.error,
        "disconnected_cb": cb.disconnected,
        "reconnected_cb": cb.reconnected,
        "closed_cb": cb.closed,
    }
    if settings.nats_user:
        options["user"] = settings.nats_user
    if settings.nats_password:
        options["password"] = settings.nats_password.get_secret_value()
    if settings.nats_token:
        options["token"] = settings.nats_token.get_secret_value()
    if settings.nats_creds:
        options["user_credentials"] = str(settings.nats_creds)
    return options


HEARTBEAT_EVERY: Final = 5.0
"""Seconds between touches of ``HEALTH_FILE`` while connected."""


async def _heartbeat(nc: Client, path: Path) -> None:
    """Touch ``path`` while ``nc`` is connected, until it is closed."""
    while not nc.is_closed:
        if nc.is_connected:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(path.touch)
        await asyncio.sleep(HEARTBEAT_EVERY)


async def connect(
    settings: Settings,
    name: str,
    nc: Client | None = None,
    on_disconnect: Callable[[], None] | None = None,
) -> Client:
    """Connect ``nc`` (or a new client) to NATS, retrying until a server answers.

    It reconnects forever after that; ``name`` (the instance id) shows in the server's
    connection list.
    """
    nc = nc or Client()
    await nc.connect(**connect_options(settings, name, nc, on_disconnect))
    if settings.health_file is not None:
        _BACKGROUND.add(task := asyncio.create_task(_heartbeat(nc, settings.health_file)))
        task.add_done_callback(_BACKGROUND.discard)
    log.info("connected to NATS at %s", nc.connected_url.netloc if nc.connected_url else "?")
    return nc


async def sync(nc: Client) -> None:
    """Return once the server has processed everything sent on ``nc`` so far.

    nats-py's ``flush()`` writes its PING straight to the socket, ahead of
    commands still in the pending buffer (such as a SUB just made), so one
    flush can come back before the server knows of a new subscription. By
    the time the first PONG is back the buffer has been written, so the
    second PING follows it.
    """
    await nc.flush()
    await nc.flush()


def raise_for_error(msg: Msg) -> Msg:
    """Raise :class:`RemoteError` if ``msg`` carries ``Nats-Service-Error`` headers.

    nats-py's ``request()`` returns such replies as if they were answers.
    """
    headers = msg.headers
    if headers and ERROR_CODE_HEADER in headers:
        code = headers[ERROR_CODE_HEADER]
        raise RemoteError(int(code) if code.isdigit() else 500, headers.get(ERROR_HEADER, ""))
    return msg


NO_RESPONDERS: Final = "503"
"""The ``Status`` header the server puts on a request that no one serves."""


def is_no_responders(msg: Msg) -> bool:
    """True for the server's no-responders status message (no subscriber took the request)."""
    headers = msg.headers
    return not msg.data and headers is not None and headers.get("Status") == NO_RESPONDERS


ReplyHandler = Callable[[Msg | None], Awaitable[None]]
"""Called with the reply to a request sent by :meth:`Inbox.send`, or None if none came in time."""


class Inbox:
    """Requests whose replies come to one wildcard subscription, matched by a counter.

    :meth:`request` has the contract of nats-py's ``request()`` (its errors included),
    for less work per request: no NUID and random suffix per token, one timer instead
    of ``asyncio.wait_for``. :meth:`send` hands the reply to a callback instead, so a
    caller with many requests out needs no task or future for each. The subscription
    is made on first use and kept across reconnects by nats-py.

    ``replies``, a wildcard of the caller's, takes the replies to :meth:`send` with a
    ``reply`` subject of its own (a subject some other party hears as well); those are
    matched by their whole subject.
    """

    def __init__(self, nc: Client, replies: str | None = None) -> None:
        self.nc = nc
        self._prefix = nc.new_inbox()
        self._skip = len(self._prefix) + 1
        self._replies = replies
        self._waiting: dict[str, asyncio.Future[Msg]] = {}
        # by token, or by whole subject for a given reply subject (tokens have no dots)
        self._handlers: dict[str, tuple[ReplyHandler, asyncio.TimerHandle]] = {}
        self._tokens = itertools.count()
        self._sub: asyncio.Future[Subscription] | None = None
        self._expired: set[asyncio.Task[None]] = set()

    async def _subscribe(self) -> Subscription:
        if self._sub is None:
            self._sub = asyncio.ensure_future(self._subscribe_once())
        return await asyncio.shield(self._sub)

    async def _subscribe_once(self) -> Subscription:
        sub = await self.nc.subscribe(f"{self._prefix}.*", cb=self._on_reply)
        if self._replies is not None:
            await self.nc.subscribe(self._replies, cb=self._on_given_reply)
        return sub

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject[self._skip :]
        future = self._waiting.pop(token, None)
        if future is not None:
            if not future.done():
                future.set_result(msg)
            return
        await self._handle(token, msg)

    async def _on_given_reply(self, msg: Msg) -> None:
        await self._handle(msg.subject, msg)

    async def _handle(self, key: str, msg: Msg) -> None:
        handler = self._handlers.pop(key, None)
        if handler is not None:
            handler[1].cancel()
            await handler[0](msg)

    async def send(
        self,
        subject: str,
        payload: bytes,
        timeout: float,
        on_reply: ReplyHandler,
        headers: dict[str, str] | None = None,
        *,
        reply: str | None = None,
    ) -> None:
        """Publish a request; ``on_reply`` gets its reply, or None after ``timeout`` seconds.

        ``reply``, a subject that the inbox's ``replies`` wildcard matches, is the reply
        subject instead of one of the inbox's own. ``on_reply`` runs in the subscription's
        callback: it must not wait for another reply to this inbox. Raises what ``publish``
        raises (then ``on_reply`` is not called).
        """
        if self._sub is None or not self._sub.done():
            await self._subscribe()
        if reply is None:
            key = str(next(self._tokens))
            reply = f"{self._prefix}.{key}"
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

    def _expire(self, key: str) -> None:
        handler = self._handlers.pop(key, None)
        if handler is not None:
            task = asyncio.ensure_future(handler[0](None))
            self._expired.add(task)
            task.add_done_callback(self._expired.discard)

    async def request(
        self, subject: str, payload: bytes, timeout: float, headers: dict[str, str] | None = None
    ) -> Msg:
        """The reply; raises ``nats.errors.TimeoutError`` or ``nats.errors.NoRespondersError``."""
        if self._sub is None or not self._sub.done():
            await self._subscribe()
        token = str(next(self._tokens))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Msg] = loop.create_future()
        self._waiting[token] = future
        timer = loop.call_later(timeout, _expire, future)
        try:
            await self.nc.publish(
                subject, payload, reply=f"{self._prefix}.{token}", headers=headers
            )
            msg = await future
        finally:
            timer.cancel()
            self._waiting.pop(token, None)
        if is_no_responders(msg):
            raise nats.errors.NoRespondersError
        return msg

    async def store(
        self, subject: str, payload: bytes, timeout: float, headers: dict[str, str] | None = None
    ) -> int:
        """Publish through JetStream and wait for the stream's ack: the stored sequence.

        Raises as nats-py's ``JetStreamContext.publish`` does (``NoStreamResponseError``
        when no stream takes the subject, ``APIError`` when the stream refuses it).
        """
        try:
            msg = await self.request(subject, payload, timeout, headers)
        except nats.errors.NoRespondersError:
            raise nats.js.errors.NoStreamResponseError from None
        return stored_sequence(msg)


def stored_sequence(msg: Msg) -> int:
    """The sequence a stream's ack gives a stored message.

    Raises as nats-py's ``JetStreamContext.publish`` does: ``NoStreamResponseError`` for
    the no-responders status (no stream takes the subject), ``APIError`` when the stream
    refuses the message (or the ack is not one).
    """
    if is_no_responders(msg):
        raise nats.js.errors.NoStreamResponseError
    try:
        ack = json.loads(msg.data)
        if "error" in ack:
            raise nats.js.errors.APIError.from_error(ack["error"])
        return int(ack["seq"])
    except (ValueError, TypeError, KeyError):
        raise nats.js.errors.APIError(description=f"not a stream ack: {msg.data[:80]!r}") from None


def _expire(future: asyncio.Future[Msg]) -> None:
    if not future.done():
        future.set_exception(nats.errors.TimeoutError())


def delivered_sequences(msg: Msg) -> tuple[int, int]:
    """The stream and consumer sequences of a JetStream delivery, from its reply subject.

    What nats-py's ``msg.metadata.sequence`` gives (``$JS.ACK.<stream>.<consumer>.<tries>.
    <stream seq>.<consumer seq>.<ns>.<pending>``, or with a domain and an account hash
    after ``$JS.ACK``) without the rest: a scoreboard reads it for every result.
    Raises nats-py's ``NotJSMessageError`` for anything else.
    """
    tokens = (msg.reply or "").split(".")
    if tokens[:2] == ["$JS", "ACK"]:
        if len(tokens) == 9:
            return int(tokens[5]), int(tokens[6])
        if len(tokens) >= 11:
            return int(tokens[7]), int(tokens[8])
    raise nats.errors.NotJSMessageError


async def respond_error(msg: Msg, code: int, description: str) -> None:
    """Answer a request with ``Nats-Service-Error`` headers, as nats micro does."""
    if msg.reply:
        await respond_error_to(msg._client, msg.reply, code, description)


async def respond_error_to(nc: Client, reply: str, code: int, description: str) -> None:
    """Answer the request whose reply subject is ``reply`` with an error, as nats micro does."""
    headers = {ERROR_HEADER: description, ERROR_CODE_HEADER: str(code)}
    await nc.publish(reply, b"", headers=headers)


def stream_config(settings: Settings) -> StreamConfig:
    """The ``RALLY`` stream over ``rally.>`` as ``settings`` ask for it."""
    return StreamConfig(
        name=subjects.STREAM,
        description="pingpong event log: every rally event",
        subjects=[subjects.RALLY_ALL],
        storage=StorageType.FILE,
        max_age=settings.stream_max_age,
        max_bytes=settings.stream_max_bytes,
        duplicate_window=settings.duplicate_window,
        num_replicas=settings.stream_replicas,
    )


async def ensure_stream(
    js: JetStreamContext, config: StreamConfig, *, update: bool = True
) -> str | None:
    """Create the ``RALLY`` stream (:func:`stream_config`); one that is there with
    another config is updated to ``config`` if ``update``, else taken as it is.

    Only its writer (the manager) updates it, so readers with other settings do not
    undo the writer's limits and duplicate window. None when it is there, else why
    not, in one line: no JetStream, not ready yet (a cluster that is still electing
    its leader answers with a timeout, one still forming may answer "stream not
    found"), or a setting the server cannot meet.
    """
    try:
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError as refused:  # there with another config?
            try:
                if update:
                    await js.update_stream(config)
                else:
                    await js.stream_info(config.name or subjects.STREAM)
            except nats.js.errors.NotFoundError:  # it is not there: why the add failed is the news
                raise refused from None
    except (
        nats.errors.NoRespondersError,
        nats.errors.TimeoutError,
        nats.js.errors.ServiceUnavailableError,
    ) as e:
        return f"JetStream is not available ({type(e).__name__})"
    except nats.js.errors.APIError as e:  # a cluster still forming, or a setting it cannot meet
        return f"JetStream refused stream {subjects.STREAM}: {e.description} (error {e.err_code})"
    return None


STREAM_RETRY: Final = 2.0
"""Seconds between attempts to ensure the stream while JetStream is not there."""


async def wait_for_stream(
    js: JetStreamContext, config: StreamConfig, stop: asyncio.Event, *, update: bool = True
) -> bool:
    """Ensure the ``RALLY`` stream (:func:`ensure_stream`), retrying until it works (True)
    or ``stop`` (False).

    Says once in the log while it waits: a cluster electing its leader, or a
    server without JetStream.
    """
    waiting = False
    while not stop.is_set():
        problem = await ensure_stream(js, config, update=update)
        if problem is None:
            if waiting:
                log.info("JetStream is back: stream %s ready", subjects.STREAM)
            return True
        if not waiting:
            log.warning("%s: rally events are not stored until it is; retrying", problem)
            waiting = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STREAM_RETRY)
    return False


async def wait_closed(nc: Client, timeout: float = 10.0) -> None:
    """Drain ``nc`` (finish what is pending, then close), bounded by ``timeout``."""
    if nc.is_closed:
        return
    try:
        async with asyncio.timeout(timeout):
            if nc.is_connected:
                await nc.drain()
            else:
                await nc.close()
    except (TimeoutError, nats.errors.Error):
        await nc.close()
