"""Logging with the instance id on every line, as text or JSON (``LOG_FORMAT``)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Literal

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class _InstanceFilter(logging.Filter):
    def __init__(self, instance: str) -> None:
        super().__init__()
        self.instance = instance

    def filter(self, record: logging.LogRecord) -> bool:
        record.instance = self.instance
        return True


class TextFormatter(logging.Formatter):
    """``time level instance logger: message [key=value ...]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(instance)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = {k: v for k, v in record.__dict__.items() if k not in _RESERVED and k != "instance"}
        if extra:
            line += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, instance, logger, message and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "instance": getattr(record, "instance", None),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(
    instance: str, level: str = "INFO", fmt: Literal["text", "json"] = "text"
) -> None:
    """Send every log line to stderr with ``instance`` on it; call once, in ``main``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_InstanceFilter(instance))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
