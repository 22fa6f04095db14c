"""A game's result into the event log, then the answer: the I/O of :mod:`manager.ending`.

The final event (``finished`` or ``aborted``) is published through JetStream with
``Nats-Msg-Id: <game_id>:<kind>``, so a retried publish is stored once, and the game is
answered when the stream has acked it. Without the stream (no JetStream), on core
NATS, and answered at once. :class:`~manager.ending.Ending` says what comes next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg

from manager.ending import Action, Answer, Forget, RetryStore, Store
from manager.game import Game
from manager.rally import ms
from pingpong import early, subjects
from pingpong.eventlog import Keeper, stored_sequence
from pingpong.handlers import respond_error_to
from pingpong.inbox import Inbox
from pingpong.messages import RallyAborted, encode, now
from pingpong.settings import Settings
from pingpong.wire import finished_event

log = logging.getLogger(__name__)

ACK_TIMEOUT: Final = 2.0
"""Seconds to wait for the stream's ack of one try (at most ``STORE_TIMEOUT``)."""


class Results:
    """Stores each game's final event and answers its requester, once."""

    def __init__(
        self,
        inbox: Inbox,
        settings: Settings,
        instance: str,
        token: str,
        forget: Callable[[Game], None],
    ) -> None:
        self.inbox = inbox
        self.nc = inbox.nc
        self.instance = instance
        self.token = token
        """Names this manager in the stored acks of its early answers."""
        self.ack_timeout = min(ACK_TIMEOUT, settings.store_timeout)
        self.forget = forget
        self.keeper: Keeper | None = None
        """Once the stream is there: final events go through JetStream, and the keeper
        makes the stream again if it is gone."""
        self._loop = asyncio.get_running_loop()
        self._later: set[asyncio.Task[None]] = set()  # the rare paths: aborts, store retries

    async def finish(self, game: Game) -> None:
        """The rally is over: store the finished event, then answer the game."""
        if not game.ending.playing:
            return
        game.stop_clock()
        played = game.rally.played(
            self.instance, ms(time.perf_counter() - game.start), game.started_at
        )
        data = played.json(game.strokes)
        log.debug("finished: %s", played.winner or "draw", extra={"game_id": game.game_id})
        game.final = ("finished", finished_event(data))
        await self._act(
            game, game.ending.finish(data, self._loop.time(), logged=self.keeper is not None)
        )

    async def abort(self, game: Game, code: int, reason: str) -> None:
        """Give the game up: store its aborted event, then answer ``code``."""
        if not game.ending.playing:
            return
        game.stop_clock()
        log.warning("aborted: %s", reason, extra={"game_id": game.game_id})
        event = RallyAborted(
            game_id=game.game_id,
            manager=self.instance,
            reason=reason,
            strokes=len(game.strokes),
            at=now(),
        )
        game.final = ("aborted", encode(event))
        await self._act(game, game.ending.abort(code, reason, self._loop.time()))

    async def fail(self, game: Game, code: int, reason: str) -> None:
        """Answer ``code`` now, whatever the game was doing."""
        await self._act(game, game.ending.fail(code, reason))

    async def _act(self, game: Game, action: Action | None) -> None:
        if isinstance(action, Store):
            await self._store(game, action.early)
        elif isinstance(action, RetryStore):
            self._loop.call_later(action.delay, self._retry, game)
        elif isinstance(action, Answer):
            await self._answer(game, action)
        elif isinstance(action, Forget):
            self.forget(game)

    async def guard(self, game: Game, step: Coroutine[Any, Any, None]) -> None:
        """Run a step of a game; an error fails that game alone, answered once: a NATS error
        aborts it while it is played (503) or answers 503 after; anything else (a bug,
        logged with its traceback) answers 500."""
        try:
            await step
        except nats.errors.Error as e:
            reason = f"lost NATS while playing: {type(e).__name__}"
            if game.ending.playing:
                await self.abort(game, 503, reason)
            else:
                log.warning("%s", reason, extra={"game_id": game.game_id})
                await self.fail(game, 503, reason)
        except Exception:
            log.exception("game failed", extra={"game_id": game.game_id})
            game.stop_clock()
            await self.fail(game, 500, INTERNAL_ERROR)

    async def _store(self, game: Game, answer_early: bool) -> None:
        """One try to store the final event (and the early answer with the first, if asked)."""
        assert game.final is not None
        kind, event = game.final
        subject = subjects.rally_subject(game.game_id, kind)
        headers = {"Nats-Msg-Id": subjects.finished_msg_id(game.game_id, kind)}
        if self.keeper is None:  # no stream: core NATS, and stored as far as it goes
            await self.nc.publish(subject, event, headers=headers)
            await self._act(game, game.ending.stored())
            return
        if not self.nc.is_connected:  # not buffered for later: its requester plays it again
            await self._not_stored(game, nats.errors.ConnectionReconnectingError())
            return
        reply = None  # the stream's ack comes to us alone, or to the requester too
        if answer_early and game.reply is not None:
            reply = early.stored_subject(game.reply, self.token)
        try:
            await self.inbox.send(
                subject,
                event,
                self.ack_timeout,
                lambda msg: self.guard(game, self._acked(game, msg)),
                headers,
                reply=reply,
            )
        except nats.errors.Error as e:
            await self._not_stored(game, e)
            return
        if reply is not None and game.reply is not None:
            try:
                await self.nc.publish(game.reply, game.ending.answer or b"", headers=early.ANSWER)
            except nats.errors.Error:  # not sent: answered once stored
                game.ending.early_not_sent()

    async def _acked(self, game: Game, msg: Msg | None) -> None:
        """The stream's ack of a try (None: none came in time)."""
        try:
            if msg is None:
                raise nats.errors.TimeoutError
            stored_sequence(msg)
        except (nats.errors.Error, nats.js.errors.APIError) as e:
            await self._not_stored(game, e)
            return
        if game.ending.tries > 1:
            log.info(
                "%s event stored after %d tries",
                game.final_kind,
                game.ending.tries,
                extra={"game_id": game.game_id},
            )
        await self._act(game, game.ending.stored())

    async def _not_stored(self, game: Game, e: Exception) -> None:
        """A try failed: tried again later, or past ``STORE_TIMEOUT`` answered 503."""
        why = (
            f"the result of game {game.game_id} could not be stored in the event log "
            f"within {game.ending.store_timeout:g}s ({game.ending.tries} tries): {e}"
        )
        if isinstance(e, nats.js.errors.NoStreamResponseError) and self.keeper is not None:
            self.keeper.check()
        action = game.ending.not_stored(self._loop.time(), why)
        if isinstance(action, Answer):
            log.error("%s", why, extra={"game_id": game.game_id})
        elif isinstance(action, RetryStore) and game.ending.tries == 1:
            log.warning(
                "storing %s event failed (%s); retrying",
                game.final_kind,
                e,
                extra={"game_id": game.game_id},
            )
        await self._act(game, action)

    def abort_soon(self, game: Game, code: int, reason: str) -> None:
        """:meth:`abort` from a callback that cannot wait (a timer, a failed batch)."""
        self._spawn(game, self.abort(game, code, reason))

    def _retry(self, game: Game) -> None:
        self._spawn(game, self._act(game, game.ending.retry_due()))

    def _spawn(self, game: Game, step: Coroutine[Any, Any, None]) -> None:
        """Run a step of a game in a task of its own (the rare paths: aborts, store retries)."""
        task = asyncio.ensure_future(self.guard(game, step))
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def _answer(self, game: Game, answer: Answer) -> None:
        """Answer once (the game, or the error) and forget the game."""
        self.forget(game)
        if game.reply is None:
            return
        with contextlib.suppress(nats.errors.Error):  # the requester gives up on its own
            if answer.game is not None:
                await self.nc.publish(game.reply, answer.game)
            else:
                await respond_error_to(self.nc, game.reply, *answer.error)


INTERNAL_ERROR: Final = "internal error in the manager"
"""The answer to a game that failed on a bug (its traceback is in the log)."""
