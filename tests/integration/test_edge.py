"""The proxy's edge: security headers, request limits, a bound on games in flight."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.conftest import Services


async def test_every_answer_carries_the_security_headers(services: Services) -> None:
    url = await services.game(players=1)
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/scores", "/nope", "/healthz", "/static/scores.js"):
            async with http.get(url + path) as r:
                assert r.headers["X-Content-Type-Options"] == "nosniff", path
                assert r.headers["X-Frame-Options"] == "DENY", path
                assert "default-src 'self'" in r.headers["Content-Security-Policy"], path


async def test_an_oversized_header_is_refused_with_400_not_a_crash(services: Services) -> None:
    url = await services.proxy()
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/healthz", headers={"X-Big": "a" * 10_000}) as r:
            assert r.status == 400
        async with http.get(url + "/healthz") as r:  # and it still serves
            assert r.status == 200


async def test_an_oversized_body_is_refused_with_413(services: Services) -> None:
    url = await services.proxy()
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/", data=b"x" * 100_000) as r:
            assert r.status in (405, 413)  # GET-only route: refused either way, never read
        async with http.get(url + "/healthz") as r:
            assert r.status == 200


async def test_games_beyond_the_in_flight_bound_get_503_with_retry_after(
    services: Services,
) -> None:
    url = await services.game(players=1, hit_chance=100, max_inflight=2)
    async with aiohttp.ClientSession() as http:

        async def long_game() -> tuple[int, str, str | None]:
            async with http.get(url + "/?max_rounds=1000") as r:  # 2,000 strokes
                return r.status, await r.text(), r.headers.get("Retry-After")

        results = await asyncio.gather(*(long_game() for _ in range(6)))
    statuses = sorted(s for s, _, _ in results)
    assert statuses.count(200) >= 2
    refused = [(body, retry) for s, body, retry in results if s == 503]
    assert refused, statuses
    assert all(
        body.startswith("too many games in flight") and retry == "1" for body, retry in refused
    )
