"""A helper process of the bench, run to its end."""

from __future__ import annotations

import asyncio
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
