"""The live feed's I/O: one NATS subscription per proxy, fanned out to every viewer.

While any ``/events`` client is connected the proxy holds one subscription to
``rally.>``, so nats-server sends each event once to the proxy however many watch.
Each event goes to the :class:`~proxy.feed.Feed` (which decides what the viewers of
the whole feed get) and, framed once, to the viewers of its game
(``/events?game=ID``), found by the subject's game token. Every
:data:`~proxy.feed.FLUSH` seconds the tick loop writes the feed's batch, the same
bytes, to every viewer of the whole feed whose :class:`~proxy.pace.Pace` says so,
asks for the scores when the feed says so, notices viewers that went away, and drops
the subscription when the last one has gone.

Nothing is buffered per viewer but what its socket has not taken (the kernel's share
bounded by :data:`SEND_BUFFER`): a viewer of the whole feed is written to only when
nothing waits for it, one of a game while less than
:data:`~proxy.pace.GAME_BACKLOG` does, so ``StreamResponse.write`` never waits (the
transport's high-water mark, :data:`HIGH_WATER`, is above anything that adds up to)
and one loop writes to all of them. A viewer that has gone costs nothing from the next
tick: it leaves the :class:`Audience` and its request ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Final

import nats.errors
from aiohttp import web
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from pingpong import subjects
from pingpong.errors import RemoteError
from pingpong.handlers import raise_for_error
from proxy.feed import FLUSH, KEEPALIVE, KINDS, Feed, frame
from proxy.metrics import Metrics
from proxy.pace import Pace, Verdict

log = logging.getLogger(__name__)

SCORES_TIMEOUT: Final = 2.0
"""Seconds to wait for the scoreboard."""

HIGH_WATER: Final = 4 * 1024 * 1024
"""A viewer's transport high-water mark: above the largest single write (an event is
at most nats-server's 1 MiB payload), so a write to a viewer with nothing waiting never
pauses it, and ``write`` returns at once."""

SEND_BUFFER: Final = 16 * 1024
"""The kernel's send buffer of a viewer's socket (Linux doubles it), a batch or two.
Left to itself Linux grows it to megabytes for a client that reads nothing (300 such
held 220 MB of kernel memory after 25 s, which a container's memory limit counts), and
the proxy would not see it fall behind until then."""

PENDING_MSGS: Final = 20_000
"""Events the subscription may hold before they are handled; beyond, nats-py drops
them (then every rally being collected is dropped: it would be torn)."""

PENDING_BYTES: Final = 8 * 1024 * 1024
"""Bytes of events the subscription may hold before they are handled."""


class Viewer:
    """One ``/events`` client: its request and response, and its pace."""

    __slots__ = ("game", "gone", "joined", "pace", "request", "response", "slot")

    def __init__(
        self, request: web.Request, response: web.StreamResponse, game: str | None, now: float
    ) -> None:
        self.request = request
        self.response = response
        self.game = game
        """The game it watches (every event of it), or None: the whole feed."""
        self.pace = Pace(now, complete=game is not None)
        self.gone = asyncio.Event()
        """Set when its stream is to end (it went away, was let go, or the proxy stops)."""
        self.slot = False
        """It holds one of the hub's :attr:`Hub.max_viewers` slots."""
        self.joined = False
        """It is sent to."""

    def backlog(self) -> int:
        """Bytes waiting in the proxy for this viewer; -1 if its connection has gone."""
        transport = self.request.transport
        if transport is None or transport.is_closing():
            return -1
        return transport.get_write_buffer_size()


class Audience:
    """Who watches: the viewers of the whole feed, those of each game, and their slots."""

    def __init__(self, metrics: Metrics, max_viewers: int) -> None:
        self.metrics = metrics
        self.max_viewers = max_viewers
        self.slots = 0
        """Viewers admitted (sent to, or on their way)."""
        self.whole: set[Viewer] = set()
        """Viewers of the whole feed."""
        self.by_game: dict[str, set[Viewer]] = {}
        """Viewers of one game, by game id."""
        self.closing = False
        """The proxy stops: no new viewer is taken."""

    def admit(self, viewer: Viewer) -> bool:
        """Give ``viewer`` a slot: False when :attr:`max_viewers` are here (or the proxy
        is stopping)."""
        if self.closing or self.slots >= self.max_viewers:
            return False
        viewer.slot = True
        self.slots += 1
        self.metrics.viewers.set(self.slots)
        return True

    def add(self, viewer: Viewer) -> None:
        """An admitted ``viewer`` is sent to from now on."""
        viewer.joined = True
        if viewer.game is None:
            self.whole.add(viewer)
        else:
            self.by_game.setdefault(viewer.game, set()).add(viewer)

    def leave(self, viewer: Viewer) -> None:
        """``viewer``'s stream ends and its slot is free (once; again does nothing)."""
        viewer.gone.set()
        if viewer.joined:
            viewer.joined = False
            if viewer.game is None:
                self.whole.discard(viewer)
            else:
                watchers = self.by_game.get(viewer.game)
                if watchers is not None:
                    watchers.discard(viewer)
                    if not watchers:
                        del self.by_game[viewer.game]
        if viewer.slot:
            viewer.slot = False
            self.slots -= 1
            self.metrics.viewers.set(self.slots)

    def let_go(self, viewer: Viewer, events: int) -> None:
        """Drop ``viewer`` (it fell behind, or would miss events), counting ``events``."""
        self.metrics.feed_dropped.inc(events)
        self.metrics.viewers_dropped.inc()
        transport = viewer.request.transport
        if transport is not None:
            transport.abort()  # what waits for it is thrown away now
        self.leave(viewer)

    def of_games(self) -> list[Viewer]:
        """Every viewer of one game."""
        return [viewer for watchers in self.by_game.values() for viewer in watchers]

    def end(self) -> None:
        """The proxy stops: every stream ends now; no new viewer is taken."""
        self.closing = True
        for viewer in [*self.whole, *self.of_games()]:
            viewer.gone.set()


class Hub:
    """Every ``/events`` client of one proxy (its :class:`Audience`) and the one
    subscription they share."""

    def __init__(self, nc: Client, metrics: Metrics, max_viewers: int, rate: float) -> None:
        self.nc = nc
        self.metrics = metrics
        self.audience = Audience(metrics, max_viewers)
        self.loop = asyncio.get_running_loop()
        self.feed = Feed(rate, self.loop.time())
        self.pending_msgs = PENDING_MSGS
        """Events the subscription may hold (:data:`PENDING_MSGS`; tests make it small)."""
        self._sub: Subscription | None = None
        self._subscribing = asyncio.Lock()
        self._handled = 0
        self._lost = 0
        self._fetch: asyncio.Task[None] | None = None
        self._ticks: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the tick loop."""
        self._ticks = asyncio.create_task(self._tick_loop())

    async def join(self, viewer: Viewer) -> None:
        """Start sending to an admitted ``viewer`` (its response is prepared)."""
        await self._subscribe()
        transport = viewer.request.transport
        if transport is None or transport.is_closing() or self.audience.closing:
            viewer.gone.set()
            return
        transport.set_write_buffer_limits(high=HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self.audience.add(viewer)

    async def _subscribe(self) -> None:
        async with self._subscribing:
            if self._sub is None:
                self._handled = self._lost = 0
                self._sub = await self.nc.subscribe(
                    subjects.RALLY_ALL,
                    cb=self._on_event,
                    pending_msgs_limit=self.pending_msgs,
                    pending_bytes_limit=PENDING_BYTES,
                )
                log.info("watching rally.> for the live feed")

    async def _unsubscribe(self) -> None:
        async with self._subscribing:
            sub, self._sub = self._sub, None
            if sub is not None:
                with contextlib.suppress(nats.errors.Error):
                    await sub.unsubscribe()
                self.feed.lost()
                log.info("no viewers: stopped watching rally.>")

    async def _on_event(self, msg: Msg) -> None:
        """One event of ``rally.>``: to the feed, and to the viewers of its game."""
        self._handled += 1
        sub = self._sub
        if sub is not None:
            lost = sub.delivered - sub.pending_msgs - self._handled
            if lost > self._lost:
                log.warning("the live feed fell behind; %d events lost", lost - self._lost)
                self.lost(lost - self._lost)
                self._lost = lost
        parts = msg.subject.split(".")
        if len(parts) != 3 or parts[2] not in KINDS:
            return
        _, game, kind = parts
        now = self.loop.time()
        self.feed.event(game, kind, msg.data, now)
        watchers = self.audience.by_game.get(game)
        if watchers:
            data = frame(kind, msg.data)
            for viewer in list(watchers):
                await self._deliver(viewer, data, 1, now)

    def lost(self, events: int = 0) -> None:
        """Events will never come (nats-py dropped ``events`` as this proxy fell behind,
        or the NATS connection dropped): no rally is shown torn, and every viewer of one
        game, who would miss some of its events, is let go."""
        self.feed.lost()
        for viewer in self.audience.of_games():
            self.audience.let_go(viewer, events)

    async def _deliver(self, viewer: Viewer, data: bytes | None, events: int, now: float) -> None:
        """Offer ``viewer`` the ``data`` of ``events`` (None: a tick with nothing for it,
        due a keep-alive if it has been quiet): write it if its pace says so; else skip it
        or let the viewer go, and count."""
        backlog = viewer.backlog()
        if backlog < 0:
            self.audience.leave(viewer)
            return
        if data is None:
            verdict = viewer.pace.idle(backlog, now)
        else:
            verdict = viewer.pace.offer(backlog, now)
        if verdict is Verdict.SEND:
            try:
                await viewer.response.write(KEEPALIVE if data is None else data)
            except (ConnectionResetError, RuntimeError):
                self.audience.leave(viewer)
        elif verdict is Verdict.DROP:
            self.audience.let_go(viewer, events)
        elif data is not None:
            self.metrics.feed_dropped.inc(events)

    async def _tick_loop(self) -> None:
        while not self.audience.closing:
            await asyncio.sleep(FLUSH)
            try:
                await self._tick()
            except Exception:  # the feed must outlive a bug in one tick
                log.exception("live feed tick failed")

    async def _tick(self) -> None:
        now = self.loop.time()
        tick = self.feed.tick(now)
        if tick.skipped:
            self.metrics.feed_skipped.inc(tick.skipped)
        if tick.fetch_scores:
            self._fetch = asyncio.create_task(self._fetch_scores())
        for viewer in list(self.audience.whole):
            await self._deliver(viewer, tick.batch or None, tick.events, now)
        for viewer in self.audience.of_games():
            await self._deliver(viewer, None, 0, now)
        if not self.audience.slots and self._sub is not None:
            await self._unsubscribe()

    async def _fetch_scores(self) -> None:
        """One ``scores.get`` for every viewer; the answer goes out in the next batch."""
        try:
            msg = raise_for_error(
                await self.nc.request(subjects.SCORES_GET, b"", timeout=SCORES_TIMEOUT)
            )
        except (nats.errors.Error, RemoteError) as e:
            log.debug("scores for the live feed: %s", e)
            self.feed.scores_failed(self.loop.time())
            return
        self.feed.scores(msg.data)

    async def close(self) -> None:
        """Stop the tick loop and the subscription (after the audience's ``end``)."""
        self.audience.end()
        for task in (self._ticks, self._fetch):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._unsubscribe()
