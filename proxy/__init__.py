"""The HTTP edge: ``curl :3000`` plays a game through NATS."""

from proxy.app import create_app, serve

__all__ = ["create_app", "serve"]
