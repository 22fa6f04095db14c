"""Swings out to one side's players, answers back to the games that asked.

Two ways, one reply each: the swings of several games in one request on
``<side>.swings`` (a :class:`~pingpong.messages.SwingBatch`, answered in order by one
player), or one game's on ``<side>.swing`` (a lone swing: the smaller request, and a
player's replies repeat, so each distinct one is read once). ``BATCH_GAMES=1`` sends
every swing alone. Whatever goes wrong (no player, a timeout, a reply that does not
fit) is raised as :class:`UnansweredError`, and the batcher fails each game's request.

A request that timed out is hedged: its games ask again, and its own answer, if it
comes within ``linger`` seconds, still plays the games that are still waiting for it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

import nats.errors
from nats.aio.msg import Msg

from manager.game import Asked
from pingpong import subjects
from pingpong.errors import BadMessageError, RemoteError, UnansweredError
from pingpong.handlers import Decoder, raise_for_error
from pingpong.inbox import Inbox
from pingpong.messages import M, Result, SwingBatchReply, SwingReply, decode
from pingpong.wire import swing_batch_json, swing_json

log = logging.getLogger(__name__)

REPLY_CACHE: Final = 1024
"""Distinct lone replies kept decoded (a player's replies repeat: it encodes each once)."""

OnAnswer = Callable[[Asked, str, tuple[Result, ...], float], Awaitable[None]]
"""Takes a side's answer to a game's request: the item, the player, its results, when."""

Answered = Callable[[bytes], Awaitable[None]]
"""Reads one request's reply data and hands on its answers (a batch's, or a lone swing's)."""


class SideSender:
    """Sends a batch of the swings asked of one side and hands each answer on."""

    def __init__(
        self,
        inbox: Inbox,
        side: subjects.Side,
        timeout: float,
        on_answer: OnAnswer,
        *,
        lone_only: bool = False,
        linger: float = 0.0,
    ) -> None:
        self.inbox = inbox
        self.side = side
        self.timeout = timeout
        self.on_answer = on_answer
        self.lone_only = lone_only
        self.linger = linger
        """Seconds after its timeout that a request's answer still counts."""
        self._swing = subjects.swing_subject(side)
        self._swings = subjects.swings_subject(side)
        self._lone = Decoder(SwingReply, REPLY_CACHE)

    async def __call__(self, items: list[Asked]) -> None:
        """Send ``items`` (one request) and hand on every answer; raises
        :class:`UnansweredError` if the side did not answer them."""
        if len(items) == 1 or self.lone_only:
            for item in items:
                await self._alone(item)
            return
        payload = swing_batch_json((i.game.game_id, i.ask.first, i.ask.count) for i in items)
        answered = functools.partial(self._batch_answered, items)
        await answered(await self._ask(self._swings, payload, answered))

    async def _batch_answered(self, items: list[Asked], data: bytes) -> None:
        reply = self._read(SwingBatchReply, data)
        if reply.side != self.side or len(reply.results) != len(items):
            raise UnansweredError(
                f"a {reply.side} player answered {len(reply.results)} of {len(items)} "
                f"{self.side} swings"
            )
        at = time.perf_counter()
        for item, results in zip(items, reply.results, strict=True):
            await self.on_answer(item, reply.instance, results, at)

    async def _alone(self, item: Asked) -> None:
        ask = item.ask
        payload = swing_json(item.game.game_id, ask.first, ask.count)
        answered = functools.partial(self._alone_answered, item)
        await answered(await self._ask(self._swing, payload, answered))

    async def _alone_answered(self, item: Asked, data: bytes) -> None:
        try:
            reply = self._lone(data)
        except BadMessageError as e:
            raise self._broken(e) from None
        if reply.side != self.side:
            raise UnansweredError(f"a {reply.side} player answered a {self.side} swing")
        await self.on_answer(item, reply.instance, reply.results, time.perf_counter())

    @staticmethod
    async def _late(answered: Answered, msg: Msg | None) -> None:
        """The answer to a request after its timeout: it plays the games still waiting."""
        if msg is None:
            return
        with contextlib.suppress(UnansweredError, RemoteError):
            await answered(raise_for_error(msg).data)

    async def _ask(self, subject: str, payload: bytes, answered: Answered) -> bytes:
        """A request to the side's players: the reply's data (``answered`` also gets the
        reply's data should it come within :attr:`linger` after the timeout)."""
        late = functools.partial(self._late, answered)
        try:
            msg = await self.inbox.request(
                subject, payload, self.timeout, late=late, linger=self.linger
            )
            return raise_for_error(msg).data
        except nats.errors.NoRespondersError:
            raise UnansweredError("no responders") from None
        except nats.errors.TimeoutError:
            raise UnansweredError(f"timeout after {self.timeout}s", timed_out=True) from None
        except RemoteError as e:
            raise self._broken(e) from None

    def _read(self, model: type[M], data: bytes) -> M:
        try:
            return decode(model, data)
        except BadMessageError as e:
            raise self._broken(e) from None

    def _broken(self, e: Exception) -> UnansweredError:
        """A broken player: logged; counts as unanswered, so another one answers."""
        log.warning("bad reply from a %s player: %s", self.side, e)
        return UnansweredError(str(e))
