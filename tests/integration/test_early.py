"""The early answer (``Pingpong-Early``): the game at once, the event log's ack to the requester."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from pingpong import bus, early, eventlog, subjects
from pingpong.messages import Game, RallyFinished, decode, decode_event
from pingpong.settings import Settings
from proxy.games import GameClient
from tests.conftest import Services
from tests.natsserver import stream_takes_no_rally_events

INBOX = "_INBOX.early"
EARLY = early.ASK


class Requester:
    """Asks ``game.play`` early on its own reply subjects and keeps every message to them."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.got: asyncio.Queue[Msg] = asyncio.Queue()
        self._n = itertools.count(1)

    async def start(self) -> None:
        await self.nc.subscribe(f"{INBOX}.>", cb=self.got.put)
        await bus.sync(self.nc)

    async def ask(self) -> str:
        reply = f"{INBOX}.{next(self._n)}"
        await self.nc.publish(subjects.GAME_PLAY, b"", reply=reply, headers=EARLY)
        return reply

    async def next(self, timeout: float = 5.0) -> Msg:
        return await asyncio.wait_for(self.got.get(), timeout)

    async def early_game(self) -> tuple[str, Msg, Msg]:
        """Ask until the manager answers early (it does once the stream is there): the reply
        subject, the answer and the stream's ack."""
        for _ in range(50):
            reply = await self.ask()
            first = await self.next()
            if first.headers and early.HEADER in first.headers:
                return reply, first, await self.next()
            await asyncio.sleep(0.1)  # answered after a core NATS publish: no stream yet
        raise AssertionError("the manager never answered early")


@pytest.fixture
async def requester(services: Services, nc: Client) -> Requester:
    """A requester on ``nc``, with a game's services up."""
    await services.game(players=1)
    requester = Requester(nc)
    await requester.start()
    return requester


async def assert_stored(nc: Client, game: Game, seq: int | None = None) -> None:
    """``game``'s finished event is in the log (at ``seq`` if given)."""
    js = nc.jetstream()
    if seq is None:
        subject = subjects.rally_subject(game.game_id, "finished")
        stored = await js.get_last_msg(subjects.STREAM, subject)
    else:
        stored = await js.get_msg(subjects.STREAM, seq)
    assert stored.subject == subjects.rally_subject(game.game_id, "finished")
    event = decode_event(stored.data or b"")
    assert isinstance(event, RallyFinished)
    assert event.game == game


async def test_an_early_answer_comes_before_the_streams_ack_which_the_requester_hears_too(
    requester: Requester, nc: Client
) -> None:
    reply, answer, ack = await requester.early_game()
    assert answer.subject == reply
    assert ack.subject.startswith(f"{reply}.stored.")
    await assert_stored(nc, decode(Game, answer.data), eventlog.stored_sequence(ack))
    with pytest.raises(TimeoutError):  # the ack said stored: the manager does not answer again
        await requester.next(timeout=0.5)


async def test_an_early_answer_the_stream_did_not_store_is_answered_again_once_stored(
    requester: Requester, nc: Client
) -> None:
    await requester.early_game()  # the manager stores through the stream now
    js = nc.jetstream()
    await stream_takes_no_rally_events(js)  # as while a cluster elects a stream leader
    reply = await requester.ask()
    answer = await requester.next()
    assert answer.subject == reply
    assert answer.headers == EARLY
    with pytest.raises(TimeoutError):  # no stream took it (the server told the manager alone)
        await requester.next(timeout=0.6)
    assert await eventlog.ensure_stream(js, eventlog.stream_config(Settings())) is None
    again = await requester.next()
    assert again.subject == reply
    assert not again.headers  # the answer as without the header: the game, now stored
    assert again.data == answer.data
    await assert_stored(nc, decode(Game, again.data))


async def test_a_request_without_the_header_is_answered_once_after_its_result_is_stored(
    requester: Requester, nc: Client
) -> None:
    await requester.early_game()  # the stream is there
    await nc.publish(subjects.GAME_PLAY, b"", reply=f"{INBOX}.plain")
    answer = await requester.next()
    assert answer.subject == f"{INBOX}.plain"
    assert not answer.headers
    await assert_stored(nc, decode(Game, answer.data))
    with pytest.raises(TimeoutError):  # no ack of the stream comes to it
        await requester.next(timeout=0.5)


async def test_the_proxys_game_client_gets_early_answers_from_the_manager(
    requester: Requester, nc: Client
) -> None:
    """The proxy's reply subjects and the manager's check of them agree: if they did not,
    the manager would answer the proxy plainly, after the store."""
    await requester.early_game()  # the manager stores through the stream now
    client = GameClient(nc)
    await client.start()
    answers = [await client.request(b"", timeout=5) for _ in range(5)]
    assert all(early.is_early_answer(msg) for msg in answers)
    for msg in answers:
        await assert_stored(nc, decode(Game, msg.data))
