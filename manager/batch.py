"""Swings of many games in one request: what the manager's games ask of a side in
one turn of the event loop leaves as one batch.

Apart from what a batch is: the batcher is given the function that sends one (and
handles its answer) and the one that fails it, and is tested against fakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Generic, TypeVar

from pingpong.errors import UnansweredError

T = TypeVar("T")


class Batcher(Generic[T]):
    """Gathers the items (swings) asked of one side and sends them together.

    :meth:`add` queues an item; the queue leaves in the next turn of the event loop,
    or at once when it holds ``max_items``. At most ``in_flight`` batches are out at
    once: while they are, items queue and leave, up to ``max_items`` a batch, as soon
    as one is answered. An idle side gets its swings at once; a busy one gets fewer,
    fuller batches (fewer messages for every process to wake up for). Items that have
    queued for ``stall`` seconds leave anyway, so a player that hangs on to a batch
    holds up only that batch.

    ``send(items)`` sends a batch and handles its answer; whatever it raises fails
    the batch: ``fail(items, why)``, an :class:`UnansweredError` (any other error
    becomes one that failed at once, with the error's type and text). Items for which
    ``live`` is false when their batch leaves (their game gave up on them) are left out.
    """

    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[None]],
        fail: Callable[[list[T], UnansweredError], None],
        max_items: int,
        *,
        in_flight: int = 1,
        stall: float = 0.02,
        live: Callable[[T], bool] = lambda _: True,
    ) -> None:
        self.send = send
        self.fail = fail
        self.max_items = max_items
        self.in_flight = in_flight
        self.stall = stall
        self.live = live
        self._overdue: asyncio.TimerHandle | None = None
        self._queued: list[T] = []
        self._turn_pending = False  # a task will send this turn's items
        self._sending: set[asyncio.Task[None]] = set()  # batches out or about to leave

    def add(self, item: T) -> None:
        """Queue ``item``; it leaves with the next batch."""
        self._queued.append(item)
        if len(self._sending) < self.in_flight:
            if len(self._queued) >= self.max_items:
                self._send_next()
            elif not self._turn_pending:  # the first of this turn: a task that sends the turn's
                self._turn_pending = True
                self._start(self._send_queued())
        elif self._overdue is None:
            self._arm()

    def _arm(self) -> None:
        self._overdue = asyncio.get_running_loop().call_later(self.stall, self._send_overdue)

    def _send_overdue(self) -> None:
        """The batches out are slow to answer: what has queued behind them leaves anyway."""
        self._overdue = None
        if self._queued:
            self._send_next()
        if self._queued:
            self._arm()

    def _send_next(self) -> None:
        self._start(self._send(self._take()))

    def _take(self) -> list[T]:
        batch = self._queued[: self.max_items]
        del self._queued[: self.max_items]
        if not self._queued and self._overdue is not None:
            self._overdue.cancel()
            self._overdue = None
        return [item for item in batch if self.live(item)]

    def _start(self, send: Coroutine[None, None, None]) -> None:
        task = asyncio.ensure_future(send)
        self._sending.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if self._queued and len(self._sending) < self.in_flight:  # what queued while all were out
            self._send_next()

    async def _send_queued(self) -> None:
        """Runs in the next turn of the loop, when this turn's items are all queued."""
        self._turn_pending = False
        await self._send(self._take())

    async def _send(self, batch: list[T]) -> None:
        if not batch:
            return
        try:
            await self.send(batch)
        except Exception as e:  # whatever went wrong, each game hears of it and retries
            if not isinstance(e, UnansweredError):
                e = UnansweredError(f"{type(e).__name__}: {e}")
            self.fail(batch, e)
