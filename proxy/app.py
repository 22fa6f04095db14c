"""The proxy's app factory and runner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections.abc import AsyncIterator

from aiohttp import web
from nats.aio.client import Client

from pingpong import bus
from pingpong.settings import Settings
from proxy.games import GameClient
from proxy.keys import GAMES, INSTANCE, LIVE, METRICS, NATS, SETTINGS, SHUTTING_DOWN
from proxy.live import Hub
from proxy.metrics import Metrics
from proxy.middlewares import (
    MAX_BODY,
    MAX_HEADERS,
    MAX_LINE,
    one_line_errors,
    security_headers,
)
from proxy.routes import setup_routes

log = logging.getLogger(__name__)


async def nats_connection(app: web.Application) -> AsyncIterator[None]:
    """Connect in the background, so the proxy answers 503 (not refuses) while NATS is away."""
    nc = Client()
    app[NATS] = nc
    games = app[GAMES] = GameClient(nc)

    def connection_lost() -> None:
        games.connection_lost()
        if LIVE in app:
            app[LIVE].lost()

    async def connect() -> None:
        await bus.connect(app[SETTINGS], app[INSTANCE], nc, on_disconnect=connection_lost)
        await games.start()

    connecting = asyncio.create_task(connect())
    yield
    if not connecting.done():
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await connecting
    await bus.wait_closed(nc)


async def live_feed(app: web.Application) -> AsyncIterator[None]:
    """The hub of the ``/events`` clients (it subscribes while it has any)."""
    settings = app[SETTINGS]
    hub = app[LIVE] = Hub(app[NATS], app[METRICS], settings.max_viewers, settings.feed_rate)
    hub.start()
    yield
    await hub.close()


async def _end_streams(app: web.Application) -> None:
    app[SHUTTING_DOWN].set()
    if LIVE in app:
        app[LIVE].audience.end()


def create_app(settings: Settings, instance: str | None = None) -> web.Application:
    """The proxy app; the NATS connection lives in its cleanup context."""
    app = web.Application(middlewares=[one_line_errors], client_max_size=MAX_BODY)
    app.on_response_prepare.append(security_headers)
    app[SETTINGS] = settings
    app[INSTANCE] = instance or settings.instance("proxy")
    app[SHUTTING_DOWN] = asyncio.Event()
    app[METRICS] = Metrics()
    app.on_shutdown.append(_end_streams)
    app.cleanup_ctx.append(nats_connection)
    app.cleanup_ctx.append(live_feed)
    setup_routes(app)
    return app


SPARE_FILES = 256
"""Open files the proxy needs besides its clients' sockets (NATS, logs, the ones being
accepted)."""


def _open_files(wanted: int) -> None:
    """Raise the soft limit of open files to ``wanted`` where the hard limit allows (a
    shell's 1,024 is below ``MAX_VIEWERS`` and ``MAX_INFLIGHT`` together)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        log.info("open files: soft limit %d -> %d", soft, target)


async def serve(
    settings: Settings, stop: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    """Listen on ``HTTP_HOST:HTTP_PORT`` until ``stop``; finish requests in flight."""
    _open_files(settings.max_viewers + settings.max_inflight + SPARE_FILES)
    app = create_app(settings)
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=settings.answer_timeout + 1,
        keepalive_timeout=30,
        max_line_size=MAX_LINE,
        max_field_size=MAX_LINE,
        max_headers=MAX_HEADERS,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.http_host, settings.http_port, backlog=1024)
        await site.start()
        log.info("listening on http://%s:%d", settings.http_host, settings.http_port)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await runner.cleanup()
    log.info("stopped")
