"""The edge: one-line errors (never a stack trace), security headers, limits."""

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


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # the page loads its own script and style only; /events and /scores.json are same-origin
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'",
}
"""Sent with every answer."""

MAX_LINE = 4096
"""Bytes of the request line and of one header (aiohttp answers 400 past them)."""

MAX_HEADERS = 64
"""Request headers accepted."""

MAX_BODY = 16 * 1024
"""Bytes of request body accepted (every route is a GET)."""


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the security headers on every answer."""
    response.headers.update(SECURITY_HEADERS)
