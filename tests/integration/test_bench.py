"""A short smoke run of the benchmark: it runs end to end and prints its ratios."""

from __future__ import annotations

import io

from bench import BenchOptions, run_bench
from tests.processes import GO


async def test_the_bench_prints_figures_and_ratios_to_the_baselines_and_the_go_original() -> None:
    out = io.StringIO()
    options = BenchOptions(seconds=0.4, concurrency=(1, 4), warmup=0.1, rounds=2, viewers=(0, 20))
    ratios = await run_bench(options, out)
    text = out.getvalue()
    names = [
        "raw nats req/reply",
        "bare aiohttp",
        "games via :3000",
        "games via :3000 lazy",  # the same game with lazy syncs, for what durability costs
        "games via game.play",
    ]
    for name in [*names, "games via go original"] if GO else names:
        rows = [line for line in text.splitlines() if line[:22].strip() == name]
        assert len(rows) == 2, text
        assert all(line.split()[-1] == "0" for line in rows), f"errors in {rows}"
    plain = [line for line in text.splitlines() if line.startswith("raw nats on asyncio")]
    assert len(plain) == 1, text  # at 1 client only, the reference's round trip
    assert plain[0].split()[4] == "1", text  # its concurrency
    assert plain[0].split()[-1] == "0", text  # its errors
    floor = [line for line in text.splitlines() if line.startswith("games via floor mgr")]
    assert len(floor) == 1, text  # at the top concurrency only
    assert floor[0].split()[-1] == "0", text
    assert set(ratios) >= {
        "floor_swings_vs_raw",
        "proxy_vs_aiohttp",
        "manager_swings_vs_raw",
        "median_game_ms_1_client",
        "median_game_in_raw_trips",
        "median_game_in_asyncio_trips",
        "max_service_rss_mb",
        "split_to_manager_ms",  # where a game at 1 client spends its time
        "split_in_manager_ms",
        "split_stored_and_answered_ms",
        "durable_vs_lazy",
    }
    assert all(v > 0 for v in ratios.values())
    assert "games/s via :3000 / bare aiohttp req/s at 4" in text
    assert "in 2 rounds" in text
    paired = [line for line in text.splitlines() if "/ raw nats req/s at 4" in line]
    assert len(paired) == 1, text
    assert " rounds " in paired[0], text  # the rounds' spread
    assert "rss" in text
    proxy_cpu = [line for line in text.splitlines() if line.strip().startswith("proxy ")]
    assert len(proxy_cpu) == 1, text  # its CPU at the top, RSS, and CPU a game at 1 client
    assert float(proxy_cpu[0].split("at 1:")[1].split()[0]) > 0, text
    assert "in raw nats-py round trips on plain asyncio (issue's machine: 3.7)" in text
    crowd = text.split("viewers: games via :3000 at 64 concurrent with /events clients open")[1]
    table = [line.split() for line in crowd.splitlines()[3:5]]
    assert [row[0] for row in table] == ["0", "20"], crowd  # games/s with each crowd open
    assert all(row[4] == "0" for row in table), crowd  # no errors
    assert float(table[1][6]) > 0, crowd  # the proxy's CPU a game
    assert float(table[1][7]) > 0, crowd  # the viewers got events
    assert "games/s with 20 viewers / with none [>= 0.8]" in crowd
    assert ratios["viewers_20_vs_none"] > 0
    assert 0 < ratios["proxy_rss_mb_20_viewers"] < 500
    assert "in raw nats-py round trips on uvloop" in text
    side_by_side = {
        "proxy_vs_original",
        "lazy_vs_original",
        "median_game_vs_original",
        "original_median_game_ms",
    }
    assert "games/s synced before each ack / lazy syncs at 4" in text
    if GO:
        assert set(ratios) >= side_by_side
        assert "games/s via :3000 / the Go original's at 4    [>= 2]" in text
        assert "median game at 1 client / the Go original's   [<= 2]" in text
        assert "go-table" in text  # its processes' CPU and RSS
    else:
        assert not set(ratios) & side_by_side
        assert "games via go original: not measured, no Go toolchain" in text
