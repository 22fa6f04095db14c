"""The inbox against a real nats-server: replies matched to their requests, by future, by
callback, or to a listener until it is forgotten."""

from __future__ import annotations

import asyncio

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from pingpong import bus
from pingpong.inbox import Inbox, OnReply


async def echo(nc: Client, subject: str) -> None:
    async def answer(msg: Msg) -> None:
        await msg.respond(b"re:" + msg.data)

    await nc.subscribe(subject, cb=answer)
    await bus.sync(nc)


async def test_each_callback_gets_the_reply_to_its_own_request(nc: Client) -> None:
    await echo(nc, "svc.echo")
    inbox = Inbox(nc)
    got: dict[int, bytes | None] = {}
    done = asyncio.Event()

    def handler(n: int) -> OnReply:
        async def on_reply(msg: Msg | None) -> None:
            got[n] = None if msg is None else msg.data
            if len(got) == 20:
                done.set()

        return on_reply

    for n in range(20):
        await inbox.send("svc.echo", b"%d" % n, 2.0, handler(n))
    await asyncio.wait_for(done.wait(), 2)
    assert got == {n: b"re:%d" % n for n in range(20)}
    assert await inbox.request("svc.echo", b"x", 2.0) is not None  # futures and callbacks mix


async def test_a_request_nobody_answers_calls_back_with_none_after_its_timeout(
    nc: Client,
) -> None:
    async def never_answer(msg: Msg) -> None:
        return None

    await nc.subscribe("svc.silent", cb=never_answer)
    await bus.sync(nc)
    inbox = Inbox(nc)
    loop = asyncio.get_running_loop()
    came: asyncio.Future[tuple[Msg | None, float]] = loop.create_future()

    async def on_reply(msg: Msg | None) -> None:
        came.set_result((msg, loop.time()))

    start = loop.time()
    await inbox.send("svc.silent", b"?", 0.2, on_reply)
    msg, at = await asyncio.wait_for(came, 2)
    assert msg is None
    assert 0.15 < at - start < 1.0


async def test_a_request_that_cannot_be_published_raises_and_never_calls_back(
    nc: Client,
) -> None:
    inbox = Inbox(nc)
    calls: list[Msg | None] = []

    async def on_reply(msg: Msg | None) -> None:
        calls.append(msg)

    await nc.close()
    with pytest.raises(nats.errors.ConnectionClosedError):
        await inbox.send("svc.none", b"?", 0.1, on_reply)
    await asyncio.sleep(0.2)
    assert calls == []


async def test_a_reply_to_a_given_subject_reaches_its_callback_and_whoever_else_listens(
    nc: Client,
) -> None:
    await echo(nc, "svc.echo")
    inbox = Inbox(nc, given="_INBOX.*.*.copy.me")
    other = await nc.subscribe("_INBOX.other.1.>")
    await nc.subscribe("svc.silent")  # takes requests, never answers
    await bus.sync(nc)
    loop = asyncio.get_running_loop()
    got: list[Msg | None] = []
    done = asyncio.Event()

    async def on_reply(msg: Msg | None) -> None:
        got.append(msg)
        done.set()

    await inbox.send("svc.echo", b"a", 2.0, on_reply, reply="_INBOX.other.1.copy.me")
    await inbox.send("svc.silent", b"b", 0.2, on_reply, reply="_INBOX.other.2.copy.me")
    heard = await other.next_msg(timeout=2)
    assert (heard.subject, heard.data) == ("_INBOX.other.1.copy.me", b"re:a")
    await asyncio.wait_for(done.wait(), 2)
    start = loop.time()
    done.clear()
    await asyncio.wait_for(done.wait(), 2)  # the unanswered one times out alone
    assert [None if m is None else m.data for m in got] == [b"re:a", None]
    assert loop.time() - start < 1.0


async def test_a_listener_hears_every_message_to_its_reply_subject_and_below_until_forgotten(
    nc: Client,
) -> None:
    inbox = Inbox(nc)
    await inbox.start()
    heard: list[tuple[bytes, str]] = []

    async def listener(msg: Msg, rest: str) -> None:
        heard.append((msg.data, rest))

    reply = inbox.listen(listener)
    await nc.publish(reply, b"beat")
    await nc.publish(f"{reply}.stored.m1", b"ack")
    await nc.publish(reply, b"answer")
    await bus.sync(nc)
    await asyncio.sleep(0.05)
    inbox.forget(reply)
    await nc.publish(reply, b"late")
    await bus.sync(nc)
    await asyncio.sleep(0.05)
    assert heard == [(b"beat", ""), (b"ack", "stored.m1"), (b"answer", "")]


async def test_a_mailbox_gets_messages_sent_to_it_whatever_their_subject(nc: Client) -> None:
    js = nc.jetstream()
    await js.add_stream(name="MB", subjects=["mb.>"])
    await js.publish("mb.a", b"one")
    await js.add_consumer("MB", durable_name="c")
    got: list[Msg] = []
    came = asyncio.Event()

    async def on_msg(msg: Msg) -> None:
        got.append(msg)
        came.set()

    mailbox = await Inbox(nc).mailbox(on_msg)
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.MB.c", b'{"batch":1}', reply=mailbox.subject)
    await asyncio.wait_for(came.wait(), 2)
    await mailbox.close()
    assert [(m.subject, m.data) for m in got] == [("mb.a", b"one")]
