"""Fuzzing every subject's payload and the proxy's paths, queries and headers (hypothesis).

Each case must get an answer (a reply, an error reply, or an HTTP status below
500) and the services must keep serving. ``CI=true`` runs 1,000 cases per
target; otherwise 150.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import nats.errors
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client

from pingpong import subjects
from pingpong.messages import Swing, SwingReply, decode, encode
from pingpong.settings import Settings
from tests.conftest import Services
from tests.natsserver import NatsServer

T = TypeVar("T")
EXAMPLES = 1000 if os.environ.get("CI") else 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class Stack:
    """A nats-server, one player per side, a manager, the scoreboard and a proxy, served from
    an event loop in a thread so that synchronous hypothesis tests can drive them."""

    def __init__(self, store: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = NatsServer(store=store)
        self.run(self.server.start())
        self.services = Services(
            Settings(nats_url=self.server.url, swing_timeout=0.5, game_timeout=5.0)
        )
        self.url = self.run(self._start())
        self.nc = Client()
        self.run(self.nc.connect(self.server.url))
        self.http: aiohttp.ClientSession = self.run(self._session())

    async def _start(self) -> str:
        await self.services.scoreboard()
        return await self.services.game(players=1)

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.run(self.http.close())
        self.run(self.nc.close())
        self.run(self.services.close(), timeout=60)
        self.run(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("fuzz"))
    yield s
    s.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
payloads = st.one_of(
    st.binary(max_size=2048),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "v": st.integers(-2, 3),
            "game_id": st.text(max_size=70),
            "stroke": st.integers(-5, 200_000),
            "max_rounds": st.integers(-5, 20_000),
            "count": st.integers(-1, 120),
            "swings": st.lists(
                st.fixed_dictionaries(
                    {"game_id": st.text(max_size=20)},
                    optional={"stroke": st.integers(-5, 300), "count": st.integers(-1, 120)},
                ),
                max_size=5,
            ),
        },
    ).map(lambda d: json.dumps(d).encode()),
)


def still_serves(stack: Stack) -> None:
    msg = stack.run(
        stack.nc.request(
            subjects.swing_subject("ping"), encode(Swing(game_id="ok", stroke=1)), timeout=5
        )
    )
    assert decode(SwingReply, msg.data).side == "ping"


@pytest.mark.parametrize(
    "subject", ["ping.swing", "pong.swing", "ping.swings", "pong.swings", "game.play", "scores.get"]
)
def test_any_payload_on_any_subject_gets_an_answer_and_breaks_nothing(
    stack: Stack, subject: str
) -> None:
    @FUZZ
    @given(payload=payloads)
    def case(payload: bytes) -> None:
        msg = stack.run(stack.nc.request(subject, payload, timeout=10))
        headers = msg.headers or {}
        if "Nats-Service-Error-Code" in headers:
            assert headers["Nats-Service-Error-Code"] in {"400", "503", "504"}, headers
            assert "\n" not in headers["Nats-Service-Error"]
        else:
            assert msg.data  # a real answer

    case()
    still_serves(stack)


def test_an_oversized_payload_is_refused_by_the_server(stack: Stack) -> None:
    with pytest.raises(nats.errors.MaxPayloadError):
        stack.run(stack.nc.request("ping.swing", b"x" * (2 * 1024 * 1024), timeout=5))
    still_serves(stack)


paths = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60)
queries = st.dictionaries(
    st.sampled_from(["format", "max_rounds", "game", "x"]), st.text(max_size=20), max_size=3
)
headers = st.dictionaries(
    st.sampled_from(["Accept", "X-Anything", "Accept-Encoding", "Cookie", "Range"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=100),
    max_size=3,
)


def test_any_path_query_and_header_gets_a_status_below_500(stack: Stack) -> None:
    async def get(path: str, query: dict[str, str], hdrs: dict[str, str]) -> int:
        url = stack.url + "/" + path.lstrip("/")
        try:
            async with stack.http.get(
                url, params=query, headers=hdrs, timeout=aiohttp.ClientTimeout(total=10)
            ) as r:
                if r.content_type == "text/event-stream":
                    return r.status  # /events streams forever: the status is the answer
                await r.read()
                return r.status
        except ValueError:  # the client refuses to send it (bad URL): nothing to test
            return 0

    @FUZZ
    @given(path=paths, query=queries, hdrs=headers)
    def case(path: str, query: dict[str, str], hdrs: dict[str, str]) -> None:
        status = stack.run(get(path, query, hdrs))
        assert status < 500, (path, query, hdrs, status)

    case()
    assert stack.run(get("healthz", {}, {})) == 200
