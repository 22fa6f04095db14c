"""``pingpong up`` end to end: real child processes, real nats-server, real HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import aiohttp
import nats.errors
import pytest
from nats.aio.client import Client

from tests.natsserver import free_port


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def start_up(
    port: int,
    nats_port: int | None = None,
    *flags: str,
    stderr: int = asyncio.subprocess.STDOUT,
) -> asyncio.subprocess.Process:
    """``pingpong up`` on ``port`` (HTTP) and ``nats_port`` (or a free one)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pingpong",
        "up",
        "--port",
        str(port),
        "--nats-port",
        str(nats_port or free_port()),
        *flags,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )


async def printed_command_output(command: str, seconds: float) -> str:
    """What a command ``up`` printed writes in ``seconds``, run as a user would paste it."""
    proc = await asyncio.create_subprocess_shell(
        command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    await asyncio.sleep(seconds)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, to the shell and what it runs
    out, _ = await asyncio.wait_for(proc.communicate(), 15)
    return out.decode()


async def test_up_starts_everything_plays_and_stops_cleanly_on_sigterm() -> None:
    port, nats_port = free_port(), free_port()
    proc = await start_up(port, nats_port, "--hit-chance", "100")
    assert proc.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(30):
            async for raw in proc.stdout:
                output.append(raw.decode().rstrip())
                if "micro ls" in output[-1]:  # the last line up prints once ready
                    break
        assert any("ready: curl" in line for line in output), output
        pids = [int(p) for line in output for p in re.findall(r"started \S+ \(pid (\d+)\)", line)]
        assert len(pids) == 9  # nats, 2 ping, 2 pong, 2 managers, scoreboard, proxy
        async with aiohttp.ClientSession() as http:
            text = ""
            async with asyncio.timeout(20):
                while "DRAW" not in text:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/") as r:
                            text = await r.text()
                    except aiohttp.ClientConnectionError:
                        pass
                    await asyncio.sleep(0.1)
            # 99 rounds of a PING and a PONG swing, as the original
            assert text.splitlines() == ["PING --> HIT", "PONG --> HIT"] * 99 + ["DRAW"]
            async with http.get(f"http://127.0.0.1:{port}/?max_rounds=1") as r:
                assert await r.text() == "PING --> HIT\nPONG --> HIT\nDRAW\n"
            # the watch command up printed works as written, with no password
            watch = next(ln.split("| ", 1)[1].strip() for ln in output if "pingpong watch" in ln)
            watching = asyncio.ensure_future(printed_command_output(watch, 4))
            await asyncio.sleep(2)
            async with http.get(f"http://127.0.0.1:{port}/") as r:
                game_id = r.headers["X-Game-Id"]
            assert f"{game_id} finished  DRAW after 198 strokes" in await watching
        anonymous = Client()  # users per role are on, and anonymous is the watcher
        await anonymous.connect(
            f"nats://127.0.0.1:{nats_port}", allow_reconnect=False, max_reconnect_attempts=0
        )
        await anonymous.close()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            rest = (await proc.stdout.read()).decode()
            code = await proc.wait()
        assert code == 0, rest
        assert "all stopped" in rest
        assert not [p for p in pids if alive(p)]
    finally:
        if proc.returncode is None:
            proc.kill()  # its children die with it (PR_SET_PDEATHSIG)
            await proc.wait()


async def test_up_refuses_a_port_in_use_with_one_line() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        proc = await start_up(port, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 1
        assert err.decode().strip() == (
            f"pingpong: port {port} (HTTP) is already in use; pick another with --port"
        )
    finally:
        server.close()


async def test_up_with_no_anonymous_refuses_a_connection_without_credentials() -> None:
    port, nats_port = free_port(), free_port()
    proc = await start_up(port, nats_port, "--no-anonymous")
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            async for raw in proc.stdout:
                if "ready: curl" in raw.decode():
                    break
        anonymous = Client()
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await anonymous.connect(
                f"nats://127.0.0.1:{nats_port}", allow_reconnect=False, max_reconnect_attempts=0
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)


async def test_the_services_of_up_stop_when_up_is_killed() -> None:
    port = free_port()
    proc = await start_up(port)
    assert proc.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(30):
            async for raw in proc.stdout:
                output.append(raw.decode())
                if "ready: curl" in output[-1]:
                    break
        pids = [int(p) for line in output for p in re.findall(r"started \S+ \(pid (\d+)\)", line)]
        assert len(pids) == 9
    finally:
        proc.kill()  # no chance to stop its children in order
        await proc.wait()
    async with asyncio.timeout(20):
        while [p for p in pids if alive(p)]:
            await asyncio.sleep(0.2)
