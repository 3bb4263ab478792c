"""A private stack (Kafka + ClickHouse) for the fault tests.

The fault tests stop and restart the broker and the database; doing that to the shared
test stack would break whatever other tests run at the same time, so these get their own
state folder and ports (the jars and the sentiment model are shared).
"""
from __future__ import annotations

import os

import pytest

from tests.fixtures.streams import REPO

FAULT_ENV = {
    "YUQING_STATE_DIR": str(REPO / ".yuqing" / "fault-stack"),
    "YUQING_KAFKA_PORT": "19492",
    "YUQING_KAFKA_CONTROLLER_PORT": "19493",
    "YUQING_CLICKHOUSE_PORT": "19500",
    "YUQING_CLICKHOUSE_HTTP_PORT": "18523",
    "YUQING_PROMETHEUS_PORT": "19490",
    "YUQING_ALERTMANAGER_PORT": "19495",
    "YUQING_METRICS_JOB_PORT": "19501",
    "YUQING_METRICS_JOB_UDF_PORT": "19505",
    "YUQING_METRICS_CRAWLER_PORT": "19502",
    "YUQING_METRICS_SINK_PORT": "19503",
    "YUQING_METRICS_NOTIFY_PORT": "19504",
    "YUQING_METRICS_REPORT_SERVER_PORT": "18480",
}
COMPONENTS = ["kafka", "clickhouse"]


@pytest.fixture(scope="session")
def fault_stack():
    """Settings of a running private Kafka + ClickHouse; stopped at the end of the session."""
    from core.config import load_settings
    from yuqing.stack import manager

    settings = load_settings(env={**os.environ, **FAULT_ENV})
    manager.up(settings, COMPONENTS, on_progress=lambda message: None)
    yield settings
    if os.environ.get("YUQING_TEST_KEEP_STACK") != "1":
        manager.down(settings, COMPONENTS, on_progress=lambda message: None)
