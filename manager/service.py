"""The manager service: serves ``game.play`` (queue group ``manager``).

Every game runs in its own task, at most ``MAX_GAMES`` at once. The swings its
games ask of a side in one turn of the loop go as one request to ``<side>.swings``
(``BATCH_GAMES=1``: one request a swing to ``<side>.swing``). Events go to
``rally.<game_id>.<kind>``, the final one through JetStream with ``Nats-Msg-Id``
so a retry is stored once. Strokes and games are written as JSON by hand
(``messages.stroke_json``/``game_json``, tested equal to pydantic's bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Final

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from manager.batch import Batcher
from manager.rally import Answer, Limits, Play, play_game
from pingpong import bus, subjects
from pingpong.errors import BadMessageError, GameAbortedError, RemoteError, UnansweredError
from pingpong.messages import (
    GameRequest,
    M,
    Message,
    RallyAborted,
    RallyStarted,
    Swing,
    SwingBatch,
    SwingBatchReply,
    SwingReply,
    decode,
    encode,
    finished_event,
    now,
    swing_event,
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
"""Distinct swing replies kept decoded (a player's replies repeat: it encodes each once)."""


def _read(side: subjects.Side, model: type[M], data: bytes) -> M:
    """A player's reply as ``model``; a malformed one is logged and counts as unanswered."""
    try:
        return decode(model, data)
    except BadMessageError as e:  # a broken player: let another one answer
        log.warning("bad reply from a %s player: %s", side, e)
        raise UnansweredError(str(e)) from None


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
        self._slots = asyncio.Semaphore(settings.max_games)
        self._tasks: set[asyncio.Task[None]] = set()
        self._swing_subjects = {side: subjects.swing_subject(side) for side in subjects.SIDES}
        self._pulse = Pulse(nc)
        self._inbox = bus.Inbox(nc)
        self._replies: dict[bytes, SwingReply] = {}
        self._batchers = {
            side: Batcher(side, self._sender(side), settings.batch_games) for side in subjects.SIDES
        }

    def swing(self, side: subjects.Side, swing: Swing) -> Awaitable[Answer]:
        """One swing, batched with other games' unless ``BATCH_GAMES`` is 1;
        :class:`UnansweredError` on timeout or no responders."""
        if self.settings.batch_games > 1:
            return self._batchers[side].swing(swing)
        return self._swing_alone(side, swing)

    async def _swing_alone(self, side: subjects.Side, swing: Swing) -> Answer:
        data = await self._ask(side, self._swing_subjects[side], encode(swing))
        reply = self._replies.get(data)
        if reply is None:
            reply = _read(side, SwingReply, data)
            if len(self._replies) >= REPLY_CACHE:
                self._replies.clear()
            self._replies[data] = reply
        return reply, time.perf_counter()

    def _sender(self, side: subjects.Side) -> Callable[[SwingBatch], Awaitable[SwingBatchReply]]:
        subject = subjects.swings_subject(side)

        async def send(batch: SwingBatch) -> SwingBatchReply:
            return _read(side, SwingBatchReply, await self._ask(side, subject, encode(batch)))

        return send

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

    async def on_request(self, msg: Msg) -> None:
        """Subscription callback: start the game in a task (waits while at ``MAX_GAMES``)."""
        await self._slots.acquire()
        task = asyncio.create_task(self._serve(msg))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _serve(self, msg: Msg) -> None:
        try:
            request = decode(GameRequest, msg.data) if msg.data else GameRequest()
        except BadMessageError as e:
            log.warning("rejected a game request: %s", e)
            await bus.respond_error(msg, 400, str(e))
            return
        pulse = self._pulse.watch(msg)
        try:
            game = await self.play(request)
        except GameAbortedError as e:
            await bus.respond_error(msg, 504 if e.timed_out else 503, e.reason)
            return
        except Exception:  # never let one game take the service down
            log.exception("game failed")
            await bus.respond_error(msg, 500, "internal error in the manager")
            return
        finally:
            self._pulse.forget(pulse)
        if msg.reply:
            await self.nc.publish(msg.reply, game)

    async def play(self, request: GameRequest) -> bytes:
        """Play one game, publishing its events: the game's JSON; :class:`GameAbortedError`."""
        game_id = request.game_id or new_game_id()
        limits = self.limits
        if request.max_rounds is not None:
            limits = dataclasses.replace(limits, max_rounds=request.max_rounds)
        started_at = now()
        started = RallyStarted(
            game_id=game_id, manager=self.instance, max_rounds=limits.max_rounds, at=started_at
        )

        async def on_start() -> None:
            await self._event(game_id, "started", started)

        strokes: list[bytes] = []  # their JSON, written once for the events and the game
        swing_subject = subjects.rally_subject(game_id, "swing")

        async def on_stroke(play: Play) -> None:
            stroke = play.json()
            strokes.append(stroke)
            await self.nc.publish(swing_subject, swing_event(game_id, stroke))

        try:
            async with asyncio.timeout(self.settings.game_timeout):
                game = await play_game(
                    self.swing,
                    game_id,
                    self.instance,
                    limits,
                    on_stroke,
                    on_start=on_start,
                    started_at=started_at,
                )
        except (GameAbortedError, TimeoutError) as e:
            timed_out = isinstance(e, TimeoutError)
            reason = (
                f"game {game_id} took longer than {self.settings.game_timeout}s"
                if timed_out
                else str(e)
            )
            log.warning("aborted: %s", reason, extra={"game_id": game_id})
            aborted = RallyAborted(
                game_id=game_id,
                manager=self.instance,
                reason=reason,
                strokes=len(strokes),
                at=now(),
            )
            with contextlib.suppress(GameAbortedError):  # logged; the abort is the answer
                await self._final(game_id, "aborted", encode(aborted))
            raise GameAbortedError(reason, timed_out=timed_out) from None
        data = game.json(strokes)
        await self._final(game_id, "finished", finished_event(data))
        log.debug("finished: %s", game.winner or "draw", extra={"game_id": game_id})
        return data

    async def _event(self, game_id: str, kind: subjects.EventKind, event: Message) -> None:
        await self.nc.publish(subjects.rally_subject(game_id, kind), encode(event))

    async def _final(self, game_id: str, kind: subjects.EventKind, data: bytes) -> None:
        """Store the final event before the game is answered, so an answered game is in the log.

        Through JetStream with ``Nats-Msg-Id``, retried for ``STORE_TIMEOUT`` (a cluster may be
        electing a stream leader); a retry of a stored event is stored once. Without the stream
        (no JetStream), core NATS. Raises :class:`GameAbortedError` if it cannot be stored.
        """
        subject = subjects.rally_subject(game_id, kind)
        headers = {"Nats-Msg-Id": subjects.finished_msg_id(game_id, kind)}
        if not self.stream_ready:
            await self.nc.publish(subject, data, headers=headers)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.store_timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._inbox.store(
                    subject, data, min(2.0, self.settings.store_timeout), headers
                )
                if attempt > 1:
                    log.info(
                        "%s event stored after %d tries", kind, attempt, extra={"game_id": game_id}
                    )
                return
            except (nats.errors.Error, nats.js.errors.APIError) as e:
                if loop.time() >= deadline:
                    reason = (
                        f"the result of game {game_id} could not be stored in the event log "
                        f"within {self.settings.store_timeout:g}s ({attempt} tries): {e}"
                    )
                    log.error("%s", reason, extra={"game_id": game_id})
                    raise GameAbortedError(reason) from None
                if attempt == 1:
                    log.warning(
                        "storing %s event failed (%s); retrying",
                        kind,
                        e,
                        extra={"game_id": game_id},
                    )
                await asyncio.sleep(0.25)

    async def use_event_log(self, stop: asyncio.Event) -> None:
        """Store final events through JetStream once the stream is there (retried)."""
        js = self.nc.jetstream(timeout=2.0)
        self.stream_ready = await bus.wait_for_stream(js, self.settings.stream_replicas, stop)

    async def finish(self, timeout: float) -> None:
        """Wait (bounded) for the games in flight."""
        if self._tasks:
            log.info("finishing %d game(s) in flight", len(self._tasks))
            await asyncio.wait(list(self._tasks), timeout=timeout)


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
