"""NATS users per role against a real nats-server: who may do what, and a full game."""

from __future__ import annotations

import asyncio
import contextlib
import json
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


@contextlib.asynccontextmanager
async def users_server(
    directory: Path, *, anonymous: bool
) -> AsyncIterator[tuple[NatsServer, dict[str, str]]]:
    """A nats-server with every role's user (as ``pingpong up`` runs it); the passwords."""
    files = auth.generate(directory / "auth", anonymous=anonymous)
    conf = directory / "auth" / "server.conf"
    conf.write_text("include ./auth.conf\ninclude ./anonymous.conf\n")
    server = NatsServer(store=directory / "js", extra_args=["-c", str(conf)])
    await server.start()
    try:
        yield server, {role: f.read_text().strip() for role, f in files.items()}
    finally:
        await server.close()


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[tuple[NatsServer, dict[str, str]]]:
    """Every role's user; a connection without credentials is the watcher (the default)."""
    async with users_server(tmp_path, anonymous=True) as server:
        yield server


@pytest.fixture
async def private(tmp_path: Path) -> AsyncIterator[tuple[NatsServer, dict[str, str]]]:
    """Every role's user; a connection without credentials is refused."""
    async with users_server(tmp_path, anonymous=False) as server:
        yield server


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
    assert (ROOT / "nats" / "anonymous-on.conf").read_text() == auth.render_anonymous(True)
    assert (ROOT / "nats" / "anonymous-off.conf").read_text() == auth.render_anonymous(False)


async def test_with_anonymous_off_a_connection_without_credentials_is_refused(
    private: tuple[NatsServer, dict[str, str]],
) -> None:
    server, _ = private
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
    ("watcher", "ping.swing"),
    ("watcher", "$JS.API.STREAM.INFO.RALLY"),
    (None, "ping.swing"),
    (None, "ping.swings"),
    (None, "rally.x.finished"),
    (None, "game.play"),
    (None, "scores.get"),
    (None, "$JS.API.STREAM.INFO.RALLY"),
    (None, "$KV.SCORES.x"),
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
    ("watcher", "ping.swing"),
    (None, "game.play"),
    (None, "ping.swing"),
    (None, "$JS.API.>"),
    ("proxy", "ping.swing"),
    ("proxy", "game.play"),
    ("manager", "ping.swing"),
    ("manager", "scores.get"),
    ("scoreboard", "game.play"),
]


async def refused(
    server: NatsServer,
    role: str | None,
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
    secured: tuple[NatsServer, dict[str, str]], role: str | None, subject: str
) -> None:
    """``None``: a connection without credentials (the watcher)."""
    server, passwords = secured
    await refused(
        server,
        role,
        passwords[role] if role else "",
        lambda nc: nc.publish(subject, b"{}"),
        "permissions violation for publish",
    )


@pytest.mark.parametrize(("role", "subject"), FORBIDDEN_SUBSCRIBE)
async def test_a_role_cannot_subscribe_outside_its_permissions(
    secured: tuple[NatsServer, dict[str, str]], role: str | None, subject: str
) -> None:
    server, passwords = secured
    await refused(
        server,
        role,
        passwords[role] if role else "",
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


async def discover(nc: Client, subject: str, wait: float = 0.5) -> list[dict[str, object]]:
    """The answers to a NATS micro discovery request (as ``nats micro ls`` gathers them)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, b"", reply=inbox)
    answers: list[dict[str, object]] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait):
            while True:
                answers.append(json.loads((await sub.next_msg(timeout=wait)).data))
    await sub.unsubscribe()
    return answers


async def test_without_credentials_a_client_watches_every_rally_and_discovers_the_players(
    secured: tuple[NatsServer, dict[str, str]],
) -> None:
    server, passwords = secured
    services = Services(Settings(nats_url=server.url, swing_timeout=0.5, game_timeout=5.0))
    try:
        creds = {role: as_role(services.settings, role, passwords) for role in auth.ROLES}
        for n in (1, 2):
            for side in subjects.SIDES:
                await services.player(side, n, **creds[side])
        await services.manager(1, **creds["manager"])
        url = await services.proxy(**creds["proxy"])
        anonymous = await connect(server, None)
        seen = await anonymous.subscribe(subjects.RALLY_ALL)
        await anonymous.flush()
        async with aiohttp.ClientSession() as http:
            game_ids = []
            for _ in range(20):
                async with http.get(url + "/") as r:
                    assert r.status == 200
                    game_ids.append(r.headers["X-Game-Id"])
        kinds: dict[str, list[str]] = {game_id: [] for game_id in game_ids}
        async with asyncio.timeout(5):
            while not all("finished" in k for k in kinds.values()):
                msg = await seen.next_msg(timeout=5)
                _, game_id, kind = msg.subject.split(".")
                kinds.setdefault(game_id, []).append(kind)
        for game_id in game_ids:
            assert kinds[game_id][0] == "started"
            assert "swing" in kinds[game_id]
            assert kinds[game_id][-1] == "finished"

        infos = await discover(anonymous, "$SRV.INFO")
        by_name = sorted((str(i["name"]), str(i["id"])) for i in infos)
        assert [name for name, _ in by_name] == ["ping", "ping", "pong", "pong"]
        stats = await discover(anonymous, "$SRV.STATS.ping")
        requests = [
            int(e["num_requests"])
            for s in stats
            for e in s["endpoints"]  # type: ignore[attr-defined]
        ]
        assert len(stats) == 2
        assert sum(requests) >= 20  # every game asked ping at least once
        pings = await discover(anonymous, f"$SRV.PING.pong.{by_name[2][1]}")
        assert [p["id"] for p in pings] == [by_name[2][1]]
        await anonymous.close()
    finally:
        await services.close()
