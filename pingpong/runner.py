"""Run a service until SIGTERM or SIGINT, on uvloop where it is installed."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Service = Callable[[asyncio.Event], Awaitable[None]]
"""A service: runs until the event is set, then shuts down cleanly and returns."""


async def _main(service: Service) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, stop, sig)
    await service(stop)


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    if not stop.is_set():
        log.info("%s: stopping (finishing work in flight)", sig.name)
    stop.set()


def run(service: Service) -> int:
    """Run ``service`` to its end; the exit status is 0 after a clean stop."""
    if os.environ.get("PINGPONG_LOOP") != "asyncio":  # the default where it is installed
        try:
            import uvloop
        except ImportError:  # no wheel on armv7, say
            pass
        else:
            uvloop.run(_main(service))
            return 0
    asyncio.run(_main(service))
    return 0
