"""Reading the event log: a durable consumer of ``RALLY``, pulled.

:class:`Puller` asks for batches of results (``$JS.API.CONSUMER.MSG.NEXT``) and reads
the replies' status codes; :func:`delivered_sequences` reads a delivery's stream and
consumer sequences from its reply subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Final

import nats.errors
from nats.aio.msg import Msg

from pingpong import subjects
from pingpong.inbox import Inbox, Mailbox

__all__ = ["EXPIRED", "NO_MESSAGES", "Puller", "delivered_sequences", "next_request_subject"]


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
    with a task of its own (``wait_for`` and a ``uuid4`` each): about four times the CPU
    a message (``python -m bench.micro``, docs/BENCHMARKS.md). A fetch first asks for what
    is there now (``no_wait``); only if nothing is, a second request waits for events.
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
