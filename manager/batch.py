"""Swings of many games in one request: what the manager's games ask of a side in
one turn of the event loop leaves as one :class:`SwingBatch`.

Apart from I/O: the batcher is given the function that sends a batch, and is
tested against a fake one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine

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
    the next turn of the event loop, or at once when it holds
    ``max_games`` swings. A batch that is not answered fails every swing in it with
    :class:`UnansweredError` (each game retries on its own, in a later batch).
    """

    def __init__(self, side: Side, send: Sender, max_games: int) -> None:
        self.side = side
        self.send = send
        self.max_games = max_games
        self._queued: list[tuple[Swing, asyncio.Future[SwingReply]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._replies: dict[tuple[str, tuple[Result, ...]], SwingReply] = {}

    def swing(self, swing: Swing) -> asyncio.Future[SwingReply]:
        """Queue ``swing``; the future of its reply."""
        future: asyncio.Future[SwingReply] = asyncio.get_running_loop().create_future()
        self._queued.append((swing, future))
        if len(self._queued) >= self.max_games:
            self._start(self._send(self._take()))
        elif len(self._queued) == 1:  # the first of this turn: a task that sends the turn's
            self._start(self._send_queued())
        return future

    def _take(self) -> list[tuple[Swing, asyncio.Future[SwingReply]]]:
        batch = [(swing, future) for swing, future in self._queued if not future.done()]
        self._queued = []
        return batch

    def _start(self, send: Coroutine[None, None, None]) -> None:
        task = asyncio.ensure_future(send)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_queued(self) -> None:
        """Runs in the next turn of the loop, when this turn's swings are all queued."""
        await self._send(self._take())

    async def _send(self, batch: list[tuple[Swing, asyncio.Future[SwingReply]]]) -> None:
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
        for (_, future), results in zip(batch, reply.results, strict=True):
            if not future.done():
                future.set_result(self._reply(reply.side, reply.instance, results))

    def _reply(self, side: Side, instance: str, results: tuple[Result, ...]) -> SwingReply:
        key = (instance, results)
        reply = self._replies.get(key)
        if reply is None:
            reply = SwingReply(side=side, instance=instance, results=results)
            if len(self._replies) >= _REPLY_CACHE:
                self._replies.clear()
            self._replies[key] = reply
        return reply
