"""The live feed (``/events``) against a real nats-server, real services and a real proxy:
one subscription however many watch, whole rallies, scores ticks, bounds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from dataclasses import dataclass, field

import aiohttp
from aiohttp.test_utils import TestServer
from nats.aio.client import Client

from pingpong import subjects
from pingpong.messages import (
    Game,
    GameRequest,
    RallyFinished,
    RallyStarted,
    RallySwing,
    Scores,
    decode,
    decode_event,
    encode,
)
from pingpong.settings import Settings
from proxy.app import create_app
from proxy.keys import LIVE, NATS
from proxy.pace import STUCK_FOR
from tests.conftest import Services, wait_for
from tests.load import play
from tests.natsserver import NatsServer, free_port


@dataclass
class Stream:
    """One ``/events`` client, read as a browser's EventSource reads it."""

    response: aiohttp.ClientResponse
    events: list[tuple[str, bytes]] = field(default_factory=list)

    async def next(self, timeout: float = 10) -> tuple[str, bytes]:
        """The next event: its kind and data (comments and ``retry:`` skipped)."""
        kind, data = "message", b""
        async with asyncio.timeout(timeout):
            while True:
                line = await self.response.content.readline()
                if not line:
                    raise EOFError("the stream ended")
                line = line.rstrip(b"\n")
                if line.startswith(b"event: "):
                    kind = line.removeprefix(b"event: ").decode()
                elif line.startswith(b"data: "):
                    data = line.removeprefix(b"data: ")
                elif not line and data:
                    self.events.append((kind, data))
                    return kind, data

    async def until(self, kind: str, timeout: float = 10, **fields: object) -> bytes:
        """Read on until an event of ``kind`` whose JSON has ``fields``; its data."""
        async with asyncio.timeout(timeout):
            while True:
                got, data = await self.next(timeout)
                if got == kind and all(json.loads(data).get(k) == v for k, v in fields.items()):
                    return data


async def metric(http: aiohttp.ClientSession, url: str, name: str) -> float:
    async with http.get(url + "/metrics") as r:
        for line in (await r.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def rallies(events: list[tuple[str, bytes]]) -> dict[str, list[str]]:
    """The kinds of each game's events, by game id, in the order they came."""
    out: dict[str, list[str]] = {}
    for kind, data in events:
        if kind in ("started", "swing", "finished", "aborted"):
            event = decode_event(data)
            game = event.game.game_id if isinstance(event, RallyFinished) else event.game_id
            out.setdefault(game, []).append(kind)
    return out


def whole(kinds: list[str]) -> bool:
    """A game's events, every one: started, its swings, its end."""
    return (
        len(kinds) >= 3
        and kinds[0] == "started"
        and set(kinds[1:-1]) == {"swing"}
        and kinds[-1] in ("finished", "aborted")
    )


async def test_the_feed_shows_each_game_whole_and_ticks_the_scores_without_a_fetch(
    services: Services,
) -> None:
    await services.scoreboard()
    url = await services.game()
    async with aiohttp.ClientSession() as http, http.get(url + "/events") as r:
        assert r.status == 200
        assert r.content_type == "text/event-stream"
        assert await r.content.readline() == b"retry: 2000\n"
        stream = Stream(r)
        ids = await play(http, url, 5)
        scores = Scores.model_validate_json(await stream.until("scores", games=5))
        while rallies(stream.events).get(ids[-1], [""])[-1] != "finished":
            await stream.next()
    assert scores.games == 5
    shown = rallies(stream.events)
    assert list(shown) == ids  # every game at this rate, in order
    assert all(whole(kinds) for kinds in shown.values())


async def test_the_feed_samples_a_burst_and_says_how_many_games_it_skipped(
    services: Services,
) -> None:
    url = await services.game(feed_rate=5)
    async with aiohttp.ClientSession() as http, http.get(url + "/events") as r:
        stream = Stream(r)
        await asyncio.gather(*(play(http, url, 10) for _ in range(8)))  # 80 games
        note = json.loads(await stream.until("sampling", timeout=5))
        while sum(json.loads(d)["games"] for k, d in stream.events if k == "sampling") < 80:
            await stream.until("sampling", timeout=5)
        skipped = await metric(http, url, "pingpong_feed_games_skipped_total")
    notes = [json.loads(d) for k, d in stream.events if k == "sampling"]
    assert note["skipped"] > 0
    assert sum(n["games"] for n in notes) == 80
    assert sum(n["skipped"] for n in notes) == skipped
    shown = rallies(stream.events)
    assert 0 < len(shown) == 80 - skipped
    assert all(whole(kinds) for kinds in shown.values())


async def test_a_viewer_of_one_game_gets_its_every_event_and_no_other_games(
    services: Services, nc: Client
) -> None:
    url = await services.game(feed_rate=1, hit_chance=100)
    async with aiohttp.ClientSession() as http, http.get(url + "/events?game=watched") as r:
        stream = Stream(r)
        await play(http, url, 3)
        reply = await nc.request(
            subjects.GAME_PLAY, encode(GameRequest(game_id="watched", max_rounds=200)), timeout=10
        )
        game = decode(Game, reply.data)
        await play(http, url, 3)
        await stream.until("finished")
    events = [decode_event(data) for _, data in stream.events]
    assert isinstance(events[0], RallyStarted)
    assert events[0].game_id == "watched"
    strokes = [s for e in events[1:-1] if isinstance(e, RallySwing) for s in e.strokes]
    assert strokes == list(game.strokes)  # 400 strokes: far past the feed's budget of 1 a second
    assert isinstance(events[-1], RallyFinished)
    assert events[-1].game == game


async def test_a_crowd_of_viewers_costs_the_server_one_subscription_and_none_once_gone(
    services: Services, nats_server: NatsServer
) -> None:
    url = await services.game()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await play(http, url, 1)  # the subscriptions of a game, and of a request
        async with http.get(url + "/scores.json") as r:  # (the scores ticks' inbox) are made
            await r.read()
        before = await nats_server.subscriptions()
        tasks_before = len(asyncio.all_tasks())
        streams = [await http.get(url + "/events") for _ in range(20)]
        streams += [await http.get(url + f"/events?game=g{n}") for n in range(5)]
        assert all(s.status == 200 for s in streams)
        for s in streams:
            assert await s.content.readline() == b"retry: 2000\n"
        with_crowd = await nats_server.subscriptions()
        viewers = await metric(http, url, "pingpong_viewers")
        await play(http, url, 3)
        for s in streams:
            s.close()

        async def all_gone() -> bool:
            return await metric(http, url, "pingpong_viewers") == 0

        await wait_for(all_gone, timeout=5)

        async def unsubscribed() -> bool:
            return await nats_server.subscriptions() == before

        await wait_for(unsubscribed, timeout=5)
    assert with_crowd == before + 1
    assert viewers == 25
    assert len(asyncio.all_tasks()) <= tasks_before  # no task left for a viewer


async def test_viewers_beyond_max_viewers_get_503_with_retry_after_and_are_counted(
    services: Services,
) -> None:
    url = await services.proxy(max_viewers=3)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        held = [await http.get(url + "/events") for _ in range(3)]
        assert [r.status for r in held] == [200, 200, 200]
        async with http.get(url + "/events?game=g1") as r:
            assert r.status == 503
            assert r.headers["Retry-After"] == "10"
            assert await r.text() == "too many live viewers on this proxy (3); try again shortly\n"
        assert await metric(http, url, "pingpong_viewers_refused_total") == 1
        held[0].close()

        async def admitted() -> bool:
            async with http.get(url + "/events") as r:
                return r.status == 200

        await wait_for(admitted, timeout=5)
        for r in held[1:]:
            r.close()


async def test_a_viewer_that_reads_nothing_skips_games_holds_up_no_one_and_is_let_go(
    services: Services,
) -> None:
    await services.scoreboard()
    url = await services.game(feed_rate=10_000)
    port = int(url.rsplit(":", 1)[1])
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    stuck.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(stuck, ("127.0.0.1", port))
    await loop.sock_sendall(stuck, b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        async with aiohttp.ClientSession() as http, http.get(url + "/events") as r:
            stream = Stream(r)
            reading = asyncio.ensure_future(stream.until("never", timeout=60))

            async def behind() -> bool:
                await play(http, url, 20)
                return await metric(http, url, "pingpong_feed_events_dropped_total") > 0

            await wait_for(behind, timeout=30)
            await asyncio.sleep(2)  # what the feed holds goes out (2 batches, a batch a tick)
            ids = await play(http, url, 20)  # while the other is behind, skipping batches
            await asyncio.sleep(0.5)  # the last batch
            shown = rallies(stream.events)
            assert all(game in shown for game in ids)
            assert all(whole(shown[game]) for game in ids)

            async def let_go() -> bool:
                return await metric(http, url, "pingpong_viewers_dropped_total") == 1

            await wait_for(let_go, timeout=STUCK_FOR + 5, interval=0.5)
            assert await metric(http, url, "pingpong_viewers") == 1
            reading.cancel()
    finally:
        stuck.close()


async def test_the_proxy_ends_every_stream_and_exits_0_on_sigterm_with_viewers_connected(
    nats_server: NatsServer,
) -> None:
    port = free_port()
    env = {**os.environ, "NATS_URL": nats_server.url, "HTTP_HOST": "127.0.0.1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pingpong",
        "proxy",
        "--port",
        str(port),
        env={**env, "PYTHONUNBUFFERED": "1"},
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(20):
            async for raw in proc.stderr:
                if b"listening on" in raw:
                    break
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

            async def connected() -> bool:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    return r.status == 200

            await wait_for(connected)
            streams = [await http.get(f"http://127.0.0.1:{port}/events") for _ in range(10)]
            assert all(s.status == 200 for s in streams)
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                ends = [await s.content.read() for s in streams]  # to the end of each stream
                code = await proc.wait()
        assert code == 0
        assert all(end.startswith(b"retry: 2000\n") for end in ends), ends
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_events_the_proxy_could_not_take_in_time_tear_no_rally_and_end_game_streams(
    settings: Settings, nc: Client
) -> None:
    app = create_app(settings.model_copy(update={"http_host": "127.0.0.1"}))
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    try:

        async def connected() -> bool:
            return app[NATS].is_connected

        await wait_for(connected)
        app[LIVE].pending_msgs = 5  # a subscription that holds 5 events, not 20,000
        url = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            whole = await http.get(url + "/events")
            one = await http.get(url + "/events?game=g1")
            assert (whole.status, one.status) == (200, 200)
            await nc.publish(subjects.rally_subject("g0", "started"), b'{"game_id":"g0"}')
            await nc.flush()
            await asyncio.sleep(0.1)  # g0 is taken: the feed holds its frames until its end
            for n in range(50):  # one burst: nats-py reads it at once and keeps 5
                await nc.publish(subjects.rally_subject("g1", "swing"), b'{"n":%d}' % n)
            await nc.publish(subjects.rally_subject("g0", "finished"), b'{"game_id":"g0"}')
            await nc.flush()
            ended = b""
            async with asyncio.timeout(5):  # let go (cut off): it would miss events of g1
                with contextlib.suppress(aiohttp.ClientPayloadError):
                    async for chunk in one.content.iter_any():
                        ended += chunk
            assert ended.count(b"event: swing") < 50
            assert await metric(http, url, "pingpong_viewers_dropped_total") == 1
            await asyncio.sleep(1.2)  # two batches
            assert await metric(http, url, "pingpong_feed_games_skipped_total") == 1
            assert b"g0" not in whole.content.read_nowait()  # dropped, not shown torn
            whole.close()
            one.close()
    finally:
        await server.close()


async def test_a_lost_nats_connection_ends_the_streams_of_one_game_not_the_whole_feed(
    services: Services, nats_server: NatsServer
) -> None:
    url = await services.proxy()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        whole = await http.get(url + "/events")
        one = await http.get(url + "/events?game=g1")
        assert (whole.status, one.status) == (200, 200)
        await nats_server.stop()
        async with asyncio.timeout(5):  # cut off: it would miss events of g1
            with contextlib.suppress(aiohttp.ClientPayloadError):
                async for _ in one.content.iter_any():
                    pass
        await nats_server.start()
        assert not whole.content.at_eof()  # the whole feed goes on once NATS is back
        assert await metric(http, url, "pingpong_viewers") == 1
        whole.close()
