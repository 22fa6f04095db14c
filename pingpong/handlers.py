"""Typed handler seams, and the NATS micro error contract every service keeps.

A handler reads as its contract: a request model in, the reply out as bytes from one
named encoder (``async def swing(self, swing: Swing) -> bytes``, written by
``pingpong.wire`` or an encoder of the service). :func:`endpoint` wires such a handler
to a NATS micro endpoint (the players); :func:`responder` one that takes no request to a
plain subscription (``scores.get``). A request that is not its model is answered 400
with the micro error headers (``Nats-Service-Error``, ``Nats-Service-Error-Code``),
logged once, and the service serves on. A requester reads such an answer with
:func:`raise_for_error`: nats-py's ``request()`` returns it as if it were an answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Generic

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.micro.request import ERROR_CODE_HEADER, ERROR_HEADER, Request

from pingpong.errors import BadMessageError, RemoteError
from pingpong.messages import M, decode

log = logging.getLogger(__name__)

__all__ = [
    "Decoder",
    "endpoint",
    "raise_for_error",
    "respond_error",
    "respond_error_to",
    "responder",
]


def raise_for_error(msg: Msg) -> Msg:
    """Raise :class:`RemoteError` if ``msg`` carries ``Nats-Service-Error`` headers."""
    headers = msg.headers
    if headers and ERROR_CODE_HEADER in headers:
        code = headers[ERROR_CODE_HEADER]
        raise RemoteError(int(code) if code.isdigit() else 500, headers.get(ERROR_HEADER, ""))
    return msg


async def respond_error(msg: Msg, code: int, description: str) -> None:
    """Answer a request with ``Nats-Service-Error`` headers, as nats micro does."""
    if msg.reply:
        await respond_error_to(msg._client, msg.reply, code, description)


async def respond_error_to(nc: Client, reply: str, code: int, description: str) -> None:
    """Answer the request whose reply subject is ``reply`` with an error, as nats micro does."""
    headers = {ERROR_HEADER: description, ERROR_CODE_HEADER: str(code)}
    await nc.publish(reply, b"", headers=headers)


def endpoint(
    model: type[M], handle: Callable[[M], Awaitable[bytes]]
) -> Callable[[Request], Awaitable[None]]:
    """A NATS micro handler: the request read as ``model``, answered with what ``handle``
    gives; a malformed request is logged once and answered 400."""

    async def on_request(request: Request) -> None:
        try:
            message = decode(model, request.data)
        except BadMessageError as e:
            log.warning("rejected a request: %s", e)
            await request.respond_error("400", str(e))
            return
        await request.respond(await handle(message))

    return on_request


def responder(handle: Callable[[], bytes]) -> Callable[[Msg], Awaitable[None]]:
    """A subscription callback that answers every request with what ``handle`` gives."""

    async def on_request(msg: Msg) -> None:
        if msg.reply:
            await msg.respond(handle())

    return on_request


class Decoder(Generic[M]):
    """``decode(model, data)`` that remembers the last payloads it read: a payload that
    repeats (a player's reply, the proxy's request) is validated once."""

    def __init__(self, model: type[M], size: int) -> None:
        self.model = model
        self.size = size
        self._seen: dict[bytes, M] = {}

    def __call__(self, data: bytes) -> M:
        """``data`` as the model; raises :class:`BadMessageError` with one line."""
        message = self._seen.get(data)
        if message is None:
            message = decode(self.model, data)
            if len(self._seen) >= self.size:
                self._seen.clear()
            self._seen[data] = message
        return message
