"""The two baselines, each run as its own process: ``python -m bench.baselines nats|http``.

``nats URL``: a bare nats-py responder on ``bench.hit`` answering ``HIT``.
``http PORT``: a bare aiohttp endpoint answering ``HIT``.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiohttp import web
from nats.aio.client import Client


async def nats_responder(url: str) -> None:
    nc = Client()
    await nc.connect(url)

    async def hit(msg: object) -> None:
        await msg.respond(b"HIT")  # type: ignore[attr-defined]

    await nc.subscribe("bench.hit", cb=hit)
    await nc.flush()
    await nc.flush()
    print("ready", flush=True)
    await _until_signal()
    await nc.close()


async def http_endpoint(port: int) -> None:
    async def hit(_: web.Request) -> web.Response:
        return web.Response(text="HIT")

    app = web.Application()
    app.router.add_get("/", hit)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("ready", flush=True)
    await _until_signal()
    await runner.cleanup()


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main() -> None:
    kind, arg = sys.argv[1], sys.argv[2]
    try:
        import uvloop
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run
    run(nats_responder(arg) if kind == "nats" else http_endpoint(int(arg)))


if __name__ == "__main__":
    main()
