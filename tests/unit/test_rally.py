from __future__ import annotations

import asyncio
import time

import pytest

from manager import Limits, play_game
from manager.rally import Answer, Play
from pingpong.errors import GameAbortedError, UnansweredError
from pingpong.messages import Result, Swing, SwingReply, encode
from pingpong.subjects import Side


class FakeRequester:
    """Players that hit every stroke but ``miss_at``; ``failures`` raise first, by stroke."""

    def __init__(
        self,
        miss_at: int | None = None,
        failures: dict[int, list[Exception]] | None = None,
        hang: Side | None = None,
    ) -> None:
        self.miss_at = miss_at
        self.failures = failures or {}
        self.hang = hang
        self.calls: list[tuple[Side, int, int]] = []
        self.cancelled: list[Side] = []

    async def __call__(self, side: Side, swing: Swing) -> Answer:
        self.calls.append((side, swing.stroke, swing.count))
        if side == self.hang:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.append(side)
                raise
        errors = self.failures.get(swing.stroke)
        if errors:
            raise errors.pop(0)
        results: list[Result] = []
        for k in range(swing.stroke, swing.stroke + 2 * swing.count, 2):
            results.append(Result.MISS if k == self.miss_at else Result.HIT)
            if k == self.miss_at:
                break
        reply = SwingReply(side=side, instance=f"{side}-{len(self.calls)}", results=tuple(results))
        return reply, time.perf_counter()


async def no_sleep(_: float) -> None:
    return None


ONE_AT_A_TIME = Limits(ahead=1)


async def test_ping_serves_and_the_sides_alternate_until_a_miss() -> None:
    fake = FakeRequester(miss_at=3)
    game = await play_game(fake, "g", "m", ONE_AT_A_TIME, sleep=no_sleep)
    assert fake.calls == [("ping", 1, 1), ("pong", 2, 1), ("ping", 3, 1)]
    assert game.winner == "pong"
    assert game.winner_instance == "pong-2"
    assert game.model().transcript().splitlines() == [
        "PING --> HIT",
        "PONG --> HIT",
        "PING --> MISS",
        "The winner is PONG",
    ]


async def test_strokes_ahead_are_asked_of_both_sides_at_once_and_the_game_ends_at_the_miss() -> (
    None
):
    fake = FakeRequester(miss_at=6)
    game = await play_game(fake, "g", "m", Limits(ahead=16), sleep=no_sleep)
    assert fake.calls == [("ping", 1, 8), ("pong", 2, 8)]
    assert [(s.stroke, s.side, s.result) for s in game.strokes] == [
        (1, "ping", Result.HIT),
        (2, "pong", Result.HIT),
        (3, "ping", Result.HIT),
        (4, "pong", Result.HIT),
        (5, "ping", Result.HIT),
        (6, "pong", Result.MISS),
    ]
    assert game.winner == "ping"
    assert game.winner_instance == "ping-1"


async def test_a_rally_longer_than_the_strokes_ahead_asks_again_from_the_next_stroke() -> None:
    fake = FakeRequester(miss_at=7)
    game = await play_game(fake, "g", "m", Limits(ahead=4), sleep=no_sleep)
    assert fake.calls == [("ping", 1, 2), ("pong", 2, 2), ("ping", 5, 2), ("pong", 6, 2)]
    assert [s.stroke for s in game.strokes] == list(range(1, 8))
    assert game.winner == "pong"


async def test_a_missed_serve_gives_the_game_to_pong_without_a_winning_stroke() -> None:
    game = await play_game(FakeRequester(miss_at=1), "g", "m", Limits(), sleep=no_sleep)
    assert game.winner == "pong"
    assert game.winner_instance is None
    assert len(game.strokes) == 1


async def test_the_game_ends_at_a_miss_without_waiting_for_the_other_sides_answer() -> None:
    fake = FakeRequester(miss_at=1, hang="pong")
    game = await asyncio.wait_for(play_game(fake, "g", "m", Limits(), sleep=no_sleep), 1)
    assert game.winner == "pong"
    await asyncio.sleep(0)
    assert fake.cancelled == ["pong"]


@pytest.mark.parametrize("ahead", [1, 2, 16, 200])
async def test_the_cap_without_a_miss_is_a_draw_with_every_stroke_asked_once(ahead: int) -> None:
    fake = FakeRequester()
    game = await play_game(fake, "g", "m", Limits(max_rounds=99, ahead=ahead), sleep=no_sleep)
    assert [s.stroke for s in game.strokes] == list(range(1, 100))
    assert [s.side for s in game.strokes[:2]] == ["ping", "pong"]
    assert game.winner is None
    assert game.model().transcript().splitlines()[-1] == "DRAW"
    asked = sorted(first + 2 * i for _, first, count in fake.calls for i in range(count))
    assert asked == list(range(1, 100))


async def test_an_unanswered_swing_is_retried_and_the_game_goes_on() -> None:
    fake = FakeRequester(
        miss_at=3, failures={2: [UnansweredError("timeout"), UnansweredError("no responders")]}
    )
    sleeps: list[float] = []

    async def sleep(d: float) -> None:
        sleeps.append(d)

    game = await play_game(fake, "g", "m", Limits(retries=3, backoff=0.01, ahead=1), sleep=sleep)
    assert fake.calls == [
        ("ping", 1, 1),
        ("pong", 2, 1),
        ("pong", 2, 1),
        ("pong", 2, 1),
        ("ping", 3, 1),
    ]
    assert game.strokes[1].attempts == 3
    assert game.winner == "pong"
    assert sleeps == [0.01, 0.02]


async def test_a_side_that_never_answers_aborts_the_game_after_the_retries() -> None:
    fake = FakeRequester(failures={2: [UnansweredError("no responders")] * 3})
    with pytest.raises(GameAbortedError, match="no pong player answered stroke 2 \\(3 tries"):
        await play_game(fake, "g", "m", Limits(retries=2), sleep=no_sleep)
    assert [c for c in fake.calls if c[0] == "pong"] == [("pong", 2, 8)] * 3


class Liar(FakeRequester):
    """Answers its first request with ``results``, then honestly."""

    def __init__(self, results: tuple[Result, ...]) -> None:
        super().__init__(miss_at=2)
        self.lie: tuple[Result, ...] | None = results

    async def __call__(self, side: Side, swing: Swing) -> Answer:
        reply, at = await super().__call__(side, swing)
        if side == "ping" and self.lie is not None:
            reply, self.lie = reply.model_copy(update={"results": self.lie}), None
        return reply, at


@pytest.mark.parametrize(
    "results",
    [(Result.HIT,) * 3, (Result.HIT,)],
    ids=["more results than swings asked", "fewer results that do not end in a miss"],
)
async def test_a_reply_that_does_not_fit_the_swing_is_asked_again(
    results: tuple[Result, ...],
) -> None:
    fake = Liar(results)
    game = await play_game(fake, "g", "m", Limits(ahead=4), sleep=no_sleep)
    assert game.strokes[0].attempts == 2
    assert game.winner == "ping"


async def test_every_stroke_reaches_the_sink_in_order_before_the_game_ends() -> None:
    seen: list[Play] = []

    async def sink(s: Play) -> None:
        seen.append(s)

    game = await play_game(FakeRequester(miss_at=4), "g", "m", Limits(), sink, sleep=no_sleep)
    assert seen == list(game.strokes)
    assert [s.stroke for s in seen] == [1, 2, 3, 4]


async def test_the_start_callback_runs_once_before_the_first_stroke_even_over_several_rounds() -> (
    None
):
    order: list[str] = []

    async def on_start() -> None:
        order.append("started")

    async def sink(s: Play) -> None:
        order.append(f"stroke {s.stroke}")

    fake = FakeRequester(miss_at=5)
    await play_game(fake, "g", "m", Limits(ahead=2), sink, on_start=on_start, sleep=no_sleep)
    assert order == ["started", *(f"stroke {n}" for n in range(1, 6))]
    assert len(fake.calls) == 6  # three rounds of two requests


async def test_each_sides_latency_runs_to_its_own_answer_not_to_when_the_game_reads_it() -> None:
    clock = 10.0
    answers: dict[Side, asyncio.Future[Answer]] = {}

    def request(side: Side, swing: Swing) -> asyncio.Future[Answer]:
        answers[side] = asyncio.get_running_loop().create_future()
        return answers[side]

    game = asyncio.ensure_future(play_game(request, "g", "m", Limits(ahead=2), clock=lambda: clock))
    await asyncio.sleep(0)
    pong = SwingReply(side="pong", instance="pong-1", results=(Result.MISS,))
    answers["pong"].set_result((pong, 10.001))  # pong answers first, after 1 ms
    await asyncio.sleep(0)
    ping = SwingReply(side="ping", instance="ping-1", results=(Result.HIT,))
    answers["ping"].set_result((ping, 10.005))  # ping after 5 ms
    clock = 10.006
    played = await game
    assert [(s.side, s.latency_ms) for s in played.strokes] == [("ping", 5.0), ("pong", 1.0)]
    assert played.duration_ms == 6.0
    assert played.json() == encode(played.model())
