"""Peak resident memory of process trees, read from /proc.

Each process reports its own peak (`VmHWM` in /proc/<pid>/status). A component is a
process tree (`python -m yuqing job run` -> its JVM; Kafka's JVM; …), so its peak is the
sum of its processes' peaks: an upper bound of the tree's simultaneous peak (the members
may peak at different moments). The sampler also records the largest simultaneous sum of
current RSS (`VmRSS`) over everything it watches, which is a lower bound of the true
simultaneous peak (it can miss a spike between two samples). Processes that exit between
samples keep the last peak read.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable

PROC = Path("/proc")


def read_status_kib(pid: int, proc: Path = PROC) -> dict[str, int] | None:
    """VmHWM and VmRSS of one process in KiB (None if it is gone or is a kernel thread)."""
    try:
        text = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0])
    return out if len(out) == 2 else None


def parent_map(proc: Path = PROC) -> dict[int, list[int]]:
    """ppid -> child pids, for every process now alive."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is parenthesised and may hold spaces: fields start after the last ")"
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree(root: int, children: dict[int, list[int]]) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


class RssSampler:
    """Samples named process trees every `interval_s` in a background thread.

    `roots()` returns {component name: root pid} and is called at every sample, so
    processes started later (or restarted) are picked up.
    """

    def __init__(self, roots: Callable[[], dict[str, int]], interval_s: float = 0.5, proc: Path = PROC):
        self.roots = roots
        self.interval_s = interval_s
        self.proc = proc
        self.hwm_kib: dict[str, dict[int, int]] = {}  # name -> pid -> peak VmHWM seen
        self.simultaneous_peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def sample(self) -> None:
        children = parent_map(self.proc)
        total = 0
        for name, root in self.roots().items():
            pids = self.hwm_kib.setdefault(name, {})
            for pid in tree(root, children):
                status = read_status_kib(pid, self.proc)
                if status is None:
                    continue
                pids[pid] = max(pids.get(pid, 0), status["VmHWM"])
                total += status["VmRSS"]
        self.simultaneous_peak_kib = max(self.simultaneous_peak_kib, total)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:  # a process vanishing mid-read must not kill the sampler
                pass
            self._stop.wait(self.interval_s)

    def start(self) -> "RssSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

    def peaks_mib(self) -> dict[str, float]:
        """Per component: the sum of its processes' peaks, MiB."""
        return {name: round(sum(pids.values()) / 1024, 1) for name, pids in self.hwm_kib.items() if pids}


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def read_cpu_s(pid: int, proc: Path = PROC) -> float | None:
    """User + system CPU seconds of one process so far (None if it is gone)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of stat); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuMeter:
    """CPU seconds used by named process trees between two marks.

    Call `sample()` often (a process that exits between two samples loses only what it
    used since the last one); `mark(name)` remembers every component's total at that
    moment, and `between(a, b)` gives each component's CPU seconds from mark a to mark b.
    """

    def __init__(self, roots: Callable[[], dict[str, int]], proc: Path = PROC):
        self.roots = roots
        self.proc = proc
        self.seen: dict[str, dict[int, float]] = {}  # component -> pid -> CPU seconds last read
        self.names: dict[int, str] = {}  # pid -> command name (python, java, ...)
        self.marks: dict[str, dict[str, float]] = {}

    def sample(self) -> None:
        children = parent_map(self.proc)
        for name, root in self.roots().items():
            pids = self.seen.setdefault(name, {})
            for pid in tree(root, children):
                cpu = read_cpu_s(pid, self.proc)
                if cpu is not None:
                    pids[pid] = max(pids.get(pid, 0.0), cpu)
                    if pid not in self.names:
                        try:
                            self.names[pid] = (self.proc / str(pid) / "comm").read_text().strip()
                        except OSError:
                            self.names[pid] = "?"

    def totals(self) -> dict[str, float]:
        """Per component, and per component/command (e.g. job/java, job/python)."""
        out: dict[str, float] = {}
        for name, pids in self.seen.items():
            out[name] = sum(pids.values())
            if len(pids) > 1:
                for pid, cpu in pids.items():
                    part = f"{name}/{self.names.get(pid, '?')}"
                    out[part] = out.get(part, 0.0) + cpu
        return out

    def mark(self, label: str) -> None:
        self.sample()
        self.marks[label] = self.totals()

    def between(self, first: str, last: str) -> dict[str, float]:
        a, b = self.marks[first], self.marks[last]
        return {name: round(b[name] - a.get(name, 0.0), 2) for name in b}


# ------------------------------------------------------------------ a full `yuqing run`

def yuqing_role(pid: int, proc: Path = PROC) -> str | None:
    """The yuqing subcommand a process runs (`python -m yuqing job run ...` -> "job")."""
    try:
        args = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    words = [a.decode("utf-8", "replace") for a in args if a]
    for i, word in enumerate(words[:-1]):
        if word == "yuqing" or word.endswith("/yuqing"):
            return words[i + 1]
    return None


def run_roots(services: Callable[[], dict[str, int]], run_pid: int, proc: Path = PROC) -> Callable[[], dict[str, int]]:
    """Roots for the sampler: the services, the `yuqing run` process itself, and each of
    its children by role (crawl, report-server, job, sink, notify)."""
    def roots() -> dict[str, int]:
        named = dict(services())
        named["run"] = run_pid
        children = parent_map(proc)
        for child in children.get(run_pid, []):
            role = yuqing_role(child, proc)
            if role:
                named[f"run:{role}"] = child
        return named
    return roots


def full_run(wb, duration_s: float = 150.0, progress=None) -> dict:
    """Every process of `yuqing run` (what `make run` starts: crawler, report server, job,
    sink, notify) and the services, sampled together while the bundled sample streams
    through them. `run` itself is sampled without its children (each child is its own
    component), so nothing is counted twice."""
    import subprocess
    import sys

    from core.config import REPO_ROOT
    from yuqing.pipeline import child_env

    topics = wb.make_topics("run", raw_partitions=3)
    database = wb.make_database("run")
    log = wb.run_dir / "logs" / "full-run.log"
    env = child_env({**wb.env(topics, database), "PYTHONUNBUFFERED": "1"})
    command = [sys.executable, "-m", "yuqing", "run", "--plain", "--keep-stack", "--hours", "2",
               "--speedup", "60", "--duration", str(int(duration_s))]
    if progress:
        progress(f"resources: `yuqing run` for {duration_s:.0f} s, every process sampled together")
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
        roots = run_roots(wb.stack_pids, process.pid)
        own = RssSampler(lambda: {k: v for k, v in roots().items() if k != "run"}).start()
        parent = _SelfOnly(process.pid)
        try:
            while process.poll() is None:
                parent.sample()
                time.sleep(0.5)
                if time.monotonic() - parent.started > duration_s + 120:
                    process.terminate()
        finally:
            own.stop()
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
    peaks = own.peaks_mib()
    peaks["run"] = round(parent.hwm_kib / 1024, 1)
    roles = {name.split(":", 1)[1] for name in peaks if name.startswith("run:")}
    missing = {"crawl", "report-server", "job", "sink", "notify"} - roles
    if process.returncode not in (0, None) or missing:
        raise RuntimeError(f"yuqing run: exit {process.returncode}, never saw {sorted(missing) or 'nothing'} "
                           f"running; see {log}")
    return {"full_run_peak_rss_mib": peaks,
            "full_run_sum_of_peaks_mib": round(sum(peaks.values()), 1),
            "full_run_simultaneous_rss_mib": round((own.simultaneous_peak_kib + parent.hwm_kib) / 1024, 1),
            "full_run_s": duration_s}


class _SelfOnly:
    """Peak RSS of one process alone (not its children)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.hwm_kib = 0
        self.started = time.monotonic()

    def sample(self) -> None:
        status = read_status_kib(self.pid)
        if status:
            self.hwm_kib = max(self.hwm_kib, status["VmHWM"])
