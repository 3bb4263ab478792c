"""Fixtures for the ClickHouse tests: a fresh migrated database and a private server.

The shared fixtures (`clickhouse_settings`, `kafka_bootstrap`, `kafka_topic`) come from
tests/conftest.py and point at the real local test stack.
"""
from __future__ import annotations

import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # ch_helpers, for the test modules too
from ch_helpers import OwnServer, free_port, with_database  # noqa: E402

from sinks.clickhouse.client import connect
from sinks.clickhouse.migrate import migrate
from sinks.clickhouse.server_config import ensure_secrets


@pytest.fixture
def fresh_db(clickhouse_settings):
    """Settings pointing at a new, empty database; dropped afterwards."""
    settings = with_database(clickhouse_settings, f"yq_test_{uuid.uuid4().hex[:10]}")
    yield settings
    client = connect(settings.clickhouse)
    client.execute(f"DROP DATABASE IF EXISTS {settings.clickhouse.database}")
    client.disconnect()


@pytest.fixture
def migrated_db(fresh_db):
    client = connect(fresh_db.clickhouse)
    migrate(client, fresh_db.clickhouse)
    client.disconnect()
    return fresh_db


@pytest.fixture
def own_clickhouse(clickhouse_settings, tmp_path):
    """A private server on spare ports (so stopping it does not disturb the shared one)."""
    ch = replace(clickhouse_settings.clickhouse, port=free_port(), http_port=free_port(),
                 database=f"yq_own_{uuid.uuid4().hex[:8]}", password="", analyst_password="",
                 secrets_dir=str(tmp_path / "secrets"))
    settings = replace(clickhouse_settings, clickhouse=ch)
    ensure_secrets(settings)  # its own generated passwords, as `stack up` makes them
    server = OwnServer(settings, tmp_path / "ch")
    server.start()
    yield server
    server.stop()
