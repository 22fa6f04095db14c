"""Run a service until SIGTERM or SIGINT, on uvloop where it is installed."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Final

log = logging.getLogger(__name__)

Service = Callable[[asyncio.Event], Awaitable[None]]
"""A service: runs until the event is set, then shuts down cleanly and returns."""

GC_THRESHOLDS: Final = (20_000, 10, 10)
"""``gc.set_threshold`` for the services that live on NATS messages (players, managers,
the scoreboard): they allocate a few dozen objects a message and almost none of them in
cycles (refcounting frees them), so CPython's default of a young-generation collection
every 700 allocations is mostly wasted work. At 20,000: 2.5 % less CPU a game in 10 of
10 alternating runs, their RSS within 0.5 MB. Not the proxy: aiohttp's objects of a
request hold cycles, and its RSS at 64 concurrent games grew 57.7 → 60.0 MB
(docs/BENCHMARKS.md)."""


def tune_gc() -> None:
    """Collect garbage less often (:data:`GC_THRESHOLDS`)."""
    gc.set_threshold(*GC_THRESHOLDS)


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


def run(service: Service, *, few_collections: bool = False) -> int:
    """Run ``service`` to its end; the exit status is 0 after a clean stop.

    ``few_collections``: with :data:`GC_THRESHOLDS`.
    """
    if few_collections:
        tune_gc()
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
