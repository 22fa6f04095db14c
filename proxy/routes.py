"""URL table of the proxy."""

from __future__ import annotations

from aiohttp import web

from proxy import views
from proxy.keys import METRICS
from proxy.scores import setup_scores


def setup_routes(app: web.Application) -> None:
    """Add every route; other paths are 404, other methods 405."""
    app.router.add_get("/", views.play)
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/metrics", app[METRICS].view)
    setup_scores(app)
