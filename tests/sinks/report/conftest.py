"""A fresh, migrated ClickHouse database on the real test stack (dropped afterwards)."""
from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from sinks.clickhouse.client import connect
from sinks.clickhouse.migrate import migrate


@pytest.fixture
def report_db(clickhouse_settings):
    ch = replace(clickhouse_settings.clickhouse, database=f"yq_report_{uuid.uuid4().hex[:10]}")
    client = connect(ch)
    try:
        migrate(client, ch)
        yield replace(clickhouse_settings, clickhouse=ch)
    finally:
        client.execute(f"DROP DATABASE IF EXISTS {ch.database}")
        client.disconnect()
