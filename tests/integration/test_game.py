"""Full games through HTTP against a real nats-server and in-process services."""

from __future__ import annotations

import asyncio
import json
import re
import time

import aiohttp
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from pingpong import bus, subjects
from pingpong.messages import Game, RallyFinished, RallyStarted, RallySwing, decode_event
from tests.conftest import Services, wait_for
from tests.natsserver import NatsServer

LINE = re.compile(r"^(PING|PONG) --> (HIT|MISS)$")


def check_transcript(text: str) -> list[str]:
    """Assert the original's format; return the stroke lines."""
    lines = text.splitlines()
    strokes, last = lines[:-1], lines[-1]
    assert strokes, text
    assert all(LINE.match(line) for line in strokes), text
    assert [line.split()[0] for line in strokes] == [
        "PING" if i % 2 == 0 else "PONG" for i in range(len(strokes))
    ]
    assert all(line.endswith("HIT") for line in strokes[:-1])
    if strokes[-1].endswith("MISS"):
        loser = strokes[-1].split()[0]
        assert last == f"The winner is {'PONG' if loser == 'PING' else 'PING'}"
    else:
        assert last == "DRAW"
    return strokes


async def test_curl_plays_a_game_in_the_original_format(services: Services) -> None:
    url = await services.game()
    async with aiohttp.ClientSession() as http:
        for _ in range(20):
            async with http.get(url + "/") as r:
                assert r.status == 200
                assert r.content_type == "text/plain"
                assert re.fullmatch(r"[0-9a-f]{12}", r.headers["X-Game-Id"])
                check_transcript(await r.text())


async def test_json_format_returns_the_same_game_with_instances(services: Services) -> None:
    url = await services.game()
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/?format=json") as r:
            assert r.status == 200
            game = Game.model_validate_json(await r.read())
            assert game.game_id == r.headers["X-Game-Id"]
        async with http.get(url + "/", headers={"Accept": "application/json"}) as r:
            assert r.content_type == "application/json"
            Game.model_validate_json(await r.read())
    check_transcript(game.transcript())
    assert game.manager == "manager-1@test"
    assert {s.instance for s in game.strokes} <= {
        "ping-1@test",
        "ping-2@test",
        "pong-1@test",
        "pong-2@test",
    }


DRAW_OF_ONE_ROUND = "PING --> HIT\nPONG --> HIT\nDRAW\n"


@pytest.mark.parametrize(
    "settings_of_the_path",
    [{}, {"swings_ahead": 1}, {"batch_games": 1}, {"swings_ahead": 3}, {"swings_ahead": 200}],
)
async def test_a_hit_chance_of_100_draws_after_its_rounds_of_a_ping_and_a_pong_stroke(
    services: Services, settings_of_the_path: dict[str, int]
) -> None:
    """On every path that sends swings; the largest cap one swing at a time (20,000 round
    trips) is left to the rally's unit tests."""
    url = await services.game(players=1, hit_chance=100, **settings_of_the_path)
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/?max_rounds=1") as r:
            assert await r.text() == DRAW_OF_ONE_ROUND
        async with http.get(url + "/?max_rounds=7") as r:
            lines = check_transcript(await r.text())
        assert len(lines) == 2 * 7
        assert lines[-1] == "PONG --> HIT"
        async with http.get(url + "/") as r:  # the default: 99 rounds, as the original
            text = await r.text()
        assert len(check_transcript(text)) == 2 * 99
        assert text.splitlines()[-2:] == ["PONG --> HIT", "DRAW"]
        if settings_of_the_path.get("swings_ahead") == 1:
            return
        async with http.get(url + "/?max_rounds=1000&format=json") as r:  # the largest cap
            game = Game.model_validate_json(await r.read())
        assert len(game.strokes) == 2000
        assert game.is_draw
        assert [s.stroke for s in game.strokes] == list(range(1, 2001))
        assert (game.strokes[-1].side, game.strokes[-1].result) == ("pong", "HIT")


async def test_swings_spread_over_both_replicas_of_each_side(services: Services) -> None:
    url = await services.game(players=2, hit_chance=100)
    async with aiohttp.ClientSession() as http:
        games = []
        for _ in range(16):  # a swing request a side a game: all on one replica by chance 2**-15
            async with http.get(url + "/?format=json&max_rounds=20") as r:
                games.append(Game.model_validate_json(await r.read()))
    seen = {s.instance for g in games for s in g.strokes}
    assert seen == {"ping-1@test", "ping-2@test", "pong-1@test", "pong-2@test"}


async def swing_requests(nc: Client, side: str) -> dict[str, int]:
    """Requests each endpoint of a side's players took (``nats micro stats``)."""
    msg = await nc.request(f"$SRV.STATS.{side}", b"", timeout=2)
    return {e["subject"]: e["num_requests"] for e in json.loads(msg.data)["endpoints"]}


@pytest.mark.parametrize(
    ("batch_games", "at_once", "used", "unused"),
    [
        (64, 20, "ping.swings", None),
        (64, 1, "ping.swing", "ping.swings"),
        (1, 20, "ping.swing", "ping.swings"),
    ],
)
async def test_games_at_once_are_batched_on_side_swings_a_lone_one_or_batch_games_1_is_not(
    services: Services, nc: Client, batch_games: int, at_once: int, used: str, unused: str | None
) -> None:
    url = await services.game(players=1, batch_games=batch_games)
    async with aiohttp.ClientSession() as http:

        async def play() -> str:
            async with http.get(url) as r:
                assert r.status == 200
                return await r.text()

        for _ in range(20 // at_once):
            for text in await asyncio.gather(*(play() for _ in range(at_once))):
                check_transcript(text)
    stats = await swing_requests(nc, "ping")
    assert stats[used] > 0
    if unused is not None:
        assert stats[unused] == 0
    else:  # 20 games at once need fewer requests than games (the first may go alone)
        assert stats["ping.swing"] + stats["ping.swings"] < 20


async def test_the_events_of_a_game_arrive_in_order_and_match_its_transcript(
    services: Services, nc: Client
) -> None:
    url = await services.game()
    sub = await nc.subscribe(subjects.RALLY_ALL)
    await bus.sync(nc)
    async with aiohttp.ClientSession() as http, http.get(url + "/?format=json") as r:
        game = Game.model_validate_json(await r.read())
    received: list[Msg] = []
    while not received or not received[-1].subject.endswith(".finished"):
        received.append(await sub.next_msg(timeout=5))
    await sub.unsubscribe()
    events = [decode_event(m.data) for m in received]
    swings = len(received) - 2
    assert 1 <= swings <= 2  # one an answer: each side answers its strokes at once
    assert [m.subject for m in received] == (
        [subjects.rally_subject(game.game_id, "started")]
        + [subjects.rally_subject(game.game_id, "swing")] * swings
        + [subjects.rally_subject(game.game_id, "finished")]
    )
    assert isinstance(events[0], RallyStarted)
    played = [s for e in events[1:-1] if isinstance(e, RallySwing) for s in e.strokes]
    assert played == list(game.strokes)
    assert isinstance(events[-1], RallyFinished)
    assert events[-1].game == game


async def test_with_no_players_the_proxy_answers_503_once_a_reconnect_would_have_come(
    services: Services,
) -> None:
    """A player reconnecting to another server of a cluster is away for 2 to 3 s: a side no
    player serves is asked for about 4 s before the game is given up."""
    await services.manager()
    url = await services.proxy()
    async with aiohttp.ClientSession() as http:
        t0 = time.perf_counter()
        async with http.get(url + "/") as r:
            body = await r.text()
        elapsed = time.perf_counter() - t0
    assert r.status == 503
    assert body.startswith("no ping player answered stroke 1")
    assert body.count("\n") == 1
    assert 3.0 < elapsed < 6.0


async def test_with_no_manager_the_proxy_answers_503_at_once(services: Services) -> None:
    url = await services.proxy()
    async with aiohttp.ClientSession() as http:
        t0 = time.perf_counter()
        async with http.get(url + "/") as r:
            assert r.status == 503
            assert await r.text() == "no manager is running\n"
        assert time.perf_counter() - t0 < 1.0


async def managers_just_gone(services: Services, http: aiohttp.ClientSession) -> str:
    """A game played, then its only manager stopped: the proxy's URL."""
    await services.player("ping")
    await services.player("pong")
    manager = await services.manager(1)
    url = await services.proxy()
    async with http.get(url + "/") as r:
        assert r.status == 200  # managers were here a moment ago
    await manager.shutdown()
    return url


async def test_a_manager_back_within_the_failover_grace_takes_a_game_that_met_no_manager(
    services: Services,
) -> None:
    async with aiohttp.ClientSession() as http:
        url = await managers_just_gone(services, http)
        answer = asyncio.ensure_future(http.get(url + "/"))
        await asyncio.sleep(0.5)  # as while managers move to another server of a cluster
        assert not answer.done()
        await services.manager(2)
        async with await answer as r:
            assert r.status == 200
            last = (await r.text()).splitlines()[-1]
            assert last in {"The winner is PING", "The winner is PONG", "DRAW"}


async def test_managers_gone_past_the_failover_grace_give_503_within_about_two_seconds(
    services: Services,
) -> None:
    async with aiohttp.ClientSession() as http:
        url = await managers_just_gone(services, http)
        t0 = time.perf_counter()
        async with http.get(url + "/") as r:
            assert r.status == 503
            assert await r.text() == "no manager is running\n"
        assert 1.9 < time.perf_counter() - t0 < 4.0


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/nope", 404, "not found: /nope\n"),
        ("POST", "/", 405, "method POST not allowed on /\n"),
        ("GET", "/?format=xml", 400, "format must be one of text, json, not 'xml'\n"),
        (
            "GET",
            "/?max_rounds=0",
            400,
            "max_rounds must be a whole number from 1 to 1000, not '0'\n",
        ),
        (
            "GET",
            "/?max_rounds=x",
            400,
            "max_rounds must be a whole number from 1 to 1000, not 'x'\n",
        ),
    ],
)
async def test_a_bad_request_gets_a_one_line_reason(
    services: Services, method: str, path: str, status: int, body: str
) -> None:
    url = await services.proxy()
    async with aiohttp.ClientSession() as http, http.request(method, url + path) as r:
        assert r.status == status
        assert await r.text() == body


async def test_healthz_is_503_while_nats_is_gone_and_200_once_it_is_back(
    services: Services, nats_server: NatsServer
) -> None:
    url = await services.proxy()  # it waits for the first 200
    async with aiohttp.ClientSession() as http:

        async def health() -> tuple[int, str]:
            async with http.get(url + "/healthz") as r:
                return r.status, await r.text()

        await nats_server.stop()
        seen: list[tuple[int, str]] = []

        async def unhealthy() -> bool:
            seen.append(await health())
            return seen[-1][0] == 503

        await wait_for(unhealthy, timeout=10, interval=0.1)
        assert seen[-1] == (503, "not connected to NATS\n")
        await nats_server.start()

        async def healthy() -> bool:
            return (await health())[0] == 200

        await wait_for(healthy, timeout=10, interval=0.1)


async def test_metrics_count_games_by_outcome_and_swings_by_side(services: Services) -> None:
    url = await services.game()
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.get(url + "/") as r:
                assert r.status == 200
        async with http.get(url + "/metrics") as r:
            assert r.status == 200
            assert r.content_type == "text/plain"
            text = await r.text()
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    games = (
        values['pingpong_games_total{outcome="win"}']
        + values['pingpong_games_total{outcome="draw"}']
    )
    assert games == 3
    assert values["pingpong_game_duration_seconds_count"] == 3
    assert values['pingpong_swing_latency_seconds_count{side="ping"}'] >= 3
    assert values["pingpong_games_in_flight"] == 0


async def test_metrics_count_a_game_without_a_manager_as_unavailable(services: Services) -> None:
    url = await services.proxy()
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/") as r:
            assert r.status == 503
        async with http.get(url + "/metrics") as r:
            assert 'pingpong_games_total{outcome="unavailable"} 1.0' in await r.text()
