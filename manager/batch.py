"""Swings of many games in one request: what the manager's games ask of a side in
one turn of the event loop leaves as one :class:`SwingBatch`.

Apart from I/O: the batcher is given the function that sends a batch, and is
tested against a fake one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine

from manager.rally import Answer
from pingpong.errors import UnansweredError
from pingpong.messages import Result, Swing, SwingBatch, SwingBatchReply, SwingReply
from pingpong.subjects import Side

Sender = Callable[[SwingBatch], Awaitable[SwingBatchReply]]
"""Sends a batch to a side and returns the reply; raises :class:`UnansweredError`."""

_REPLY_CACHE = 1024
"""Distinct per-game replies kept (a player instance and its results)."""


class Batcher:
    """Gathers the swings asked of one side and sends them together.

    :meth:`swing` queues a swing and returns its reply's future; the queue leaves in
    the next turn of the event loop, or at once when it holds ``max_games`` swings.
    At most ``in_flight`` batches are out at once: while they are, swings queue and
    leave, up to ``max_games`` a batch, as soon as one is answered. An idle side gets
    its swings at once; a busy one gets fewer, fuller batches (fewer messages for
    every process to wake up for). Swings that have queued for ``stall`` seconds leave
    anyway, so a player that hangs on to a batch holds up only that batch.
    A batch that is not answered fails every swing in it with :class:`UnansweredError`
    (each game retries on its own, in a later batch).
    """

    def __init__(
        self, side: Side, send: Sender, max_games: int, in_flight: int = 1, stall: float = 0.02
    ) -> None:
        self.side = side
        self.send = send
        self.max_games = max_games
        self.in_flight = in_flight
        self.stall = stall
        self._overdue: asyncio.TimerHandle | None = None
        self._queued: list[tuple[Swing, asyncio.Future[Answer]]] = []
        self._turn_pending = False  # a task will send this turn's swings
        self._sending: set[asyncio.Task[None]] = set()  # batches out or about to leave
        self._replies: dict[tuple[str, tuple[Result, ...]], SwingReply] = {}

    def swing(self, swing: Swing) -> asyncio.Future[Answer]:
        """Queue ``swing``; the future of its reply and when the reply came."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._queued.append((swing, future))
        if len(self._sending) < self.in_flight:
            if len(self._queued) >= self.max_games:
                self._send_next()
            elif not self._turn_pending:  # the first of this turn: a task that sends the turn's
                self._turn_pending = True
                self._start(self._send_queued())
        elif self._overdue is None:
            self._arm()
        return future

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

    def _take(self) -> list[tuple[Swing, asyncio.Future[Answer]]]:
        batch = self._queued[: self.max_games]
        del self._queued[: self.max_games]
        if not self._queued and self._overdue is not None:
            self._overdue.cancel()
            self._overdue = None
        return [(swing, future) for swing, future in batch if not future.done()]

    def _start(self, send: Coroutine[None, None, None]) -> None:
        task = asyncio.ensure_future(send)
        self._sending.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if self._queued and len(self._sending) < self.in_flight:  # what queued while all were out
            self._send_next()

    async def _send_queued(self) -> None:
        """Runs in the next turn of the loop, when this turn's swings are all queued."""
        self._turn_pending = False
        await self._send(self._take())

    async def _send(self, batch: list[tuple[Swing, asyncio.Future[Answer]]]) -> None:
        if not batch:
            return
        try:
            reply = await self.send(SwingBatch(swings=tuple(swing for swing, _ in batch)))
            if reply.side != self.side or len(reply.results) != len(batch):
                raise UnansweredError(
                    f"a {reply.side} player answered {len(reply.results)} of "
                    f"{len(batch)} {self.side} swings"
                )
        except Exception as e:  # whatever went wrong, each game hears of it and retries
            reason = str(e) if isinstance(e, UnansweredError) else f"{type(e).__name__}: {e}"
            for _, future in batch:
                if not future.done():
                    future.set_exception(UnansweredError(reason))
            return
        at = time.perf_counter()
        for (_, future), results in zip(batch, reply.results, strict=True):
            if not future.done():
                future.set_result((self._reply(reply.side, reply.instance, results), at))

    def _reply(self, side: Side, instance: str, results: tuple[Result, ...]) -> SwingReply:
        key = (instance, results)
        reply = self._replies.get(key)
        if reply is None:
            reply = SwingReply(side=side, instance=instance, results=results)
            if len(self._replies) >= _REPLY_CACHE:
                self._replies.clear()
            self._replies[key] = reply
        return reply
