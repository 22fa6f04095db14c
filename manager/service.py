"""The manager service: serves ``game.play`` (queue group ``manager``).

A game in play is a :class:`~manager.rally.Rally` and a few fields, not a task;
at most ``MAX_GAMES`` at once. The swings its games ask of a side in one turn of
the loop go as one request to ``<side>.swings`` (a lone one, or all with
``BATCH_GAMES=1``: one request a swing to ``<side>.swing``), and the answer plays
every game in it on: its strokes go out as ``rally.<game_id>.swing`` events, in
order. A game that is over has its final event stored through JetStream with
``Nats-Msg-Id`` (a retry is stored once) and is answered when the stream has acked
it; a requester that asks for it early (``Pingpong-Early``) has the game at once
and hears that ack itself. Strokes, events and games are
written as JSON by hand (``messages.stroke_json`` and the rest, tested equal to
pydantic's bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, NamedTuple

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from manager.batch import Batcher
from manager.rally import Ask, Limits, Rally, ms
from pingpong import bus, subjects
from pingpong.errors import BadMessageError, GameAbortedError, RemoteError, UnansweredError
from pingpong.messages import (
    GameRequest,
    M,
    RallyAborted,
    Result,
    SwingBatchReply,
    SwingReply,
    decode,
    encode,
    finished_event,
    now,
    started_event,
    swing_batch_json,
    swing_event,
    swing_json,
)
from pingpong.settings import Settings

log = logging.getLogger(__name__)


class Pulse:
    """Heartbeats to the requesters that asked for them (``Pingpong-Heartbeat``).

    One ticker for all games; most games end before their first heartbeat is due.
    """

    TICK: Final = 0.1
    """Seconds between checks of what is due."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self._due: dict[str, tuple[float, float]] = {}  # reply -> (next, every)
        self._ticker: asyncio.Task[None] | None = None

    def watch(self, msg: Msg) -> str | None:
        """Start heartbeats for ``msg`` if it asked; the key to :meth:`forget`."""
        every = msg.headers.get(subjects.HEARTBEAT_HEADER) if msg.headers else None
        if not every or not msg.reply:
            return None
        try:
            seconds = min(max(float(every), 0.1), 30.0)
        except ValueError:
            return None
        loop = asyncio.get_running_loop()
        self._due[msg.reply] = (loop.time() + seconds, seconds)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.create_task(self._tick())
        return msg.reply

    def forget(self, reply: str | None) -> None:
        if reply is not None:
            self._due.pop(reply, None)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        beat = {subjects.HEARTBEAT_HEADER: "1"}
        while self._due:
            await asyncio.sleep(self.TICK)
            now = loop.time()
            for reply, (due, every) in list(self._due.items()):
                if due <= now and reply in self._due:
                    self._due[reply] = (now + every, every)
                    with contextlib.suppress(nats.errors.Error):
                        await self.nc.publish(reply, b"", headers=beat)


_IDS = random.Random()  # seeded from the OS; ids need to be unique, not secret


def new_game_id() -> str:
    """A fresh game id: 12 hex digits, one subject token."""
    return f"{_IDS.getrandbits(48):012x}"


REPLY_CACHE: Final = 1024
"""Distinct replies kept decoded (a player's replies repeat: it encodes each once)."""

REQUEST_CACHE: Final = 64
"""Distinct ``game.play`` payloads without a game id kept decoded (the proxy's repeat)."""

STORE_RETRY: Final = 0.25
"""Seconds between two tries to store a final event."""

EARLY_ANSWER: Final = {subjects.EARLY_HEADER: "1"}
"""The header of an early answer: the game, before the stream has acked it."""

INTERNAL_ERROR: Final = "internal error in the manager"
"""The answer to a game that failed on a bug (its traceback is in the log)."""


def _read(side: subjects.Side, model: type[M], data: bytes) -> M:
    """A player's reply as ``model``; a malformed one is logged and counts as unanswered."""
    try:
        return decode(model, data)
    except BadMessageError as e:  # a broken player: let another one answer
        log.warning("bad reply from a %s player: %s", side, e)
        raise UnansweredError(str(e)) from None


class _Game:
    """One game in play: its rally and what it takes to publish and answer it."""

    __slots__ = (
        "done",
        "early",
        "ended",
        "game_id",
        "pulse",
        "rally",
        "reply",
        "start",
        "started_at",
        "strokes",
        "swing_subject",
        "timer",
    )

    def __init__(
        self, game_id: str, rally: Rally, msg: Msg, pulse: str | None, early: bool
    ) -> None:
        self.game_id = game_id
        self.rally = rally
        self.reply = msg.reply
        self.pulse = pulse
        self.early = early
        """True if the requester takes the game before it is stored (``Pingpong-Early``)."""
        self.start = time.perf_counter()
        self.started_at = now()
        self.strokes: list[bytes] = []  # their JSON, written once for the events and the game
        self.swing_subject = subjects.rally_subject(game_id, "swing")
        self.done = False
        """True once the rally is over or given up: answers that come later are dropped."""
        self.ended = False
        """True once the game is answered and forgotten."""
        self.timer: asyncio.TimerHandle | None = None


class _Swing(NamedTuple):
    """An item of a batch: a game's request to a side, and which try of it this is."""

    game: _Game
    ask: Ask
    attempt: int


def _waiting(item: _Swing) -> bool:
    """True while the game still waits for this try of this request."""
    return (
        not item.game.done
        and item.ask.attempts == item.attempt
        and item.game.rally.waits_for(item.ask)
    )


@dataclasses.dataclass(slots=True)
class _Final:
    """A final event to store before its game is answered (retried until ``deadline``)."""

    game: _Game
    kind: subjects.EventKind
    event: bytes
    answer: bytes | None  # the game's JSON; None for an aborted game, answered with ``error``
    error: tuple[int, str] = (503, "")
    deadline: float = 0.0
    tries: int = 0
    early: bool = False  # answered already; the requester hears the first try's ack too


class Manager:
    """Plays games on one NATS connection."""

    def __init__(self, nc: Client, settings: Settings, instance: str) -> None:
        self.nc = nc
        self.settings = settings
        self.instance = instance
        self.stream_ready = False  # final events go through JetStream once RALLY is there
        self.limits = Limits(
            max_rounds=settings.max_rounds,
            retries=settings.swing_retries,
            ahead=settings.swings_ahead,
        )
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(settings.max_games)
        self._games: set[_Game] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()  # the rare paths: aborts, store retries
        self._pulse = Pulse(nc)
        self._token = nc.new_inbox().rpartition(".")[2]  # names this manager's stored acks
        self._inbox = bus.Inbox(nc, replies=subjects.stored_acks(self._token))
        self._requests: dict[bytes, GameRequest] = {}
        self._replies: dict[bytes, SwingReply] = {}
        alone = settings.batch_games == 1
        self._batchers = {
            side: Batcher(
                self._sender(side, alone),
                self._failed,
                settings.batch_games,
                in_flight=settings.max_games if alone else 1,
                live=_waiting,
            )
            for side in subjects.SIDES
        }

    # -- a game from its request to its first swings

    async def on_request(self, msg: Msg) -> None:
        """Subscription callback: start the game (waits while at ``MAX_GAMES``)."""
        await self._slots.acquire()
        try:
            request = self._request(msg.data)
        except BadMessageError as e:
            self._slots.release()
            log.warning("rejected a game request: %s", e)
            await bus.respond_error(msg, 400, str(e))
            return
        game_id = request.game_id or new_game_id()
        limits = self.limits
        if request.max_rounds is not None:
            limits = dataclasses.replace(limits, max_rounds=request.max_rounds)
        early = msg.headers is not None and subjects.EARLY_HEADER in msg.headers
        game = _Game(
            game_id,
            Rally(game_id, limits),
            msg,
            self._pulse.watch(msg),
            early and subjects.early_reply(msg.reply),
        )
        self._games.add(game)
        self._idle.clear()
        game.timer = self._loop.call_later(self.settings.game_timeout, self._timed_out, game)
        await self._guard(game, self._open(game))

    def _request(self, data: bytes) -> GameRequest:
        request = self._requests.get(data)
        if request is None:
            request = decode(GameRequest, data) if data else GameRequest()
            if request.game_id is None:
                if len(self._requests) >= REQUEST_CACHE:
                    self._requests.clear()
                self._requests[data] = request
        return request

    async def _open(self, game: _Game) -> None:
        """Ask for the first swings, then publish the started event (both leave in one write)."""
        self._ask_round(game)
        rounds = game.rally.limits.max_rounds
        event = started_event(game.game_id, self.instance, rounds, game.started_at)
        await self.nc.publish(subjects.rally_subject(game.game_id, "started"), event)

    def _ask_round(self, game: _Game) -> None:
        for ask in game.rally.next_round(time.perf_counter()):
            self._batchers[ask.side].add(_Swing(game, ask, 1))

    # -- swings out, answers in

    def _sender(
        self, side: subjects.Side, alone: bool
    ) -> Callable[[list[_Swing]], Awaitable[None]]:
        swings = subjects.swings_subject(side)
        swing = subjects.swing_subject(side)

        async def send_batch(items: list[_Swing]) -> None:
            if len(items) == 1:  # a lone swing: the smaller request, and its reply cached
                await send_one(items)
                return
            payload = swing_batch_json((i.game.game_id, i.ask.first, i.ask.count) for i in items)
            reply = _read(side, SwingBatchReply, await self._ask(side, swings, payload))
            if reply.side != side or len(reply.results) != len(items):
                raise UnansweredError(
                    f"a {reply.side} player answered {len(reply.results)} of "
                    f"{len(items)} {side} swings"
                )
            at = time.perf_counter()
            for item, results in zip(items, reply.results, strict=True):
                await self._answered(item, reply.instance, results, at)

        async def send_one(items: list[_Swing]) -> None:
            (item,) = items
            ask = item.ask
            data = await self._ask(side, swing, swing_json(item.game.game_id, ask.first, ask.count))
            reply = self._replies.get(data)
            if reply is None:
                reply = _read(side, SwingReply, data)
                if len(self._replies) >= REPLY_CACHE:
                    self._replies.clear()
                self._replies[data] = reply
            if reply.side != side:
                raise UnansweredError(f"a {reply.side} player answered a {side} swing")
            await self._answered(item, reply.instance, reply.results, time.perf_counter())

        return send_one if alone else send_batch

    async def _ask(self, side: subjects.Side, subject: str, payload: bytes) -> bytes:
        """A request to a side's players: the reply's data; :class:`UnansweredError`."""
        try:
            msg = await self._inbox.request(subject, payload, self.settings.swing_timeout)
            return bus.raise_for_error(msg).data
        except nats.errors.NoRespondersError:
            raise UnansweredError("no responders") from None
        except nats.errors.TimeoutError:
            raise UnansweredError(f"timeout after {self.settings.swing_timeout}s") from None
        except RemoteError as e:  # a broken player: let another one answer
            log.warning("bad reply from a %s player: %s", side, e)
            raise UnansweredError(str(e)) from None

    async def _answered(
        self, item: _Swing, instance: str, results: tuple[Result, ...], at: float
    ) -> None:
        """A side answered a game's request: publish the strokes it makes, then go on."""
        if not _waiting(item):
            return
        game = item.game
        try:
            plays = game.rally.answer(item.ask, instance, results, at)
        except UnansweredError as e:
            self._retry(item, str(e))
            return
        await self._guard(game, self._play_on(game, [play.json() for play in plays]))

    async def _play_on(self, game: _Game, strokes: list[bytes]) -> None:
        if strokes:  # one swing event for the strokes of this answer
            game.strokes += strokes
            await self.nc.publish(game.swing_subject, swing_event(game.game_id, strokes))
        if game.rally.over:
            await self._finished(game)
        else:
            self._ask_round(game)

    def _failed(self, items: list[_Swing], reason: str) -> None:
        """A batch went unanswered: each game still waiting for it asks again."""
        for item in items:
            if _waiting(item):
                self._retry(item, reason)

    def _retry(self, item: _Swing, reason: str) -> None:
        try:
            delay = item.game.rally.failed(item.ask, reason)
        except GameAbortedError as e:  # out of retries
            self._abort(item.game, e.reason)
            return
        self._loop.call_later(delay, self._resend, item.game, item.ask)

    def _resend(self, game: _Game, ask: Ask) -> None:
        if not game.done and game.rally.waits_for(ask):
            ask.sent = time.perf_counter()
            self._batchers[ask.side].add(_Swing(game, ask, ask.attempts))

    # -- the end of a game: its final event stored, then the answer

    async def _finished(self, game: _Game) -> None:
        self._close(game)
        played = game.rally.played(
            self.instance, ms(time.perf_counter() - game.start), game.started_at
        )
        data = played.json(game.strokes)
        log.debug("finished: %s", played.winner or "draw", extra={"game_id": game.game_id})
        await self._store(_Final(game, "finished", finished_event(data), data))

    def _timed_out(self, game: _Game) -> None:
        game.timer = None
        reason = f"game {game.game_id} took longer than {self.settings.game_timeout}s"
        self._abort(game, reason, timed_out=True)

    def _abort(self, game: _Game, reason: str, *, timed_out: bool = False) -> None:
        """Give the game up: store its aborted event, then answer 503 (504 if it timed out)."""
        if game.done:
            return
        self._close(game)
        log.warning("aborted: %s", reason, extra={"game_id": game.game_id})
        aborted = RallyAborted(
            game_id=game.game_id,
            manager=self.instance,
            reason=reason,
            strokes=len(game.strokes),
            at=now(),
        )
        final = _Final(game, "aborted", encode(aborted), None, (504 if timed_out else 503, reason))
        self._spawn(game, self._store(final))

    def _close(self, game: _Game) -> None:
        game.done = True
        if game.timer is not None:
            game.timer.cancel()
            game.timer = None

    async def _store(self, final: _Final) -> None:
        """Store the final event before the game is answered, so an answered game is in the log.

        Through JetStream with ``Nats-Msg-Id``, tried again for ``STORE_TIMEOUT`` (a cluster
        may be electing a stream leader); a retry of a stored event is stored once. Without
        the stream (no JetStream), core NATS. A game whose result cannot be stored is
        answered 503. A requester that asked early (``Pingpong-Early``) hears the first
        try's ack too (:func:`~pingpong.subjects.stored_subject`) and is sent the game in
        the same write; if that ack says not stored, or none comes, the retry answers again.
        """
        game = final.game
        subject = subjects.rally_subject(game.game_id, final.kind)
        headers = {"Nats-Msg-Id": subjects.finished_msg_id(game.game_id, final.kind)}
        if not self.stream_ready:
            await self.nc.publish(subject, final.event, headers=headers)
            await self._answer(final)
            return
        reply = None  # the stream's ack comes to us alone
        if not final.tries:
            final.deadline = self._loop.time() + self.settings.store_timeout
            if game.early and final.answer is not None and game.reply is not None:
                final.early = True  # ... and to the requester, answered in the same write
                reply = subjects.stored_subject(game.reply, self._token)
        final.tries += 1
        try:
            await self._inbox.send(
                subject,
                final.event,
                min(2.0, self.settings.store_timeout),
                lambda msg: self._guard(game, self._stored(final, msg)),
                headers,
                reply=reply,
            )
        except nats.errors.Error as e:
            await self._not_stored(final, e)
            return
        if reply is not None and game.reply is not None:
            try:
                await self.nc.publish(game.reply, final.answer or b"", headers=EARLY_ANSWER)
            except nats.errors.Error:
                final.early = False  # not answered: answered once stored, as without the header

    async def _stored(self, final: _Final, msg: Msg | None) -> None:
        try:
            if msg is None:
                raise nats.errors.TimeoutError
            bus.stored_sequence(msg)
        except (nats.errors.Error, nats.js.errors.APIError) as e:
            await self._not_stored(final, e)
            return
        if final.tries > 1:
            log.info(
                "%s event stored after %d tries",
                final.kind,
                final.tries,
                extra={"game_id": final.game.game_id},
            )
        elif final.early:  # the requester heard this same ack: it has its answer
            self._end(final.game)
            return
        await self._answer(final)

    async def _not_stored(self, final: _Final, e: Exception) -> None:
        game_id = final.game.game_id
        if self._loop.time() >= final.deadline:
            reason = (
                f"the result of game {game_id} could not be stored in the event log "
                f"within {self.settings.store_timeout:g}s ({final.tries} tries): {e}"
            )
            log.error("%s", reason, extra={"game_id": game_id})
            if final.answer is not None:  # an aborted game keeps its own reason
                final.answer, final.error = None, (503, reason)
            await self._answer(final)
            return
        if final.tries == 1:
            log.warning(
                "storing %s event failed (%s); retrying", final.kind, e, extra={"game_id": game_id}
            )
        self._loop.call_later(STORE_RETRY, lambda: self._spawn(final.game, self._store(final)))

    async def _answer(self, final: _Final) -> None:
        await self._reply(final.game, final.answer, final.error)

    async def _reply(self, game: _Game, answer: bytes | None, error: tuple[int, str]) -> None:
        """Answer the game once (``answer``, its JSON, or else ``error``) and forget it."""
        if game.ended:
            return
        self._end(game)
        if game.reply is None:
            return
        with contextlib.suppress(nats.errors.Error):  # the requester gives up on its own
            if answer is not None:
                await self.nc.publish(game.reply, answer)
            else:
                await bus.respond_error_to(self.nc, game.reply, *error)

    def _end(self, game: _Game) -> None:
        game.ended = True
        self._games.discard(game)
        self._pulse.forget(game.pulse)
        self._slots.release()
        if not self._games:
            self._idle.set()

    # -- what must not take the service down

    async def _guard(self, game: _Game, step: Coroutine[Any, Any, None]) -> None:
        """Run a step of a game; an error fails that game alone, answered once: 503 for a
        NATS error while it is played, 500 (logged with its traceback) for anything else."""
        try:
            await step
        except nats.errors.Error as e:
            reason = f"lost NATS while playing: {type(e).__name__}"
            if not game.done:
                self._abort(game, reason)
            else:
                log.warning("%s", reason, extra={"game_id": game.game_id})
                await self._reply(game, None, (503, reason))
        except Exception:
            log.exception("game failed", extra={"game_id": game.game_id})
            self._close(game)
            await self._reply(game, None, (500, INTERNAL_ERROR))

    def _spawn(self, game: _Game, step: Coroutine[Any, Any, None]) -> None:
        """Run a step of a game in a task of its own (the rare paths: aborts, store retries)."""
        task = asyncio.ensure_future(self._guard(game, step))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def use_event_log(self, stop: asyncio.Event) -> None:
        """Store final events through JetStream once the stream is there (retried)."""
        js = self.nc.jetstream(timeout=2.0)
        self.stream_ready = await bus.wait_for_stream(js, bus.stream_config(self.settings), stop)

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
