"""NATS users per role against a real nats-server: who may do what, and a full game."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from nats.aio.client import Client
from pydantic import SecretStr

from pingpong import auth, subjects
from pingpong.messages import Game, RallyEvent, RallyFinished, Scores, decode_event, encode, now
from pingpong.settings import Settings
from tests.conftest import Services, wait_for
from tests.natsserver import NatsServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[tuple[NatsServer, dict[str, str]]]:
    """A nats-server with every role's user; the password of each role."""
    files = auth.generate(tmp_path / "auth")
    conf = tmp_path / "auth" / "server.conf"
    conf.write_text("include ./auth.conf\n")
    server = NatsServer(store=tmp_path / "js", extra_args=["-c", str(conf)])
    await server.start()
    yield server, {role: f.read_text().strip() for role, f in files.items()}
    await server.close()


async def connect(
    server: NatsServer, role: str | None, password: str = "", errors: list[str] | None = None
) -> Client:
    nc = Client()

    async def on_error(e: Exception) -> None:
        if errors is not None:
            errors.append(str(e))

    await nc.connect(
        server.url,
        user=role,
        password=password or None,
        error_cb=on_error,
        allow_reconnect=False,
        max_reconnect_attempts=0,
    )
    return nc


def test_the_committed_auth_conf_is_what_the_role_table_renders() -> None:
    assert (ROOT / "nats" / "auth.conf").read_text() == auth.render()


async def test_an_anonymous_connection_is_refused(
    secured: tuple[NatsServer, dict[str, str]],
) -> None:
    server, _ = secured
    with pytest.raises(Exception, match="Authorization Violation"):
        await connect(server, None)


async def test_a_wrong_password_is_refused(secured: tuple[NatsServer, dict[str, str]]) -> None:
    server, _ = secured
    with pytest.raises(Exception, match="Authorization Violation"):
        await connect(server, "manager", "guess")


FORBIDDEN_PUBLISH = [
    ("ping", "rally.g1.finished"),
    ("ping", "game.play"),
    ("ping", "pong.swing"),
    ("pong", "rally.g1.finished"),
    ("pong", "scores.get"),
    ("proxy", "ping.swing"),
    ("proxy", "rally.g1.finished"),
    ("proxy", "$JS.API.STREAM.INFO.RALLY"),
    ("watcher", "rally.g1.finished"),
    ("watcher", "game.play"),
    ("manager", "scores.get"),
    ("manager", "$JS.API.STREAM.DELETE.RALLY"),
    ("manager", "$KV.SCORES.scores"),
    ("scoreboard", "rally.g1.finished"),
    ("scoreboard", "game.play"),
    ("scoreboard", "$JS.API.STREAM.DELETE.RALLY"),
    ("scoreboard", "$JS.API.STREAM.PURGE.RALLY"),
]
FORBIDDEN_SUBSCRIBE = [
    ("ping", "pong.swing"),
    ("ping", "rally.>"),
    ("ping", "_INBOX.>"),
    ("pong", "game.play"),
    ("watcher", "game.play"),
    ("watcher", "_INBOX.>"),
    ("watcher", "ping.swing"),
    ("proxy", "ping.swing"),
    ("proxy", "game.play"),
    ("manager", "ping.swing"),
    ("manager", "scores.get"),
    ("scoreboard", "game.play"),
]


async def refused(
    server: NatsServer,
    role: str,
    password: str,
    act: Callable[[Client], Awaitable[object]],
    report: str,
) -> None:
    """``act`` on a connection as ``role``; the server reports the violation ``report``."""
    errors: list[str] = []
    nc = await connect(server, role, password, errors)
    try:
        await act(nc)
        await nc.flush()

        async def reported() -> bool:
            return any(report in e for e in errors)

        await wait_for(reported, timeout=3)
    finally:
        await nc.close()


@pytest.mark.parametrize(("role", "subject"), FORBIDDEN_PUBLISH)
async def test_a_role_cannot_publish_outside_its_permissions(
    secured: tuple[NatsServer, dict[str, str]], role: str, subject: str
) -> None:
    server, passwords = secured
    await refused(
        server,
        role,
        passwords[role],
        lambda nc: nc.publish(subject, b"{}"),
        "permissions violation for publish",
    )


@pytest.mark.parametrize(("role", "subject"), FORBIDDEN_SUBSCRIBE)
async def test_a_role_cannot_subscribe_outside_its_permissions(
    secured: tuple[NatsServer, dict[str, str]], role: str, subject: str
) -> None:
    server, passwords = secured
    await refused(
        server,
        role,
        passwords[role],
        lambda nc: nc.subscribe(subject),
        "permissions violation for subscription",
    )


def as_role(settings: Settings, role: str, passwords: dict[str, str]) -> dict[str, object]:
    return {"nats_user": role, "nats_password": SecretStr(passwords[role])}


async def test_a_full_game_runs_with_every_role_on_its_own_user_and_a_forged_result_never_counts(
    secured: tuple[NatsServer, dict[str, str]],
) -> None:
    server, passwords = secured
    services = Services(Settings(nats_url=server.url, swing_timeout=0.5, game_timeout=5.0))
    try:
        creds = {role: as_role(services.settings, role, passwords) for role in auth.ROLES}
        for side in subjects.SIDES:
            await services.player(side, 1, **creds[side])
        await services.manager(1, **creds["manager"])
        await services.scoreboard(1, **creds["scoreboard"])
        url = await services.proxy(**creds["proxy"])
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/?format=json") as r:
                assert r.status == 200, await r.text()
                game = Game.model_validate_json(await r.read())

            # a player forges a finished game: refused by the server, never stored or counted
            errors: list[str] = []
            forger = await connect(server, "ping", passwords["ping"], errors)
            watcher = await connect(server, "watcher", passwords["watcher"])
            seen = await watcher.subscribe(subjects.RALLY_ALL)
            await watcher.flush()
            forged = RallyFinished(
                game=game.model_copy(update={"game_id": "forged1", "started_at": now()})
            )
            await forger.publish(subjects.rally_subject("forged1", "finished"), encode(forged))
            await forger.flush()

            async def refused() -> bool:
                return any("permissions violation" in e for e in errors)

            await wait_for(refused, timeout=3)
            async with http.get(url + "/") as r:  # one more real game after the forgery
                assert r.status == 200
                last_id = r.headers["X-Game-Id"]
            events: list[RallyEvent] = []
            async with asyncio.timeout(5):
                while not any(
                    isinstance(e, RallyFinished) and e.game.game_id == last_id for e in events
                ):
                    events.append(decode_event((await seen.next_msg(timeout=5)).data))
            assert all(getattr(e, "game_id", None) != "forged1" for e in events)

            async def counted() -> bool:
                async with http.get(url + "/scores.json") as r:
                    return Scores.model_validate_json(await r.read()).games == 2

            await wait_for(counted, timeout=10)
            async with http.get(url + "/scores.json") as r:
                scores = Scores.model_validate_json(await r.read())
            assert "forged1" not in [g.game_id for g in scores.last_games]
            await forger.close()
            await watcher.close()
    finally:
        await services.close()
