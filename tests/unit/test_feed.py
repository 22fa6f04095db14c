"""The live feed's state machines, driven by hand: no event loop, no NATS, no HTTP."""

from __future__ import annotations

import itertools
import json

from proxy.feed import (
    BATCH_BYTES,
    FLUSH,
    OPEN_RALLIES,
    RALLY_BYTES,
    RALLY_TIMEOUT,
    SAMPLING_EVERY,
    SCORES_EVERY,
    SCORES_RETRY,
    SETTLE,
    Feed,
    ScoresPhase,
    Tick,
    frame,
)


def scores_phase(feed: Feed) -> ScoresPhase:
    """The phase as the machine says it now (read anew after each step)."""
    return feed.phase


def events(batch: bytes) -> list[tuple[str, bytes]]:
    """The (kind, data) of each server-sent event in ``batch``, as a browser reads them."""
    out = []
    for block in batch.split(b"\n\n"):
        if not block:
            continue
        lines = block.split(b"\n")
        assert lines[0].startswith(b"event: "), block
        data = b"\n".join(line.removeprefix(b"data: ") for line in lines[1:])
        out.append((lines[0].removeprefix(b"event: ").decode(), data))
    return out


def play(feed: Feed, game: str, now: float, swings: int = 2, end: str = "finished") -> None:
    """A game's events as the manager publishes them, all at ``now``."""
    feed.event(game, "started", f'{{"game_id":"{game}"}}'.encode(), now)
    for n in range(swings):
        feed.event(game, "swing", f'{{"game_id":"{game}","n":{n}}}'.encode(), now)
    feed.event(game, end, f'{{"game_id":"{game}","end":1}}'.encode(), now)


def games_in(batch: bytes) -> list[list[str]]:
    """The kinds of each game's events in ``batch``, a list a game, in order."""
    rallies: dict[str, list[str]] = {}
    for kind, data in events(batch):
        if kind in ("started", "swing", "finished", "aborted"):
            rallies.setdefault(json.loads(data)["game_id"], []).append(kind)
    return list(rallies.values())


def test_a_frame_is_the_server_sent_event_of_the_payload_as_it_came() -> None:
    assert frame("swing", b'{"a":1}') == b'event: swing\ndata: {"a":1}\n\n'
    assert frame("x", b"one\ntwo") == b"event: x\ndata: one\ndata: two\n\n"


def test_at_a_low_game_rate_every_game_is_shown_whole_once_it_has_ended() -> None:
    feed = Feed(rate=30, now=0.0)
    feed.event("g1", "started", b'{"game_id":"g1"}', 0.0)
    feed.event("g1", "swing", b'{"game_id":"g1","n":0}', 0.0)
    assert feed.tick(0.1).batch == b""  # not ended: held back, never torn
    feed.event("g1", "finished", b'{"game_id":"g1","end":1}', 0.2)
    play(feed, "g2", 0.2, swings=1, end="aborted")
    tick = feed.tick(0.3)
    assert events(tick.batch) == [
        ("started", b'{"game_id":"g1"}'),
        ("swing", b'{"game_id":"g1","n":0}'),
        ("finished", b'{"game_id":"g1","end":1}'),
        ("started", b'{"game_id":"g2"}'),
        ("swing", b'{"game_id":"g2","n":0}'),
        ("aborted", b'{"game_id":"g2","end":1}'),
    ]
    assert tick.events == 6
    assert tick.skipped == 0
    assert feed.tick(0.4).batch == b""  # sent once


def test_a_burst_of_games_is_sampled_within_the_budget_and_each_shown_game_is_whole() -> None:
    feed = Feed(rate=10, now=0.0)
    shown: list[list[str]] = []
    skipped = sent = 0
    for n in range(2000):  # 2,000 games of 4 events in 2 s: 4,000 events a second
        now = n / 1000
        play(feed, f"g{n}", now)
        if n % 250 == 0:
            tick = feed.tick(now)
            shown += games_in(tick.batch)
            skipped += tick.skipped
            sent += tick.events
    tick = feed.tick(2.0)
    shown += games_in(tick.batch)
    skipped += tick.skipped
    sent += tick.events
    assert all(kinds == ["started", "swing", "swing", "finished"] for kinds in shown)
    assert len(shown) + skipped == 2000
    # the budget: 10 a second for 2 s, the 1 s bucket full at the start, and the game
    # taken on the last token overdraws it by its other 3 events
    assert 4 * len(shown) <= 10 * 2 + 10 + 3
    assert len(shown) >= 5
    assert sent >= 4 * len(shown)  # and the sampling events


def test_many_games_starting_at_once_take_no_more_than_the_budget_covers() -> None:
    feed = Feed(rate=30, now=0.0)
    for n in range(64):  # 64 games in flight start together, then play 5 events each
        feed.event(f"g{n}", "started", f'{{"game_id":"g{n}"}}'.encode(), 0.0)
    for n in range(64):
        for _ in range(3):
            feed.event(f"g{n}", "swing", f'{{"game_id":"g{n}"}}'.encode(), 0.01)
        feed.event(f"g{n}", "finished", f'{{"game_id":"g{n}"}}'.encode(), 0.01)
    tick = feed.tick(0.25)
    assert len(games_in(tick.batch)) == 7  # 30 events cover 7 games of the 4 expected
    assert tick.skipped == 57


def test_a_game_longer_than_expected_costs_the_events_past_its_charge() -> None:
    feed = Feed(rate=8, now=0.0)
    play(feed, "long", 0.0, swings=10)  # 12 events for the 4 charged: 8 more, -4 left
    feed.event("next", "started", b'{"game_id":"next"}', 0.0)
    assert feed.open_games == 0
    # a game is now expected to have 5 events (4 + (12 - 4) / 8): -4 + 8 a second covers
    # them after 1.125 s
    feed.event("soon", "started", b'{"game_id":"soon"}', 1.1)
    assert feed.open_games == 0
    feed.event("later", "started", b'{"game_id":"later"}', 1.2)
    assert feed.open_games == 1


def test_a_game_whose_start_came_before_the_subscription_is_never_shown() -> None:
    feed = Feed(rate=30, now=0.0)
    feed.event("g1", "swing", b'{"game_id":"g1"}', 0.0)
    feed.event("g1", "finished", b'{"game_id":"g1"}', 0.0)
    assert feed.tick(0.25).batch == b""
    assert scores_phase(feed) is ScoresPhase.FETCHING  # but its result moves the scores


def test_an_unknown_kind_of_event_is_not_relayed() -> None:
    feed = Feed(rate=30, now=0.0)
    feed.event("g1", "started", b'{"game_id":"g1"}', 0.0)
    feed.event("g1", "other", b'{"game_id":"g1"}', 0.0)
    feed.event("g1", "finished", b'{"game_id":"g1"}', 0.0)
    assert games_in(feed.tick(0.25).batch) == [["started", "finished"]]


def test_a_rally_too_long_to_read_is_dropped_whole_and_counted_as_skipped() -> None:
    feed = Feed(rate=1000, now=0.0)
    feed.event("long", "started", b'{"game_id":"long"}', 0.0)
    stroke = b'{"game_id":"long","strokes":"' + b"x" * 1000 + b'"}'
    for _ in range(RALLY_BYTES // len(stroke) + 1):
        feed.event("long", "swing", stroke, 0.0)
    assert feed.open_games == 0
    feed.event("long", "finished", b'{"game_id":"long"}', 0.0)
    tick = feed.tick(0.25)
    assert games_in(tick.batch) == []
    assert tick.skipped == 1


def test_a_taken_game_that_never_ends_is_dropped_after_the_rally_timeout() -> None:
    feed = Feed(rate=30, now=0.0)
    feed.event("g1", "started", b'{"game_id":"g1"}', 0.0)
    assert feed.tick(RALLY_TIMEOUT).skipped == 0
    assert feed.open_games == 1
    assert feed.tick(RALLY_TIMEOUT + 0.25).skipped == 1
    assert feed.open_games == 0
    feed.event("g1", "finished", b'{"game_id":"g1"}', RALLY_TIMEOUT + 1)
    assert games_in(feed.tick(RALLY_TIMEOUT + 1.25).batch) == []  # its end alone: not shown


def test_lost_events_drop_every_taken_game_not_yet_ended() -> None:
    feed = Feed(rate=30, now=0.0)
    feed.event("g1", "started", b'{"game_id":"g1"}', 0.0)
    play(feed, "g2", 0.0)
    feed.lost()
    feed.event("g1", "finished", b'{"game_id":"g1"}', 0.1)
    tick = feed.tick(0.25)
    assert games_in(tick.batch) == [["started", "swing", "swing", "finished"]]  # g2 had ended
    assert tick.skipped == 1


def test_a_started_event_again_for_a_taken_game_drops_the_first_one() -> None:
    feed = Feed(rate=30, now=0.0)
    feed.event("g1", "started", b'{"game_id":"g1","try":1}', 0.0)
    feed.event("g1", "started", b'{"game_id":"g1","try":2}', 0.1)
    feed.event("g1", "finished", b'{"game_id":"g1"}', 0.1)
    tick = feed.tick(0.25)
    assert [data for kind, data in events(tick.batch) if kind == "started"] == [
        b'{"game_id":"g1","try":2}'
    ]
    assert tick.skipped == 1


def test_games_started_beyond_the_open_rallies_are_skipped() -> None:
    feed = Feed(rate=10_000, now=0.0)
    for n in range(OPEN_RALLIES + 5):
        feed.event(f"g{n}", "started", b"{}", 0.0)
    assert feed.open_games == OPEN_RALLIES
    assert feed.tick(0.25).skipped == 5


def test_a_batch_holds_at_most_batch_bytes_of_rallies_and_the_rest_waits_whole() -> None:
    feed = Feed(rate=10_000, now=0.0)
    pad = "x" * 20_000
    for n in range(5):  # about 20 kB each: 3 fit in a batch of 64 KiB
        feed.event(f"g{n}", "started", f'{{"game_id":"g{n}"}}'.encode(), 0.0)
        feed.event(f"g{n}", "swing", f'{{"game_id":"g{n}","pad":"{pad}"}}'.encode(), 0.0)
        feed.event(f"g{n}", "finished", f'{{"game_id":"g{n}"}}'.encode(), 0.0)
    first = feed.tick(0.25)
    second = feed.tick(0.5)
    assert len(first.batch) <= BATCH_BYTES
    assert [len(games_in(t.batch)) for t in (first, second)] == [3, 2]
    assert first.events == 9
    assert feed.tick(0.75).batch == b""


def test_the_sampling_event_says_each_second_how_many_games_were_skipped() -> None:
    feed = Feed(rate=4, now=0.0)
    # 20 games of 2 events in the first second, a budget of 4 events a second: a game is
    # taken when the budget covers the events one is expected to have (4 at first, then
    # the mean of those shown), and what it did not use comes back at its end
    for n in range(20):
        play(feed, f"g{n}", n / 20, swings=0)
    notes = [
        json.loads(data)
        for t in (0.25, 0.5, 0.75, 1.0)
        for kind, data in events(feed.tick(t).batch)
        if kind == "sampling"
    ]
    assert notes == [{"seconds": 1.0, "games": 20, "shown": 3, "skipped": 17}]


def test_the_sampling_event_says_once_that_nothing_is_skipped_any_more_then_goes_quiet() -> None:
    feed = Feed(rate=4, now=0.0)
    for n in range(10):
        play(feed, f"g{n}", 0.5, swings=0)
    said = []
    for n in range(1, 5):  # no games after the first second
        said += [json.loads(d) for k, d in events(feed.tick(float(n)).batch) if k == "sampling"]
    assert [note["skipped"] for note in said] == [9, 0]  # 10 at once: the budget took one
    assert said[1] == {"seconds": 1.0, "games": 0, "shown": 0, "skipped": 0}


def test_no_sampling_event_while_no_games_come() -> None:
    feed = Feed(rate=30, now=0.0)
    assert all(feed.tick(n * FLUSH).batch == b"" for n in range(1, 20))


def test_the_scores_are_asked_for_only_once_results_came_in() -> None:
    feed = Feed(rate=30, now=0.0)
    assert feed.tick(0.25).fetch_scores is False
    assert scores_phase(feed) is ScoresPhase.QUIET
    feed.event("g1", "started", b"{}", 0.3)
    assert feed.tick(0.5).fetch_scores is False  # a start is no result
    feed.event("g1", "finished", b"{}", 0.6)
    assert scores_phase(feed) is ScoresPhase.DUE
    assert feed.tick(0.75).fetch_scores is True
    assert scores_phase(feed) is ScoresPhase.FETCHING


def test_new_scores_go_out_in_the_next_batch_once_and_the_same_scores_not_again() -> None:
    feed = Feed(rate=30, now=0.0)
    feed.event("g1", "finished", b"{}", 0.0)
    assert feed.tick(0.25).fetch_scores
    feed.scores(b'{"games":1}')
    tick = feed.tick(0.5)
    assert events(tick.batch) == [("scores", b'{"games":1}')]
    assert tick.events == 1
    again = feed.tick(0.75)  # the one more fetch: the first began within SETTLE of the result
    assert again.batch == b""  # sent once
    assert again.fetch_scores
    feed.scores(b'{"games":1}')
    assert feed.tick(1.0).batch == b""  # the same scores: nothing to send


def test_the_scores_tick_at_most_every_scores_every_while_results_keep_coming() -> None:
    feed = Feed(rate=30, now=0.0)
    fetched_at = []
    for n in range(1, 41):  # 10 s of ticks, a result before each
        now = n * FLUSH
        feed.event(f"g{n}", "finished", b"{}", now - 0.01)
        if feed.tick(now).fetch_scores:
            fetched_at.append(now)
            feed.scores(f'{{"games":{n}}}'.encode())
    gaps = [b - a for a, b in itertools.pairwise(fetched_at)]
    assert min(gaps) >= SCORES_EVERY
    assert len(fetched_at) >= 10 / SCORES_EVERY - 1


def test_one_more_fetch_follows_a_result_that_may_not_have_been_folded_then_none() -> None:
    feed = Feed(rate=30, now=0.0)
    feed.event("g1", "finished", b"{}", 1.0)
    assert feed.tick(1.0).fetch_scores  # at once: the scoreboard may not have folded it
    feed.scores(b'{"games":0}')
    assert scores_phase(feed) is ScoresPhase.DUE
    now, fetches = 1.0, []
    while now < 5.0:
        now += FLUSH
        if feed.tick(now).fetch_scores:
            fetches.append(now)
            feed.scores(b'{"games":1}')
    assert fetches == [1.0 + SETTLE]  # began SETTLE after the result: then quiet
    assert scores_phase(feed) is ScoresPhase.QUIET


def test_no_second_fetch_while_one_is_out_and_a_failed_one_is_asked_again_later() -> None:
    feed = Feed(rate=30, now=0.0)
    feed.event("g1", "finished", b"{}", 0.0)
    assert feed.tick(0.25).fetch_scores
    feed.event("g2", "finished", b"{}", 0.3)
    assert not feed.tick(1.0).fetch_scores  # the first is still out
    feed.scores_failed(1.1)
    assert scores_phase(feed) is ScoresPhase.DUE
    assert not feed.tick(1.1 + SCORES_RETRY - 0.05).fetch_scores
    assert feed.tick(1.1 + SCORES_RETRY).fetch_scores


def test_scores_that_come_back_when_none_were_asked_for_are_ignored() -> None:
    feed = Feed(rate=30, now=0.0)
    feed.scores(b'{"games":9}')
    feed.scores_failed(0.0)
    assert feed.tick(0.25) == Tick(b"", 0, False, 0)
    assert scores_phase(feed) is ScoresPhase.QUIET


def test_sampling_every_is_a_whole_number_of_flushes() -> None:
    assert (SAMPLING_EVERY / FLUSH).is_integer()  # the sampling window ends on a tick
