from __future__ import annotations

from collections import deque

import pytest

from manager import Limits, play_game
from pingpong.errors import GameAbortedError, UnansweredError
from pingpong.messages import Result, Stroke, Swing, SwingReply
from pingpong.subjects import Side


class FakeRequester:
    """Answers from a script: a Result, or an exception to raise."""

    def __init__(self, *script: Result | Exception, default: Result = Result.HIT) -> None:
        self.script: deque[Result | Exception] = deque(script)
        self.default = default
        self.calls: list[tuple[Side, int]] = []

    async def __call__(self, side: Side, swing: Swing) -> SwingReply:
        self.calls.append((side, swing.stroke))
        step = self.script.popleft() if self.script else self.default
        if isinstance(step, Exception):
            raise step
        return SwingReply(side=side, instance=f"{side}-{len(self.calls)}", result=step)


async def no_sleep(_: float) -> None:
    return None


async def test_ping_serves_and_the_sides_alternate_until_a_miss() -> None:
    fake = FakeRequester(Result.HIT, Result.HIT, Result.MISS)
    game = await play_game(fake, "g", "m", Limits(), sleep=no_sleep)
    assert [c[0] for c in fake.calls] == ["ping", "pong", "ping"]
    assert game.winner == "pong"
    assert game.winner_instance == "pong-2"
    assert game.transcript().splitlines() == [
        "PING --> HIT",
        "PONG --> HIT",
        "PING --> MISS",
        "The winner is PONG",
    ]


async def test_a_missed_serve_gives_the_game_to_pong_without_a_winning_stroke() -> None:
    game = await play_game(FakeRequester(Result.MISS), "g", "m", Limits(), sleep=no_sleep)
    assert game.winner == "pong"
    assert game.winner_instance is None


async def test_the_cap_without_a_miss_is_a_draw() -> None:
    fake = FakeRequester(default=Result.HIT)
    game = await play_game(fake, "g", "m", Limits(max_rounds=99), sleep=no_sleep)
    assert len(game.strokes) == 99
    assert game.winner is None
    assert game.transcript().splitlines()[-1] == "DRAW"


async def test_an_unanswered_swing_is_retried_and_the_game_goes_on() -> None:
    fake = FakeRequester(
        Result.HIT, UnansweredError("timeout"), UnansweredError("no responders"), Result.MISS
    )
    sleeps: list[float] = []

    async def sleep(d: float) -> None:
        sleeps.append(d)

    game = await play_game(fake, "g", "m", Limits(retries=3, backoff=0.01), sleep=sleep)
    assert fake.calls == [("ping", 1), ("pong", 2), ("pong", 2), ("pong", 2)]
    assert game.strokes[1].attempts == 3
    assert game.winner == "ping"
    assert sleeps == [0.01, 0.02]


async def test_a_side_that_never_answers_aborts_the_game_after_the_retries() -> None:
    fake = FakeRequester(Result.HIT, default=Result.HIT)
    fake.script.extend([UnansweredError("no responders")] * 3)
    with pytest.raises(GameAbortedError, match="no pong player answered stroke 2 \\(3 tries"):
        await play_game(fake, "g", "m", Limits(retries=2), sleep=no_sleep)
    assert len(fake.calls) == 4


async def test_every_stroke_reaches_the_sink_in_order_before_the_game_ends() -> None:
    seen: list[Stroke] = []

    async def sink(s: Stroke) -> None:
        seen.append(s)

    game = await play_game(
        FakeRequester(Result.HIT, Result.HIT, Result.HIT, Result.MISS),
        "g",
        "m",
        Limits(),
        sink,
        sleep=no_sleep,
    )
    assert seen == list(game.strokes)
    assert [s.stroke for s in seen] == [1, 2, 3, 4]
