"""Processes under test: the installed `search` executable, the servers it starts, and what a run leaves behind."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

SEARCH = str(Path(sys.executable).with_name("search"))  # the installed console script of this venv


def descendants(pid: int) -> list[int]:
    """The processes under `pid` (children, their children...)."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_alone(process: subprocess.Popen, *, timeout: float) -> tuple[list[int], list[int]]:
    """SIGKILL `process` alone, as a lost parent, not its descendants: (the processes below it when it was
    killed, those of them still running `timeout` seconds later)."""
    below = descendants(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return below, outliving(below, timeout)


def outliving(pids: list[int], timeout: float) -> list[int]:
    """Those of `pids` still running after up to `timeout` seconds of waiting for them all to end."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its reaper)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextmanager
def search_server(*args: str, port: int, timeout: float = 60.0) -> Iterator[subprocess.Popen[str]]:
    """`search ARGS --port PORT` (the dashboard, the gRPC proxy) in a subprocess, once it listens on the port;
    terminated on the way out (read its output with `communicate()` after the block)."""
    process = subprocess.Popen(
        [SEARCH, *args, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, (
                f"search {args[0]} exited early ({process.returncode}): {process.communicate()}"
            )
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, f"search {args[0]} did not listen on {port} within {timeout:g} s"
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def cli_rejection(argv: list[str]) -> str | None:
    """Why the CLI's own parser (typer's click) rejects `search ARGV...`, or None when it parses: types,
    required options and values checked, nothing run."""
    import typer

    from search.cli.app import app

    command = typer.main.get_command(app).commands.get(argv[1])
    if command is None:
        return f"search has no command {argv[1]!r}"
    try:
        with command.make_context(argv[1], argv[2:]) as context:
            assert context.params  # parsed, not run
    except typer.TyperException as error:  # typer's (vendored) click usage errors derive from it
        return f"`{' '.join(argv)}` is rejected by the CLI: {error}"
    return None


def one_error_line(result: subprocess.CompletedProcess[str] | object) -> str:
    """The single `error: ...` line a failed command printed, checking it printed nothing else on stderr."""
    stderr = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]
