"""Pid files and detached processes for the local stack.

A pid file records the pid and the process start time (from /proc), so that a pid
reused by an unrelated process after a crash is never mistaken for ours.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def _proc_start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # field 22 (starttime) counted after the parenthesised command name
    after = stat.rsplit(")", 1)[1].split()
    return int(after[19])


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_ticks: int
    command: list[str]

    def alive(self) -> bool:
        return _proc_start_ticks(self.pid) == self.start_ticks and not _is_zombie(self.pid)


class PidFile:
    def __init__(self, path: Path):
        self.path = path

    def read(self) -> PidRecord | None:
        try:
            data = json.loads(self.path.read_text())
            return PidRecord(int(data["pid"]), int(data["start_ticks"]), list(data["command"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return PidRecord(-1, -1, [])  # unreadable: treated as stale

    def write(self, record: PidRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": record.pid, "start_ticks": record.start_ticks, "command": record.command}))
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def spawn(command: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> PidRecord:
    """Start a process in its own session (so a stop can signal its whole group)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    ticks = None
    for _ in range(50):
        ticks = _proc_start_ticks(proc.pid)
        if ticks is not None:
            break
        time.sleep(0.01)
    return PidRecord(proc.pid, ticks or -1, command)


def terminate(record: PidRecord, timeout_s: float = 15.0) -> bool:
    """SIGTERM the process group, then SIGKILL after the timeout. True if it had been running."""
    if not record.alive():
        return False
    try:
        os.killpg(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    except PermissionError:
        os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not record.alive():
            return True
        time.sleep(0.1)
    try:
        os.killpg(record.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for _ in range(50):
        _reap(record.pid)
        if not record.alive():
            break
        time.sleep(0.1)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def tcp_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
