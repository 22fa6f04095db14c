"""Prometheus metrics of the proxy (``GET /metrics``): games, latencies, retries, viewers.

Everything comes from the games the proxy hands out, so no other service needs
an HTTP port. Each app has its own registry.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from pingpong.messages import Game

GAME_BUCKETS: Final = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SWING_BUCKETS: Final = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1)


class Metrics:
    """The proxy's metrics in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.games = Counter(
            "pingpong_games",
            "Games answered, by outcome "
            "(win, draw, aborted, timeout, unavailable, bad_request, error).",
            ["outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "pingpong_game_duration_seconds",
            "Time to answer GET / (the whole game, through NATS).",
            buckets=GAME_BUCKETS,
            registry=self.registry,
        )
        self.swing = Histogram(
            "pingpong_swing_latency_seconds",
            "Round trip of one swing request, as the manager measured it.",
            ["side"],
            buckets=SWING_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "pingpong_swing_retries",
            "Swing requests sent again (timeout or no player).",
            registry=self.registry,
        )
        self.replays = Counter(
            "pingpong_game_replays",
            "Games played again because their manager or connection went away mid-game.",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "pingpong_games_in_flight", "Games being played right now.", registry=self.registry
        )
        self.viewers = Gauge(
            "pingpong_viewers",
            "Clients of /events connected to this proxy (a scores page holds one).",
            registry=self.registry,
        )
        self.viewers_refused = Counter(
            "pingpong_viewers_refused",
            "Clients of /events refused with 503: MAX_VIEWERS were connected.",
            registry=self.registry,
        )
        self.viewers_dropped = Counter(
            "pingpong_viewers_dropped",
            "Clients of /events let go for staying behind (or missing events of their game).",
            registry=self.registry,
        )
        self.feed_skipped = Counter(
            "pingpong_feed_games_skipped",
            "Games the live feed did not show: sampled away to keep within FEED_RATE, "
            "or too long to show.",
            registry=self.registry,
        )
        self.feed_dropped = Counter(
            "pingpong_feed_events_dropped",
            "Events not sent to a client of /events that was behind (whole games).",
            registry=self.registry,
        )
        self.playing = 0
        self._swing = {side: self.swing.labels(side=side) for side in ("ping", "pong")}
        self._outcomes = {
            o: self.games.labels(outcome=o)
            for o in ("win", "draw", "aborted", "timeout", "unavailable", "bad_request", "error")
        }

    def start(self) -> None:
        """A game begins."""
        self.playing += 1
        self.in_flight.inc()

    def end(self) -> None:
        """A game ended (played or not)."""
        self.playing -= 1
        self.in_flight.dec()

    def game(self, game: Game, seconds: float) -> None:
        """Count a finished game."""
        self._outcomes["draw" if game.winner is None else "win"].inc()
        self.duration.observe(seconds)
        retries = 0
        for stroke in game.strokes:
            self._swing[stroke.side].observe(stroke.latency_ms / 1000)
            retries += stroke.attempts - 1
        if retries:
            self.retries.inc(retries)

    def failed(self, status: int) -> None:
        """Count a game that was not played, by its HTTP status."""
        outcome = {400: "bad_request", 503: "unavailable", 504: "timeout"}.get(status, "error")
        self._outcomes[outcome].inc()

    async def view(self, request: web.Request) -> web.Response:
        """``GET /metrics``: Prometheus text format."""
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
