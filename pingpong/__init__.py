"""pingpong: a distributed ping-pong game of event-driven NATS services.

The shared core: message contracts, subjects, settings, NATS plumbing, CLI.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
