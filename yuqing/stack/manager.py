"""`yuqing stack up | down | status`: the local single-node stack under one state folder.

`up` is idempotent: a component whose pid file names a live process that answers its
health check is left alone. Any failure stops what this `up` started, so a failed
`up` never leaves a silent partial stack.
"""
from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from core.config import Settings
from yuqing.stack.components import (
    COMPONENTS,
    FLINK_COMPONENTS,
    Component,
    StackError,
    flink_cluster_ready,
)
from yuqing.stack.process import PidFile, port_in_use, spawn, terminate


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: str  # running | stopped | unhealthy | stale
    pid: int | None
    address: str

    @property
    def healthy(self) -> bool:
        return self.state == "running"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pid_file(settings: Settings, component: Component) -> PidFile:
    return PidFile(settings.state_dir / "run" / f"{component.name}.pid")


def log_path(settings: Settings, component: Component):
    return settings.state_dir / "logs" / f"{component.name}.log"


def select(names: Iterable[str] | None, flink: bool = False) -> list[Component]:
    """Named components (`flink` names the whole Flink cluster), or the default set plus,
    with `flink`, the Flink cluster."""
    if not names:
        return list(COMPONENTS) + (list(FLINK_COMPONENTS) if flink else [])
    by_name = {c.name: c for c in COMPONENTS + FLINK_COMPONENTS}
    unknown = [n for n in names if n not in by_name and n != "flink"]
    if unknown:
        raise StackError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(by_name)}, flink")
    chosen: list[Component] = []
    for n in names:
        for c in (FLINK_COMPONENTS if n == "flink" else (by_name[n],)):
            if c not in chosen:
                chosen.append(c)
    return chosen


def flink_started(settings: Settings) -> bool:
    """Whether `up --flink-cluster` left pid files (so `status` and `down` include it)."""
    return any(pid_file(settings, c).path.exists() for c in FLINK_COMPONENTS)


def component_status(settings: Settings, component: Component) -> ComponentStatus:
    record = pid_file(settings, component).read()
    address = component.address(settings)
    if record is None:
        return ComponentStatus(component.name, "stopped", None, address)
    if not record.alive():
        return ComponentStatus(component.name, "stale", record.pid, address)
    state = "running" if component.healthy(settings) else "unhealthy"
    return ComponentStatus(component.name, state, record.pid, address)


def status(settings: Settings, names: Iterable[str] | None = None, flink: bool = False) -> list[ComponentStatus]:
    return [component_status(settings, c) for c in select(names, flink or flink_started(settings))]


def _wait_healthy(settings: Settings, component: Component, record, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not record.alive():
            tail = _log_tail(settings, component)
            raise StackError(
                f"{component.name} exited during start-up; see {log_path(settings, component)}"
                + (f": {tail}" if tail else "")
            )
        if component.healthy(settings):
            return
        time.sleep(0.25)
    raise StackError(
        f"{component.name} did not become healthy within {timeout_s:.0f} s; "
        f"see {log_path(settings, component)} (raise its timeout with --timeout if the machine is slow)"
    )


def _log_tail(settings: Settings, component: Component) -> str:
    path = log_path(settings, component)
    try:
        lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except FileNotFoundError:
        return ""
    return lines[-1][:300] if lines else ""


def _start(settings: Settings, component: Component, timeout_s: float | None,
           on_progress: Callable[[str], None] = _say) -> bool:
    """Start one component; False if it was already running and healthy."""
    pids = pid_file(settings, component)
    record = pids.read()
    if record is not None and record.alive():
        if component.healthy(settings):
            return False
        # ours but not answering: give it its normal start-up time, then fail clearly
        _wait_healthy(settings, component, record, timeout_s or component.health_timeout_s)
        return False
    if record is not None:
        on_progress(f"  {component.name}: removing stale pid file (pid {record.pid} is gone; left by a crash?)")
        pids.remove()
    for key, port in component.ports(settings):
        if port_in_use(settings.kafka.host if key.startswith("kafka") else "127.0.0.1", port):
            env_name = "YUQING_" + key.replace(".", "_").upper()
            raise StackError(
                f"port {port} ({key}) is already in use by another process: stop it, or choose another port with {env_name}=..."
            )
    component.prepare(settings)
    record = spawn(component.command(settings), log_path(settings, component), env=component.process_env(settings),
                   cwd=settings.state_dir)
    pids.write(record)
    try:
        _wait_healthy(settings, component, record, timeout_s or component.health_timeout_s)
    except StackError:
        terminate(record)
        pids.remove()
        raise
    return True


def up(settings: Settings, names: Iterable[str] | None = None, timeout_s: float | None = None,
       on_progress: Callable[[str], None] = _say, flink: bool = False) -> list[ComponentStatus]:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    started: list[Component] = []
    chosen = select(names, flink)
    try:
        for component in chosen:
            t0 = time.monotonic()
            if _start(settings, component, timeout_s, on_progress):
                started.append(component)
                on_progress(f"  {component.name}: started in {time.monotonic() - t0:.1f} s at {component.address(settings)}")
            else:
                on_progress(f"  {component.name}: already running at {component.address(settings)}")
            if component.name == "kafka":
                from yuqing.stack.kafka_admin import ensure_topics

                created = ensure_topics(settings)
                if created:
                    on_progress(f"  kafka: created topics {', '.join(created)}")
        if any(c in FLINK_COMPONENTS for c in chosen):
            _wait_flink_slots(settings, timeout_s or FLINK_COMPONENTS[0].health_timeout_s)
    except BaseException:
        for component in reversed(started):
            record = pid_file(settings, component).read()
            if record:
                terminate(record)
            pid_file(settings, component).remove()
        raise
    return status(settings, names, flink)


def _wait_flink_slots(settings: Settings, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not flink_cluster_ready(settings):
        if time.monotonic() > deadline:
            raise StackError(f"the Flink cluster at {settings.flink.url} does not show every TaskManager and slot "
                             f"after {timeout_s:.0f} s; see {settings.state_dir / 'logs'}")
        time.sleep(0.5)


def down(settings: Settings, names: Iterable[str] | None = None, purge: bool = False,
         on_progress: Callable[[str], None] = _say) -> None:
    for component in reversed(select(names, flink_started(settings))):
        pids = pid_file(settings, component)
        record = pids.read()
        if record is None:
            on_progress(f"  {component.name}: not running")
        elif terminate(record):
            on_progress(f"  {component.name}: stopped (pid {record.pid})")
        else:
            on_progress(f"  {component.name}: was not running (stale pid file removed)")
        pids.remove()
        if purge:
            shutil.rmtree(settings.state_dir / component.name, ignore_errors=True)
            if component in FLINK_COMPONENTS:
                shutil.rmtree(settings.state_dir / "flink-cluster", ignore_errors=True)
    if purge and not names:
        for sub in ("run", "logs", "tmp", "flink-cluster"):
            shutil.rmtree(settings.state_dir / sub, ignore_errors=True)
        on_progress(f"  purged data under {settings.state_dir} (downloaded jars and models kept)")
