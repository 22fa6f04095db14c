"""Errors of the pingpong services; callers catch them by name."""

from __future__ import annotations


class PingpongError(Exception):
    """Base class of every pingpong error."""


class SettingsError(PingpongError):
    """A setting has a bad value; the message is one line that names the setting."""


class RemoteError(PingpongError):
    """A service answered with an error (``Nats-Service-Error`` headers).

    ``code`` follows HTTP: 400 bad request, 503 unavailable, 504 took too long.
    """

    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description


class BadMessageError(PingpongError):
    """A payload did not match its contract."""


class GameAbortedError(PingpongError):
    """A game could not be finished (a side never answered within its retries)."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


class UnansweredError(PingpongError):
    """A request timed out or met no responder; another replica may answer a retry.

    ``timed_out``: a player took it and did not answer in time (it may yet: a request
    asked again leaves the first one open); else it failed at once (no player serves
    the subject, or the answer was broken).
    """

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out
