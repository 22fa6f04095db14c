"""The manager against players that misbehave, on a real nats-server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.micro.request import ERROR_CODE_HEADER, ERROR_HEADER

import manager.service
from pingpong import subjects, wire
from pingpong.messages import Game, RallyAborted, decode, decode_event
from tests.conftest import Services

Answer = Callable[[Msg, int], Awaitable[None]]
"""How a fake ping player answers its n-th batch (from 1)."""


async def fake_ping(nc: Client, answer: Answer) -> list[Msg]:
    """A ping player in the ``ping`` queue group on ``ping.swing`` and ``ping.swings``;
    the requests it got."""
    got: list[Msg] = []

    async def on_request(msg: Msg) -> None:
        got.append(msg)
        await answer(msg, len(got))

    for subject in (subjects.swing_subject("ping"), subjects.swings_subject("ping")):
        await nc.subscribe(subject, queue="ping", cb=on_request)
    await nc.flush()
    return got


def honest_hits(msg: Msg, extra: int = 0) -> bytes:
    """Every swing asked a HIT (``extra``: that many results, or result lists, too many)."""
    request = json.loads(msg.data)
    results: list[object]
    if "swings" in request:  # a batch: a list of results a swing
        results = [["HIT"] * s["count"] for s in request["swings"]]
        results += results[:1] * extra
    else:
        results = ["HIT"] * (request["count"] + extra)
    return json.dumps({"v": 1, "side": "ping", "instance": "fake@t", "results": results}).encode()


async def play(nc: Client, timeout: float = 5) -> Msg:
    return await nc.request(subjects.GAME_PLAY, b"", timeout=timeout)


def error_of(msg: Msg) -> tuple[str, str]:
    assert msg.headers is not None, msg.data
    return msg.headers[ERROR_CODE_HEADER], msg.headers[ERROR_HEADER]


async def test_an_answer_with_results_for_other_swings_is_asked_again_and_played(
    services: Services, nc: Client
) -> None:
    async def wrong_then_honest(msg: Msg, n: int) -> None:
        await msg.respond(honest_hits(msg, extra=1 if n == 1 else 0))

    got = await fake_ping(nc, wrong_then_honest)
    await services.player("pong", 1, hit_chance=0)
    await services.manager(1)
    game = decode(Game, (await play(nc)).data)
    assert len(got) == 2
    assert game.strokes[0].attempts == 2
    assert game.winner == "ping"  # pong misses every stroke


async def test_a_side_that_never_answers_aborts_the_game_503_and_stores_its_aborted_event(
    services: Services, nc: Client
) -> None:
    async def silent(msg: Msg, n: int) -> None:
        return None

    got = await fake_ping(nc, silent)
    await services.player("pong", 1)
    await services.manager(1, swing_timeout=0.1, swing_retries=1)
    sub = await nc.subscribe(subjects.rally_subject("*", "aborted"))
    code, reason = error_of(await play(nc))
    assert code == "503"
    assert reason.startswith("no ping player answered stroke 1 (2 tries, last: timeout after 0.1s")
    event = decode_event((await sub.next_msg(timeout=2)).data)
    assert isinstance(event, RallyAborted)
    assert event.reason == reason
    assert len(got) == 2


async def test_a_game_that_outlives_its_timeout_is_answered_504(
    services: Services, nc: Client
) -> None:
    async def slow(msg: Msg, n: int) -> None:
        await asyncio.sleep(0.3)
        await msg.respond(honest_hits(msg))

    await fake_ping(nc, slow)
    await services.player("pong", 1, hit_chance=100)
    await services.manager(1, game_timeout=0.2, swing_timeout=2.0)
    code, reason = error_of(await play(nc))
    assert code == "504"
    assert "took longer than 0.2s" in reason


async def test_a_bug_in_one_game_answers_500_and_frees_its_place_for_the_next(
    services: Services, nc: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    await services.player("ping", 1)
    await services.player("pong", 1)
    await services.manager(1, max_games=1)
    real = wire.swing_event
    broken = {"first": True}

    def swing_event(game_id: str, strokes: Iterable[bytes]) -> bytes:
        if broken.pop("first", False):
            raise RuntimeError("a bug")
        return real(game_id, strokes)

    monkeypatch.setattr(manager.service, "swing_event", swing_event)
    outcomes = await asyncio.gather(*(play(nc) for _ in range(4)))
    errors = [error_of(m) for m in outcomes if m.headers]
    assert errors == [("500", "internal error in the manager")]
    assert sum(1 for m in outcomes if not m.headers) == 3
    assert decode(Game, (await play(nc)).data).strokes


async def test_an_answer_after_its_request_timed_out_still_plays_the_game_asked_again(
    services: Services, nc: Client
) -> None:
    """A hedged swing: the side is asked again at the timeout, and the first answer of any
    of its requests counts (here the first request's, late; the others never answer)."""

    async def late_first_only(msg: Msg, n: int) -> None:
        if n == 1:
            await asyncio.sleep(0.35)
            await msg.respond(honest_hits(msg))

    got = await fake_ping(nc, late_first_only)
    await services.player("pong", 1, hit_chance=0)
    await services.manager(1, swing_timeout=0.1, swing_retries=10)
    game = decode(Game, (await play(nc)).data)
    assert game.winner == "ping"  # pong misses every stroke
    assert game.strokes[0].instance == "fake@t"
    assert game.strokes[0].attempts >= 3  # asked again at 0.1 s and 0.2 s, answered at 0.35 s
    assert len(got) >= 2
