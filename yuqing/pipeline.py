"""The application processes of a running pipeline (beside the stack's services).

`yuqing run`, the end-to-end test and the benchmark all start the same processes the
same way: the scoring job, the ClickHouse sink, the notifier, the report server and a
crawler. Each runs as `python -m yuqing ...` in its own session with a log file, so a
stop can take down its whole process tree (the job's JVM included).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.config import Settings
from yuqing.stack.process import PidRecord, spawn, terminate


@dataclass
class AppProcess:
    name: str
    command: list[str]
    record: PidRecord | None = None
    log: Path | None = None

    def alive(self) -> bool:
        return self.record is not None and self.record.alive()


@dataclass
class Pipeline:
    settings: Settings
    run_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: list[AppProcess] = field(default_factory=list)

    def start(self, name: str, *args: str) -> AppProcess:
        command = [sys.executable, "-m", "yuqing", *args]
        log = self.run_dir / "logs" / f"{name}.log"
        env = child_env(self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        process = AppProcess(name, command, spawn(command, log, env=env), log)
        self.processes.append(process)
        return process

    def get(self, name: str) -> AppProcess:
        for process in self.processes:
            if process.name == name:
                return process
        raise KeyError(name)

    def check(self) -> list[str]:
        """Names of processes that died (with the last line of their log)."""
        dead = []
        for process in self.processes:
            if not process.alive():
                dead.append(f"{process.name} exited; last log line: {last_line(process.log)}")
        return dead

    def stop(self, name: str | None = None, timeout_s: float = 20.0) -> None:
        for process in reversed(self.processes):
            if (name is None or process.name == name) and process.record is not None:
                terminate(process.record, timeout_s=timeout_s)
        if name is None:
            self.processes.clear()
        else:
            self.processes = [p for p in self.processes if p.name != name]


# Variables PyFlink sets for its own workers and gateway: a process that inherited them from
# a parent that ran a Flink job in-process would refuse to start its own gateway.
PYFLINK_PRIVATE_ENV = ("PYFLINK_GATEWAY_DISABLED", "PYFLINK_GATEWAY_PORT", "_PYFLINK_CONN_INFO_PATH",
                       "_python_worker_execution_mode")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PYFLINK_PRIVATE_ENV}
    env.update(extra or {})
    return env


def last_line(path: Path | None) -> str:
    if path is None or not path.exists():
        return "(no log)"
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 4096))
        lines = [l for l in handle.read().decode("utf-8", "replace").splitlines() if l.strip()]
    return lines[-1][:300] if lines else "(empty log)"


def wait_http(url: str, timeout_s: float = 30.0) -> bool:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status < 500:
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False
