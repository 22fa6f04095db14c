"""The NATS connection every service has: connect (reconnect forever, log each change of
state once), make sure the server has what was sent, drain at the end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

import nats.errors
from nats.aio.client import Client

from pingpong import health
from pingpong.settings import Settings

log = logging.getLogger(__name__)

RECONNECT_WAIT: Final = 1.0
"""Seconds between reconnect attempts (forever)."""

PING_INTERVAL: Final = 1
"""Seconds between client pings; a dead server (one on a node that was cut off) is
noticed after two missed pongs, in 2 to 3 s, and the client moves to another."""


class _ConnectionLog:
    """Connection callbacks that log each change of state once and never raise."""

    def __init__(self, nc: Client, on_disconnect: Callable[[], None] | None) -> None:
        self.nc = nc
        self.on_disconnect = on_disconnect
        self._last_error = ""

    async def error(self, e: Exception) -> None:
        text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        if text != self._last_error:  # a dead server repeats itself every second
            self._last_error = text
            log.warning("nats error: %s", text)

    async def disconnected(self) -> None:
        if not self.nc.is_closed:  # a deliberate close also calls this
            log.warning("disconnected from NATS; reconnecting")
        if self.on_disconnect is not None:
            self.on_disconnect()

    async def reconnected(self) -> None:
        self._last_error = ""
        log.info("reconnected to NATS")

    async def closed(self) -> None:
        log.info("NATS connection closed")


def connect_options(
    settings: Settings, name: str, nc: Client, on_disconnect: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``nc.connect``: reconnect forever, log every change."""
    cb = _ConnectionLog(nc, on_disconnect)
    options: dict[str, Any] = {
        "servers": settings.servers,
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": RECONNECT_WAIT,
        "connect_timeout": 2,
        "ping_interval": PING_INTERVAL,
        "max_outstanding_pings": 2,
        "error_cb": cb.error,
        "disconnected_cb": cb.disconnected,
        "reconnected_cb": cb.reconnected,
        "closed_cb": cb.closed,
    }
    if settings.nats_user:
        options["user"] = settings.nats_user
    if settings.nats_password:
        options["password"] = settings.nats_password.get_secret_value()
    if settings.nats_token:
        options["token"] = settings.nats_token.get_secret_value()
    if settings.nats_creds:
        options["user_credentials"] = str(settings.nats_creds)
    return options


async def connect(
    settings: Settings,
    name: str,
    nc: Client | None = None,
    on_disconnect: Callable[[], None] | None = None,
) -> Client:
    """Connect ``nc`` (or a new client) to NATS, retrying until a server answers.

    It reconnects forever after that; ``name`` (the instance id) shows in the server's
    connection list.
    """
    nc = nc or Client()
    await nc.connect(**connect_options(settings, name, nc, on_disconnect))
    if settings.health_file is not None:
        health.keep_fresh(nc, settings.health_file)
    log.info("connected to NATS at %s", nc.connected_url.netloc if nc.connected_url else "?")
    return nc


async def sync(nc: Client) -> None:
    """Return once the server has processed everything sent on ``nc`` so far.

    nats-py's ``flush()`` writes its PING straight to the socket, ahead of
    commands still in the pending buffer (such as a SUB just made), so one
    flush can come back before the server knows of a new subscription. By
    the time the first PONG is back the buffer has been written, so the
    second PING follows it.
    """
    await nc.flush()
    await nc.flush()


async def wait_closed(nc: Client, timeout: float = 10.0) -> None:
    """Drain ``nc`` (finish what is pending, then close), bounded by ``timeout``."""
    if nc.is_closed:
        return
    try:
        async with asyncio.timeout(timeout):
            if nc.is_connected:
                await nc.drain()
            else:
                await nc.close()
    except (TimeoutError, nats.errors.Error):
        await nc.close()
