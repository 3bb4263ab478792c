"""Session fixtures that start the REAL local stack for integration tests.

The test stack has its own state folder and ports (so a `make run` stack on the default
ports is never disturbed). The YUQING_* variables are exported, so `yuqing` commands
run by tests as subprocesses talk to the same stack. Set YUQING_TEST_KEEP_STACK=1 to
leave it running after the session (faster reruns while developing).
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

TEST_ENV = {
    "YUQING_STATE_DIR": str(REPO / ".yuqing" / "test-stack"),
    "YUQING_KAFKA_PORT": "19192",
    "YUQING_KAFKA_CONTROLLER_PORT": "19193",
    "YUQING_CLICKHOUSE_PORT": "19200",
    "YUQING_CLICKHOUSE_HTTP_PORT": "18223",
    "YUQING_PROMETHEUS_PORT": "19190",
    "YUQING_ALERTMANAGER_PORT": "19195",
    "YUQING_METRICS_JOB_PORT": "19201",
    "YUQING_METRICS_JOB_UDF_PORT": "19205",
    "YUQING_METRICS_CRAWLER_PORT": "19202",
    "YUQING_METRICS_SINK_PORT": "19203",
    "YUQING_METRICS_NOTIFY_PORT": "19204",
    "YUQING_METRICS_REPORT_SERVER_PORT": "18180",
    "YUQING_REPORT_PORT": "18188",
    "YUQING_FLINK_REST_PORT": "18181",
    "YUQING_FLINK_RPC_PORT": "16223",
}
for _key, _value in TEST_ENV.items():
    os.environ.setdefault(_key, _value)


def pytest_collection_modifyitems(config, items):
    """Tests that use a stack fixture get the `services` marker (select with -m)."""
    service_fixtures = {"stack_settings", "kafka_bootstrap", "kafka_topic", "clickhouse_settings",
                        "prometheus_url", "alertmanager_url"}
    for item in items:
        if service_fixtures & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="session")
def stack_settings():
    """Settings of a running test stack (Kafka, ClickHouse, Prometheus, Alertmanager)."""
    from core.config import load_settings
    from yuqing.stack import manager

    settings = load_settings()
    already = {s.name for s in manager.status(settings) if s.healthy}
    manager.up(settings, on_progress=lambda message: None)
    yield settings
    # stop only what this session started: another session may be using the rest
    # (the Flink cluster has its own fixture: another session's may be running it now)
    started = [s.name for s in manager.status(settings) if s.name not in already and not s.name.startswith("flink")]
    if started and os.environ.get("YUQING_TEST_KEEP_STACK") != "1":
        manager.down(settings, started, on_progress=lambda message: None)


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_settings) -> str:
    return stack_settings.kafka.bootstrap


@pytest.fixture(scope="session")
def clickhouse_settings(stack_settings):
    return stack_settings


@pytest.fixture(scope="session")
def prometheus_url(stack_settings) -> str:
    return stack_settings.prometheus.url


@pytest.fixture(scope="session")
def alertmanager_url(stack_settings) -> str:
    return stack_settings.alertmanager.url


@pytest.fixture
def kafka_topic(stack_settings, request):
    """Factory: `kafka_topic(partitions=2, prefix=None) -> name` creates a fresh topic."""
    from yuqing.stack.kafka_admin import ensure_topics

    def make(partitions: int = 2, prefix: str | None = None) -> str:
        base = prefix or request.node.name.replace("[", "-").replace("]", "")[:40]
        name = f"t-{base}-{uuid.uuid4().hex[:8]}".replace("/", "-")
        ensure_topics(stack_settings, {name: partitions})
        return name

    return make
