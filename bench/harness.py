"""The benchmark's workbench: the default stack, fresh topics and databases, the pipeline
processes, and cleaning up exactly what it made.

Every run gets a tag; its topics are `bench-<tag>-<phase>-<name>` and its ClickHouse
databases `bench_<tag>_<phase>`, so a benchmark never reads or disturbs the data of a
`make run` on the same stack. Pipeline processes are the product's own commands
(`python -m yuqing job run|sink clickhouse|notify`), pointed at the fresh topics and
database through `YUQING_*` variables, exactly as an operator would.
"""
from __future__ import annotations

import sys
import time
import urllib.request
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from core.config import Settings

TOPIC_ENV = {
    "raw": "YUQING_KAFKA_RAW_TOPIC",
    "scored": "YUQING_KAFKA_SCORED_TOPIC",
    "dlq": "YUQING_KAFKA_DLQ_TOPIC",
    "assessments": "YUQING_KAFKA_ASSESSMENTS_TOPIC",
    "alerts": "YUQING_KAFKA_ALERTS_TOPIC",
}


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def http_get(url: str, timeout_s: float = 2.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.read()
    except OSError:
        return None


def metric_sum(text: bytes | None, name: str, labels: dict[str, str] | None = None) -> float:
    """Sum of the samples of one metric in Prometheus text format (0 if absent)."""
    if not text:
        return 0.0
    total = 0.0
    for line in text.decode("utf-8", "replace").splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        if labels and not all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            continue
        total += float(value)
    return total


@dataclass
class Workbench:
    settings: Settings
    tag: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%m%d%H%M%S"))
    run_dir: Path | None = None
    started_stack: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    pipelines: list = field(default_factory=list)
    _stack_pids: tuple[float, dict[str, int]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.run_dir = self.run_dir or self.settings.state_dir / "bench" / "runs" / self.tag
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)

    @property
    def cache_dir(self) -> Path:
        return self.settings.state_dir / "bench" / "cache"

    # --- stack ------------------------------------------------------------------------
    def stack_up(self) -> None:
        from yuqing.stack import manager

        already = {s.name for s in manager.status(self.settings) if s.healthy}
        manager.up(self.settings, on_progress=say)
        self.started_stack = [c.name for c in manager.select(None) if c.name not in already]

    def stack_pids(self, max_age_s: float = 15.0) -> dict[str, int]:
        """The services' pids, re-read at most every `max_age_s`: a status call runs every
        health check (HTTP, ClickHouse, Kafka), and the samplers ask twice a second - that
        alone was 5-7% of a core, taken from what the benchmark measures."""
        from yuqing.stack import manager

        now = time.monotonic()
        if self._stack_pids is None or now - self._stack_pids[0] > max_age_s:
            # the services `yuqing stack up` / `make run` use; a Flink session cluster someone
            # left running is not part of what the bench measures
            default = {c.name for c in manager.select(None)}
            self._stack_pids = (now, {s.name: s.pid for s in manager.status(self.settings)
                                      if s.pid and s.healthy and s.name in default})
        return dict(self._stack_pids[1])

    # --- topics and databases ---------------------------------------------------------
    def make_topics(self, phase: str, raw_partitions: int) -> dict[str, str]:
        """Fresh topics for one phase; returns {role: topic name}."""
        from yuqing.stack.kafka_admin import ensure_topics

        names = {role: f"bench-{self.tag}-{phase}-{role}" for role in TOPIC_ENV}
        partitions = {"raw": raw_partitions, "scored": max(2, raw_partitions), "dlq": 1, "assessments": 1, "alerts": 1}
        ensure_topics(self.settings, {names[r]: partitions[r] for r in names})
        self.topics.extend(names.values())
        return names

    def make_database(self, phase: str) -> str:
        from sinks.clickhouse.client import connect
        from sinks.clickhouse.migrate import migrate

        name = f"bench_{self.tag}_{phase}"
        ch = replace(self.settings.clickhouse, database=name)
        client = connect(ch)
        try:
            migrate(client, ch)
        finally:
            client.disconnect()
        self.databases.append(name)
        return name

    def env(self, topics: dict[str, str], database: str | None = None) -> dict[str, str]:
        env = {TOPIC_ENV[role]: name for role, name in topics.items()}
        if database:
            env["YUQING_CLICKHOUSE_DATABASE"] = database
        return env

    def phase_settings(self, topics: dict[str, str], database: str | None = None) -> Settings:
        k = replace(self.settings.kafka, raw_topic=topics["raw"], scored_topic=topics["scored"],
                    dlq_topic=topics["dlq"], assessments_topic=topics["assessments"], alerts_topic=topics["alerts"])
        ch = replace(self.settings.clickhouse, database=database) if database else self.settings.clickhouse
        return replace(self.settings, kafka=k, clickhouse=ch)

    def pipeline(self, phase: str, env: dict[str, str]):
        from yuqing.pipeline import Pipeline

        run_dir = self.run_dir / phase
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        pipeline = Pipeline(self.settings, run_dir, env=dict(env))
        self.pipelines.append(pipeline)
        return pipeline

    def app_pids(self) -> dict[str, int]:
        out = {}
        for pipeline in self.pipelines:
            for process in pipeline.processes:
                if process.record is not None and process.alive():
                    out[process.name] = process.record.pid
        return out

    # --- cleaning up ------------------------------------------------------------------
    def close(self, keep_stack: bool = False, keep_data: bool = False) -> None:
        for pipeline in self.pipelines:
            pipeline.stop()
        if not keep_data:
            self._drop_data()
        if self.started_stack and not keep_stack:
            from yuqing.stack import manager

            say(f"stopping the services the benchmark started: {', '.join(self.started_stack)}")
            manager.down(self.settings, self.started_stack, on_progress=say)

    def _drop_data(self) -> None:
        if self.topics:
            try:
                from kafka import KafkaAdminClient

                admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka.bootstrap, request_timeout_ms=15000,
                                         client_id="yuqing-bench")
                try:
                    admin.delete_topics(self.topics, timeout_ms=15000)
                finally:
                    admin.close()
            except Exception as exc:  # cleaning up must not hide the results
                say(f"could not delete the benchmark topics: {exc}")
        if self.databases:
            from sinks.clickhouse.client import connect

            client = connect(self.settings.clickhouse)
            try:
                for name in self.databases:
                    client.execute(f"DROP DATABASE IF EXISTS {name}")
            except Exception as exc:
                say(f"could not drop the benchmark databases: {exc}")
            finally:
                client.disconnect()


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str, check: Callable[[], None] | None = None,
             interval_s: float = 0.25) -> None:
    """Poll until `predicate()`; `check()` may raise (e.g. a pipeline process died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if check:
            check()
        time.sleep(interval_s)
    raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def check_alive(pipeline, *names: str) -> Callable[[], None]:
    def check() -> None:
        for process in pipeline.processes:
            if (not names or process.name in names) and not process.alive():
                from yuqing.pipeline import last_line

                raise RuntimeError(f"{process.name} exited; see {process.log}: {last_line(process.log)}")
    return check
