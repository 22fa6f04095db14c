"""Every error answer is one line of text; no stack trace ever reaches a client."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger(__name__)


def error(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    """A one-line ``text/plain`` error answer."""
    return web.Response(
        status=status, text=reason.splitlines()[0] + "\n" if reason else "\n", headers=headers
    )


@web.middleware
async def one_line_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's HTTP errors and any unexpected exception into one-line answers."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        if e.status == 404:
            return error(404, f"not found: {request.path}")
        if e.status == 405:
            return error(
                405,
                f"method {request.method} not allowed on {request.path}",
                headers={"Allow": e.headers.get("Allow", "")},
            )
        return error(e.status, e.text or e.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error(500, "internal error")
