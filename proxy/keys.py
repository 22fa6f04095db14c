"""Typed application keys shared by the proxy's modules."""

from __future__ import annotations

import asyncio

from aiohttp import web
from nats.aio.client import Client

from pingpong.settings import Settings
from proxy.games import GameClient
from proxy.live import Hub
from proxy.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
"""The settings the app was made with."""

INSTANCE = web.AppKey("instance", str)
"""This proxy's instance id."""

GAMES = web.AppKey("games", GameClient)
"""``game.play`` requests that notice a dead manager or a lost connection."""

METRICS = web.AppKey("metrics", Metrics)
"""The proxy's Prometheus metrics."""

SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)
"""Set when the app shuts down: long-lived responses (``/events``) end."""

NATS = web.AppKey("nats", Client)
"""The NATS connection (it may still be connecting: check ``is_connected``)."""

LIVE = web.AppKey("live", Hub)
"""The live feed: every ``/events`` client and the one subscription they share."""
