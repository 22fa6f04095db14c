"""The scoreboard against a real nats-server: exact scores across restarts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from nats.aio.client import Client

from pingpong import eventlog, subjects
from pingpong.consumer import Puller
from pingpong.messages import (
    Game,
    RallyFinished,
    RallySwing,
    Scores,
    Stroke,
    decode_event,
    encode,
)
from pingpong.settings import Settings
from scoreboard.board import Scoreboard, open_bucket
from scoreboard.reader import Reader
from tests.conftest import Services, wait_for
from tests.load import play
from tests.natsserver import NatsServer


async def scores(http: aiohttp.ClientSession, url: str) -> Scores:
    async with http.get(url + "/scores.json") as r:
        assert r.status == 200, await r.text()
        return Scores.model_validate_json(await r.read())


async def settle(http: aiohttp.ClientSession, url: str, games: int) -> Scores:
    """Wait until the scoreboard counted ``games``; then check it stays there."""

    async def counted() -> bool:
        return (await scores(http, url)).games >= games

    await wait_for(counted, timeout=15)
    await asyncio.sleep(0.5)
    return await scores(http, url)


async def test_n_games_through_http_give_exactly_n_in_the_scores(services: Services) -> None:
    await services.scoreboard()
    url = await services.game()
    async with aiohttp.ClientSession() as http:
        ids = await play(http, url, 25)
        s = await settle(http, url, 25)
    assert s.games == 25
    assert s.wins["ping"] + s.wins["pong"] + s.draws == 25
    assert s.aborted == 0
    assert [g.game_id for g in s.last_games] == list(reversed(ids))[:20]
    assert sum(s.wins_by_instance.values()) <= 25
    assert s.longest_rally >= 1


async def test_scores_get_answers_over_nats(services: Services, nc: Client) -> None:
    await services.scoreboard()
    msg = await nc.request(subjects.SCORES_GET, b"", timeout=2)
    assert Scores.model_validate_json(msg.data).games == 0


async def test_restarting_the_scoreboard_mid_stream_keeps_the_scores_exact(
    services: Services,
) -> None:
    board = await services.scoreboard()
    url = await services.game()
    async with aiohttp.ClientSession() as http:
        player = asyncio.ensure_future(play(http, url, 60))
        await asyncio.sleep(0.15)
        await board.shutdown()
        await asyncio.sleep(0.2)
        await services.scoreboard(n=2)
        await player
        s = await settle(http, url, 60)
    assert s.games == 60


async def test_restarting_nats_server_keeps_the_scores_exact(
    services: Services, nats_server: NatsServer
) -> None:
    await services.scoreboard()
    url = await services.game()
    async with aiohttp.ClientSession() as http:
        await play(http, url, 20)
        await settle(http, url, 20)
        await nats_server.stop()
        await nats_server.start()

        async def healthy() -> bool:
            async with http.get(url + "/") as r:
                return r.status == 200

        await wait_for(healthy, timeout=20, interval=0.2)  # counts as one game
        await play(http, url, 9)
        s = await settle(http, url, 30)
    assert s.games == 30


def dropped(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "event log dropped" in r.getMessage()]


async def test_results_the_log_dropped_before_the_scoreboard_read_them_are_named_in_one_warning(
    services: Services, nc: Client, caplog: pytest.LogCaptureFixture
) -> None:
    small = {"stream_max_bytes": 1024 * 1024}  # the least STREAM_MAX_BYTES takes
    board = await services.scoreboard(**small)
    url = await services.game(**small)
    async with aiohttp.ClientSession() as http:
        await play(http, url, 3)
        counted = await settle(http, url, 3)
        await board.shutdown()
        board = await services.scoreboard(n=2, **small)
        assert not dropped(caplog)  # a restart with nothing dropped says nothing
        await board.shutdown()
        await play(http, url, 5)  # stored, not counted
        js = nc.jetstream()
        for n in range(1200):  # 1.2 MB more: the 5 games' results leave the log
            await js.publish(subjects.rally_subject(f"filler{n}", "aborted"), b"x" * 1000)
        first = (await js.stream_info(subjects.STREAM)).state.first_seq
        await services.scoreboard(n=3, **small)
        await asyncio.sleep(1)
        s = await scores(http, url)
    assert s.games == 3  # the 5 games are gone from the log, so from the scores
    warnings = dropped(caplog)
    assert len(warnings) == 1, warnings
    assert f"stream sequences {counted.last_seq + 1} to {first - 1} " in warnings[0]


async def test_a_duplicated_finished_event_counts_once(services: Services, nc: Client) -> None:
    await services.scoreboard()
    url = await services.game()
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/?format=json") as r:
            game = Game.model_validate_json(await r.read())
        await settle(http, url, 1)
        # the same event again, past the stream's duplicate window (no Nats-Msg-Id)
        js = nc.jetstream()
        ack = await js.publish(
            subjects.rally_subject(game.game_id, "finished"), encode(RallyFinished(game=game))
        )
        assert not ack.duplicate

        async def folded() -> bool:
            return (await scores(http, url)).last_seq >= ack.seq

        await wait_for(folded)
        assert (await scores(http, url)).games == 1


async def test_a_delivery_the_scoreboard_never_got_is_read_again_not_acked_away(
    services: Services, nc: Client
) -> None:
    board = await services.scoreboard()
    url = await services.game()
    async with aiohttp.ClientSession() as http:
        await play(http, url, 3)
        await settle(http, url, 3)
        await board.shutdown()
        await play(http, url, 2)
        # someone else takes the next delivery of the scoreboard's consumer and never
        # acks it: as a delivery lost with a dying server, the 4th game never arrives
        js = nc.jetstream()
        rogue = await js.pull_subscribe_bind(
            durable=subjects.SCOREBOARD_CONSUMER, stream=subjects.STREAM
        )
        taken = await rogue.fetch(1, timeout=5)
        assert len(taken) == 1
        await services.scoreboard(n=2)
        await play(http, url, 1)
        s = await settle(http, url, 6)
    assert s.games == 6


async def test_events_delivers_a_games_events_in_order(services: Services) -> None:
    url = await services.game()
    async with aiohttp.ClientSession() as http, http.get(url + "/events") as stream:
        assert stream.status == 200
        assert stream.content_type == "text/event-stream"
        assert await stream.content.readline() == b"retry: 2000\n"
        async with http.get(url + "/?format=json") as r:
            game = Game.model_validate_json(await r.read())
        kinds: list[str] = []
        strokes: list[Stroke] = []
        async with asyncio.timeout(5):
            kind = ""
            while "finished" not in kinds:
                line = (await stream.content.readline()).decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    event = decode_event(line.removeprefix("data: ").encode())
                    kinds.append(kind)
                    assert event.kind == kind
                    if isinstance(event, RallySwing):
                        strokes += event.strokes
    assert kinds[0] == "started"
    assert set(kinds[1:-1]) == {"swing"}
    assert kinds[-1] == "finished"
    assert strokes == list(game.strokes)


async def test_scores_json_without_a_scoreboard_is_503_at_once(services: Services) -> None:
    url = await services.proxy()
    async with aiohttp.ClientSession() as http, http.get(url + "/scores.json") as r:
        assert r.status == 503
        assert await r.text() == "no scoreboard is running\n"


async def test_events_refuses_a_bad_game_id_with_400(services: Services) -> None:
    url = await services.proxy()
    async with aiohttp.ClientSession() as http, http.get(url + "/events?game=a.b") as r:
        assert r.status == 400
        assert (await r.text()).startswith("game must be a game id")


@contextlib.asynccontextmanager
async def puller(nc: Client, events: int = 0) -> AsyncIterator[Puller]:
    """The scoreboard's puller on a fresh stream holding ``events`` results (and swings)."""
    js = nc.jetstream()
    assert await eventlog.ensure_log(js, eventlog.log_configs(Settings())) is None
    for n in range(events):  # an aborted game between results: the consumer skips it
        await js.publish(subjects.rally_subject(f"g{n}", "aborted"), b"{}")
        await js.publish(subjects.rally_subject(f"g{n}", "finished"), f"{n}".encode())
    board = Scoreboard(nc, js, await open_bucket(js, 1), eventlog.log_configs(Settings()))
    pull = await Reader(board, "finished").subscribe()
    try:
        yield pull
    finally:
        await pull.stop()


async def test_the_puller_gives_what_is_there_in_order_a_batch_at_a_time_and_times_out_idle(
    nc: Client,
) -> None:
    loop = asyncio.get_running_loop()
    async with puller(nc, events=5) as pull:
        first = await pull.fetch(3, timeout=1)
        rest = await pull.fetch(3, timeout=1)
        assert [m.data for m in first + rest] == [b"0", b"1", b"2", b"3", b"4"]
        assert [m.metadata.sequence.consumer for m in first + rest] == [1, 2, 3, 4, 5]
        start = loop.time()
        with pytest.raises(TimeoutError):
            await pull.fetch(3, timeout=0.5)
        assert 0.3 < loop.time() - start < 1.5
        later = asyncio.ensure_future(pull.fetch(3, timeout=2))  # waits for the next one
        await asyncio.sleep(0.1)
        await nc.jetstream().publish(subjects.rally_subject("g5", "finished"), b"5")
        assert [m.data for m in await later] == [b"5"]


async def test_the_puller_of_a_consumer_that_is_gone_waits_out_its_timeout_once(
    nc: Client,
) -> None:
    loop = asyncio.get_running_loop()
    async with puller(nc) as pull:
        await nc.jetstream().delete_consumer(subjects.STREAM, subjects.SCOREBOARD_CONSUMER)
        start = loop.time()
        with pytest.raises(TimeoutError):  # the no-responders answer does not end the wait
            await pull.fetch(3, timeout=0.5)
        assert 0.45 < loop.time() - start < 0.8
