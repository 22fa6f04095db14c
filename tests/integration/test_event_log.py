"""The event log: the RALLY stream, deduplicated final events, core NATS fallback."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable
from pathlib import Path

import aiohttp
import pytest
from nats.aio.client import Client
from nats.js.api import PersistMode

from pingpong import bus, eventlog, subjects
from pingpong.messages import RallyFinished, Scores, decode_event
from pingpong.settings import DEFAULT_STREAM_MAX_BYTES, DUPLICATE_SPARE, Settings
from tests.conftest import Services, wait_for
from tests.natsserver import NatsServer, stream_takes_no_rally_events


async def test_every_game_is_stored_once_in_the_log_made_as_the_settings_say(
    services: Services, nc: Client
) -> None:
    url = await services.game(
        stream_max_bytes=64 * 1024 * 1024, stream_max_age=12 * 3600.0, store_timeout=5.0
    )
    async with aiohttp.ClientSession() as http:
        ids = []
        for _ in range(5):
            async with http.get(url + "/") as r:
                ids.append(r.headers["X-Game-Id"])
    js = nc.jetstream()
    info = await js.stream_info(subjects.STREAM)
    assert info.config.subjects == list(subjects.RESULTS)
    assert info.config.max_bytes == 64 * 1024 * 1024
    assert info.config.max_age == 12 * 3600
    assert info.config.duplicate_window == 5 + DUPLICATE_SPARE  # what a retry may take
    assert info.config.persist_mode is None  # the results are synced before the ack
    play = await js.stream_info(subjects.STROKES_STREAM, subjects_filter="rally.>")
    assert play.config.subjects == list(subjects.RALLY_PLAY)
    assert play.config.persist_mode == PersistMode.ASYNC
    kinds = {s.rsplit(".", 1)[1] for s in (play.state.subjects or {})}
    assert kinds == {"started", "swing"}
    assert {s.split(".")[1] for s in (play.state.subjects or {})} == set(ids)
    stored = []
    for game_id in ids:
        msg = await js.get_last_msg(subjects.STREAM, subjects.rally_subject(game_id, "finished"))
        event = decode_event(msg.data or b"")
        assert isinstance(event, RallyFinished)
        stored.append(event.game.game_id)
    assert stored == ids


async def test_a_stream_the_server_refuses_is_a_one_line_reason_not_a_crash(nc: Client) -> None:
    # one server cannot keep 3 replicas: JetStream refuses the stream outright
    problem = await eventlog.ensure_stream(
        nc.jetstream(), eventlog.stream_config(Settings(stream_replicas=3))
    )
    assert problem is not None
    assert problem.startswith("JetStream refused stream RALLY: replicas > 1 not supported")
    assert "\n" not in problem


async def test_a_refused_add_whose_update_finds_no_stream_gives_the_reason_of_the_add(
    nc: Client,
) -> None:
    # the path a forming Swarm cluster took (add refused, update: "stream not found"),
    # on which the scoreboard crashed; here the add is refused for overlapping subjects
    js = nc.jetstream()
    await js.add_stream(name="OTHER", subjects=[subjects.RALLY_ALL])
    problem = await eventlog.ensure_stream(js, eventlog.stream_config(Settings()))
    assert problem is not None
    assert problem.startswith("JetStream refused stream RALLY: subjects overlap")


async def test_only_the_writer_changes_the_limits_of_a_stream_that_is_there(nc: Client) -> None:
    js = nc.jetstream()
    writer = eventlog.stream_config(Settings(store_timeout=60, stream_max_bytes=64 << 20))
    assert await eventlog.ensure_stream(js, writer) is None
    reader = eventlog.stream_config(Settings())  # a scoreboard with the defaults
    assert await eventlog.ensure_stream(js, reader, update=False) is None
    config = (await js.stream_info(subjects.STREAM)).config
    assert (config.duplicate_window, config.max_bytes) == (70, 64 << 20)
    assert await eventlog.ensure_stream(js, reader) is None  # the writer with other settings
    config = (await js.stream_info(subjects.STREAM)).config
    assert (config.duplicate_window, config.max_bytes) == (30, DEFAULT_STREAM_MAX_BYTES)


async def test_a_reader_makes_the_log_when_it_is_not_there(nc: Client) -> None:
    js = nc.jetstream()
    configs = eventlog.log_configs(Settings())
    assert await eventlog.ensure_log(js, configs, update=False) is None
    assert (await js.stream_info(subjects.STREAM)).config.subjects == list(subjects.RESULTS)
    streams = await js.stream_info(subjects.STROKES_STREAM)
    assert streams.config.subjects == list(subjects.RALLY_PLAY)


async def test_a_rally_stream_of_before_over_all_rally_events_gives_the_play_to_strokes(
    nc: Client,
) -> None:
    js = nc.jetstream()
    before = eventlog.stream_config(Settings())
    before.subjects = [subjects.RALLY_ALL]
    await js.add_stream(before)
    await js.publish(subjects.rally_subject("old", "finished"), b"{}")
    assert await eventlog.ensure_log(js, eventlog.log_configs(Settings())) is None
    info = await js.stream_info(subjects.STREAM)
    assert info.config.subjects == list(subjects.RESULTS)
    assert info.state.messages == 1  # what it held stays
    assert (await js.stream_info(subjects.STROKES_STREAM)).config.subjects == list(
        subjects.RALLY_PLAY
    )


async def test_a_retried_finished_publish_is_stored_once(nc: Client) -> None:
    js = nc.jetstream()
    assert await eventlog.ensure_stream(js, eventlog.stream_config(Settings())) is None
    assert (
        await eventlog.ensure_stream(js, eventlog.stream_config(Settings())) is None
    )  # idempotent
    subject = subjects.rally_subject("dup1", "finished")
    headers = {"Nats-Msg-Id": subjects.finished_msg_id("dup1")}
    first = await js.publish(subject, b"{}", headers=headers)
    second = await js.publish(subject, b"{}", headers=headers)
    assert not first.duplicate
    assert second.duplicate
    info = await js.stream_info(subjects.STREAM, subjects_filter=subject)
    assert info.state.subjects == {subject: 1}


async def test_without_jetstream_the_manager_still_plays_and_publishes_on_core_nats(
    tmp_path: Path,
) -> None:
    server = NatsServer(store=tmp_path, jetstream=False)
    await server.start()
    try:
        services = Services(Settings(nats_url=server.url, swing_timeout=0.5))
        try:
            url = await services.game(players=1)
            watcher = Client()
            await watcher.connect(server.url)
            sub = await watcher.subscribe(subjects.RALLY_FINISHED_ALL)
            await bus.sync(watcher)
            async with aiohttp.ClientSession() as http, http.get(url + "/") as r:
                assert r.status == 200
                game_id = r.headers["X-Game-Id"]
            msg = await sub.next_msg(timeout=5)
            assert msg.subject == subjects.rally_subject(game_id, "finished")
            assert msg.headers == {"Nats-Msg-Id": f"{game_id}:finished"}
            await watcher.close()
        finally:
            await services.close()
    finally:
        await server.close()


async def test_a_game_is_answered_only_once_its_result_is_stored(
    services: Services, nc: Client
) -> None:
    url = await services.game(players=1)
    js = nc.jetstream()
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/") as r:  # the manager now stores through the stream
            assert r.status == 200
        await stream_takes_no_rally_events(js)  # as while a cluster elects a stream leader
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        answer = asyncio.ensure_future(http.get(url + "/"))
        await asyncio.sleep(1.0)
        assert not answer.done()
        assert await eventlog.ensure_stream(js, eventlog.stream_config(Settings())) is None
        async with await answer as r:
            assert r.status == 200
            game_id = r.headers["X-Game-Id"]
        assert loop.time() - t0 >= 1.0
    msg = await js.get_last_msg(subjects.STREAM, subjects.rally_subject(game_id, "finished"))
    event = decode_event(msg.data or b"")
    assert isinstance(event, RallyFinished)
    assert event.game.game_id == game_id


async def test_a_game_whose_result_cannot_be_stored_is_answered_503(
    services: Services, nc: Client
) -> None:
    url = await services.game(players=1, store_timeout=1.0)
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/") as r:
            assert r.status == 200
        await stream_takes_no_rally_events(nc.jetstream())
        async with http.get(url + "/") as r:
            body = await r.text()
            assert r.status == 503
            assert "could not be stored in the event log within 1s" in body
            assert body.count("\n") == 1


async def test_a_store_that_comes_back_empty_is_made_again_and_the_games_go_on(
    services: Services, nats_server: NatsServer, nc: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A lost disk or a fresh volume: the services make the stream and the bucket again,
    without a restart of theirs; the scores keep the games they counted."""
    await services.scoreboard()
    url = await services.game(players=1)
    async with aiohttp.ClientSession() as http:

        async def games() -> int:
            async with http.get(url + "/scores.json") as r:
                return Scores.model_validate_json(await r.read()).games if r.status == 200 else -1

        for _ in range(5):
            async with http.get(url + "/") as r:
                assert r.status == 200
        await wait_for(lambda: _equals(games(), 5), timeout=10)
        await nats_server.kill()
        shutil.rmtree(nats_server.store)
        await nats_server.start()

        answered: list[str] = []

        async def plays() -> bool:
            async with http.get(url + "/") as r:
                if r.status == 200:
                    answered.append(r.headers["X-Game-Id"])
                return r.status == 200

        await wait_for(plays, timeout=20, interval=0.2)
        for _ in range(5):
            assert await plays()
        await wait_for(lambda: _equals(games(), 5 + len(answered)), timeout=20)
    js = nc.jetstream()
    info = await js.stream_info(subjects.STREAM, subjects_filter=subjects.RALLY_FINISHED_ALL)
    stored = set((info.state.subjects or {}).keys())
    assert {subjects.rally_subject(game_id, "finished") for game_id in answered} <= stored
    warnings = " / ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "the event log RALLY is gone" in warnings
    assert "the scores bucket SCORES is gone" in warnings


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected
