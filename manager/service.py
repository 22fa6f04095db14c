"""The manager service: serves ``game.play`` (queue group ``manager``).

Wiring around the parts that hold the logic, at most ``MAX_GAMES`` games at once:

- a game's rally is a :class:`~manager.rally.Rally`: which swings to ask for, what each
  answer plays, when to ask again;
- the swings its games ask of a side in one turn of the loop leave together
  (:class:`~manager.batch.Batcher`) and come back to each game
  (:class:`~manager.swings.SideSender`); their strokes go out as ``rally.<id>.swing``;
- its end is an :class:`~manager.ending.Ending`, which :class:`~manager.results.Results`
  carries out: the final event stored in the log, then the answer;
- requesters that asked hear heartbeats while their game is played
  (:class:`~manager.pulse.Pulse`).

A game is not a task: the answers of the players move it on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Final

from nats.aio.client import Client
from nats.aio.msg import Msg

from manager.batch import Batcher
from manager.ending import Ending
from manager.game import Asked, Game, still_asked
from manager.pulse import Pulse
from manager.rally import Ask, Limits, Rally
from manager.results import Results
from manager.swings import SideSender
from pingpong import bus, early, subjects
from pingpong.errors import BadMessageError, GameAbortedError, UnansweredError
from pingpong.eventlog import Keeper, log_configs, wait_for_log
from pingpong.handlers import Decoder, respond_error
from pingpong.inbox import Inbox
from pingpong.messages import GameRequest, Result, new_game_id
from pingpong.settings import Settings
from pingpong.wire import started_event, swing_event

log = logging.getLogger(__name__)

REQUEST_CACHE: Final = 64
"""Distinct ``game.play`` payloads kept decoded (the proxy's repeat)."""


class Manager:
    """Plays games on one NATS connection."""

    def __init__(self, nc: Client, settings: Settings, instance: str) -> None:
        self.nc = nc
        self.settings = settings
        self.instance = instance
        self.limits = Limits(
            max_rounds=settings.max_rounds,
            retries=settings.swing_retries,
            ahead=settings.swings_ahead,
        )
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(settings.max_games)
        self._games: set[Game] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._pulse = Pulse(nc)
        token = nc.new_inbox().rpartition(".")[2]  # names this manager's stored acks
        inbox = Inbox(nc, given=early.stored_acks(token))
        self.results = Results(inbox, settings, instance, token, self._forget)
        self._requests = Decoder(GameRequest, REQUEST_CACHE)
        alone = settings.batch_games == 1
        self._batchers = {
            side: Batcher(
                SideSender(
                    inbox,
                    side,
                    settings.swing_timeout,
                    self._answered,
                    lone_only=alone,
                    linger=settings.swing_timeout * settings.swing_retries,
                ),
                self._failed,
                settings.batch_games,
                in_flight=settings.max_games if alone else 1,
                live=still_asked,
            )
            for side in subjects.SIDES
        }

    async def on_request(self, msg: Msg) -> None:
        """Subscription callback of ``game.play``: read the request and whom to answer how
        (waits while ``MAX_GAMES`` are played)."""
        await self._slots.acquire()
        try:
            request = self._requests(msg.data) if msg.data else GameRequest()
        except BadMessageError as e:
            self._slots.release()
            log.warning("rejected a game request: %s", e)
            await respond_error(msg, 400, str(e))
            return
        asked_early = bool(msg.headers and early.HEADER in msg.headers)
        await self.play(
            request,
            msg.reply,
            pulse=self._pulse.watch(msg),
            answer_early=asked_early and early.takes_early(msg.reply),
        )

    async def play(
        self, request: GameRequest, reply: str | None, *, pulse: str | None, answer_early: bool
    ) -> None:
        """A :class:`GameRequest` in; its :class:`~pingpong.messages.Game` (written by
        :func:`~pingpong.wire.game_json`) is answered to ``reply`` once stored."""
        game_id = request.game_id or new_game_id()
        limits = self.limits
        if request.max_rounds is not None:
            limits = dataclasses.replace(limits, max_rounds=request.max_rounds)
        ending = Ending(early=answer_early, store_timeout=self.settings.store_timeout)
        game = Game(game_id, Rally(game_id, limits), ending, reply, pulse)
        self._games.add(game)
        self._idle.clear()
        game.timer = self._loop.call_later(self.settings.game_timeout, self._timed_out, game)
        await self.results.guard(game, self._open(game))

    async def _open(self, game: Game) -> None:
        """Ask for the first swings, then publish the started event (both leave in one write)."""
        self._ask_next(game)
        rounds = game.rally.limits.max_rounds
        event = started_event(game.game_id, self.instance, rounds, game.started_at)
        await self.nc.publish(subjects.rally_subject(game.game_id, "started"), event)

    def _ask_next(self, game: Game) -> None:
        for ask in game.rally.next_asks(time.perf_counter()):
            self._batchers[ask.side].add(Asked(game, ask))

    async def _answered(
        self, item: Asked, instance: str, results: tuple[Result, ...], at: float
    ) -> None:
        """A side answered a game's request: publish the strokes it makes, then go on."""
        if not still_asked(item):
            return
        game = item.game
        try:
            plays = game.rally.answer(item.ask, instance, results, at)
        except UnansweredError as e:  # an answer that does not fit the request
            self._failed([item], e)
            return
        await self.results.guard(game, self._play_on(game, [play.json() for play in plays]))

    async def _play_on(self, game: Game, strokes: list[bytes]) -> None:
        if strokes:  # one swing event for the strokes of this answer
            game.strokes += strokes
            await self.nc.publish(game.swing_subject, swing_event(game.game_id, strokes))
        if game.rally.over:
            await self.results.finish(game)
        else:
            self._ask_next(game)

    def _failed(self, items: list[Asked], why: UnansweredError) -> None:
        """Requests went unanswered: each game still waiting asks again (at once after a
        timeout, after a backoff else), or is given up once its retries are out."""
        for game, ask in items:
            if not game.waits_for(ask):
                continue
            try:
                delay = game.rally.failed(ask, why)
            except GameAbortedError as e:
                self.results.abort_soon(game, 503, e.reason)
                continue
            if delay:
                self._loop.call_later(delay, self._resend, game, ask)
            else:
                self._resend(game, ask)

    def _resend(self, game: Game, ask: Ask) -> None:
        if game.waits_for(ask):
            ask.sent = time.perf_counter()
            self._batchers[ask.side].add(Asked(game, ask))

    def _timed_out(self, game: Game) -> None:
        game.timer = None
        reason = f"game {game.game_id} took longer than {self.settings.game_timeout}s"
        self.results.abort_soon(game, 504, reason)

    def _forget(self, game: Game) -> None:
        """The game is answered: its place is free."""
        if game in self._games:
            self._games.discard(game)
            self._pulse.forget(game.pulse)
            self._slots.release()
            if not self._games:
                self._idle.set()

    async def use_event_log(self, stop: asyncio.Event) -> None:
        """Store final events through JetStream once the log is there (retried), and keep
        it there until ``stop``."""
        js = self.nc.jetstream(timeout=2.0)
        configs = log_configs(self.settings)
        if await wait_for_log(js, configs, stop):
            self.results.keeper = Keeper(js, configs)
            await self.results.keeper.run(stop)

    async def finish(self, timeout: float) -> None:
        """Wait (bounded) for the games in flight."""
        if self._games:
            log.info("finishing %d game(s) in flight", len(self._games))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)


async def serve(
    settings: Settings, stop: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    """Serve ``game.play`` until ``stop``, finish games in flight, drain; ``ready`` once serving."""
    instance = settings.instance("manager")
    nc = await bus.connect(settings, instance)
    try:
        manager = Manager(nc, settings, instance)  # core NATS until the stream is there
        log_ready = asyncio.create_task(manager.use_event_log(stop))
        sub = await nc.subscribe(
            subjects.GAME_PLAY, queue=subjects.MANAGER_QUEUE, cb=manager.on_request
        )
        log.info(
            "serving %s (max %d games at once, %d rounds to a draw)",
            subjects.GAME_PLAY,
            settings.max_games,
            settings.max_rounds,
        )
        await bus.sync(nc)  # the server has our subscription
        if ready is not None:
            ready.set()
        await stop.wait()
        await sub.drain()  # no new games (other managers take them); queued ones start
        await manager.finish(timeout=settings.answer_timeout + 1)
        await log_ready
    finally:
        await bus.wait_closed(nc)
    log.info("stopped")
