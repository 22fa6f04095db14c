"""Processes of the bench (and of the tests, which import these): a free port, a
process's memory, a helper process run to its end."""

from __future__ import annotations

import asyncio
import socket
from typing import Any


async def output(*argv: str, timeout: float, what: str, **kwargs: Any) -> bytes:
    """The standard output of ``argv`` run to its end (``kwargs``: to the subprocess).

    Raises :class:`RuntimeError` with a one-line reason if it exits with a failure or
    outlasts ``timeout`` seconds (it is killed then).
    """
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, **kwargs)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        raise RuntimeError(f"{what} took over {timeout:g}s") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        last = out.decode(errors="replace").strip().splitlines()[-1:]
        reason = f": {last[0]}" if last else ""
        raise RuntimeError(f"{what} exited with status {proc.returncode}{reason}")
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
