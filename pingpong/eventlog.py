"""The event log: the JetStream stream ``RALLY`` over ``rally.>``.

Its config (:func:`stream_config`), making sure it is there (:func:`ensure_stream`,
:func:`wait_for_stream`), reading the stream's ack of a stored message
(:func:`stored_sequence`) and a delivery's sequences (:func:`delivered_sequences`), and
pulling from a durable consumer (:class:`Puller`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Final

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from pingpong import subjects
from pingpong.inbox import Inbox, Mailbox, is_no_responders
from pingpong.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "Keeper",
    "Puller",
    "delivered_sequences",
    "ensure_stream",
    "stored_sequence",
    "stream_config",
    "wait_for_stream",
]


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


class Keeper:
    """Makes the ``RALLY`` stream again when a write found no stream to take it.

    A store that comes back empty (a lost disk, a fresh volume, a power cut before the
    stream's first sync) has no stream: without this, its writers would retry into
    nothing until a restart. No responders also comes while a cluster elects a stream
    leader; then the stream is there, and this does nothing.
    """

    def __init__(self, js: JetStreamContext, config: StreamConfig) -> None:
        self.js = js
        self.config = config
        self._again: asyncio.Task[None] | None = None

    def lost(self) -> None:
        """No stream took a write: make it again if it is gone (once at a time)."""
        if self._again is None or self._again.done():
            self._again = asyncio.create_task(self._make_again())

    async def _make_again(self) -> None:
        try:
            await self.js.stream_info(subjects.STREAM)
            return  # there: a leader election, or a moment without JetStream
        except nats.js.errors.NotFoundError:
            pass
        except (nats.errors.Error, nats.js.errors.APIError):
            return
        log.warning(
            "the event log %s is gone (its store came back empty?); making it again",
            subjects.STREAM,
        )
        problem = await ensure_stream(self.js, self.config)
        if problem is not None:
            log.warning("%s; trying again at the next write", problem)


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


NO_MESSAGES: Final = "404"
"""Status of a pull request's last reply when the consumer had nothing (``no_wait``)."""

EXPIRED: Final = "408"
"""Status of a pull request's last reply when it expired (or was answered in part)."""


def next_request_subject(consumer: str) -> str:
    """Where a pull request for ``consumer`` of ``RALLY`` goes."""
    return f"$JS.API.CONSUMER.MSG.NEXT.{subjects.STREAM}.{consumer}"


class Puller:
    """Pull requests on a durable consumer of ``RALLY``, answered to a mailbox of the inbox.

    What nats-py's ``fetch`` does, but its ``fetch`` waits for each message of a batch
    with a task of its own (``wait_for`` and a ``uuid4`` each): 16 µs of CPU a message
    against 4 µs here (docs/BENCHMARKS.md). A fetch first asks for what is there now
    (``no_wait``); only if nothing is, a second request waits for events.
    """

    LINGER_MARGIN: Final = 0.1
    """Seconds the waiting request expires before :meth:`fetch` gives up on it."""

    def __init__(self, inbox: Inbox, consumer: str) -> None:
        self.inbox = inbox
        self.subject = next_request_subject(consumer)
        self._mailbox: Mailbox | None = None
        self._msgs: list[Msg] = []  # events that came, oldest first
        self._want = 0
        self._answered: asyncio.Future[None] | None = None

    async def start(self) -> None:
        self._mailbox = await self.inbox.mailbox(self._on_msg)

    async def stop(self) -> None:
        if self._mailbox is not None:
            await self._mailbox.close()
            self._mailbox = None

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """Up to ``batch`` events, in delivery order; :class:`TimeoutError` if none came."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if len(self._msgs) < batch:  # what came after the last fetch returned counts first
            await self._ask({"batch": batch - len(self._msgs), "no_wait": True}, batch, deadline)
        if not self._msgs:
            left = deadline - loop.time()
            if left > self.LINGER_MARGIN:
                expires = int((left - self.LINGER_MARGIN) * 1e9)
                await self._ask({"batch": batch, "expires": expires}, 1, deadline)
        msgs, self._msgs = self._msgs[:batch], self._msgs[batch:]
        if not msgs:
            raise TimeoutError
        return msgs

    async def _ask(self, request: dict[str, object], want: int, deadline: float) -> None:
        """Send a pull request; return once ``want`` events are in, it is answered, or at
        ``deadline`` (loop time)."""
        assert self._mailbox is not None, "start() first"
        self._want = want
        self._answered = asyncio.get_running_loop().create_future()
        payload = json.dumps(request).encode()
        await self.inbox.nc.publish(self.subject, payload, reply=self._mailbox.subject)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self._answered

    async def _on_msg(self, msg: Msg) -> None:
        status = msg.headers.get("Status") if msg.headers else None
        if status is None:
            self._msgs.append(msg)
            if len(self._msgs) < self._want:
                return
        elif status not in (NO_MESSAGES, EXPIRED):  # 100 a heartbeat; 409 a conflict (consumer
            return  # deleted, leader changed): wait out the timeout, as nats-py's fetch does
        # it brings nothing more
        if self._answered is not None and not self._answered.done():
            self._answered.set_result(None)
