"""The early answer of ``game.play`` (``Pingpong-Early``): one protocol, both sides import it.

A game is answered only once its result is in the event log. Waiting for the stream's
ack and then answering costs a NATS hop, so a requester may ask for the game early:

1. The requester (the proxy) asks with :data:`ASK` from a reply subject of the inbox's
   shape (:func:`takes_early`) and listens on everything below it (``<reply>.>``).
2. The manager plays the game and publishes its ``finished`` event to the log with the
   reply subject :func:`stored_subject` (``<reply>.stored.<manager>``), then answers the
   game at once with :data:`ANSWER`. The stream's ack goes to both: the requester hears
   it below its reply subject (:func:`is_stored_ack`), the manager on :func:`stored_acks`.
3. The requester hands the game on only when that ack says stored (:func:`says_stored`).
   Any other ack (or none) is the manager's to deal with: it stores the event again and
   answers again, as without the header (the game, or the 503).

A request without the header, or from a reply subject of another shape, is answered
once, after its result is stored.
"""

from __future__ import annotations

from typing import Final

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg

from pingpong.eventlog import stored_sequence
from pingpong.inbox import REPLY_SHAPE

__all__ = [
    "ANSWER",
    "ASK",
    "HEADER",
    "is_early_answer",
    "is_stored_ack",
    "says_stored",
    "stored_acks",
    "stored_subject",
    "takes_early",
]

HEADER: Final = "Pingpong-Early"
"""Request header of ``game.play`` (opt-in), and the header of the early answer."""

ASK: Final = {HEADER: "1"}
"""The header of a request that asks for the game early."""

ANSWER: Final = {HEADER: "1"}
"""The header of an early answer: the game, before the stream has acked it."""

STORED: Final = "stored"
"""The token after a reply subject that marks the stream's ack of an early answer."""

_PREFIX, _DOTS = REPLY_SHAPE.split(".", 1)[0] + ".", REPLY_SHAPE.count(".")


def takes_early(reply: str | None) -> bool:
    """True if ``reply`` has the shape an early answer needs (:data:`REPLY_SHAPE`, which
    :func:`stored_acks` matches with ``.stored.<manager>`` after it)."""
    return reply is not None and reply.startswith(_PREFIX) and reply.count(".") == _DOTS


def stored_subject(reply: str, manager: str) -> str:
    """Where the event log acks an early-answered game, so both the requester (on
    ``<reply>.>``) and the manager that played it (on :func:`stored_acks`) hear it."""
    return f"{reply}.{STORED}.{manager}"


def stored_acks(manager: str) -> str:
    """What a manager subscribes to for the acks of its early-answered games."""
    return f"{REPLY_SHAPE}.{STORED}.{manager}"


def is_stored_ack(rest: str) -> bool:
    """True if a message to ``<reply>.<rest>`` is the stream's ack of an early answer."""
    return rest.startswith(STORED + ".")


def is_early_answer(msg: Msg) -> bool:
    """True if ``msg`` is an early answer (the game, not yet acked as stored)."""
    return msg.headers is not None and HEADER in msg.headers


def says_stored(ack: Msg) -> bool:
    """True if the stream's ack says the message is stored (a duplicate included)."""
    try:
        stored_sequence(ack)
    except (nats.errors.Error, nats.js.errors.APIError):
        return False
    return True
