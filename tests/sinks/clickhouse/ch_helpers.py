"""Helpers shared by the ClickHouse tests (imported by conftest and the test modules)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path

from sinks.clickhouse.client import connect
from sinks.clickhouse.migrate import migrate
from sinks.clickhouse.server_config import write_server_files


def with_database(settings, database: str):
    return replace(settings, clickhouse=replace(settings.clickhouse, database=database))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnServer:
    """A clickhouse-server of our own (rendered by server_config), to stop and start at will."""

    def __init__(self, settings, root: Path):
        self.settings = settings
        self.root = root
        self.config = write_server_files(settings, root, root / "data", root / "log")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> None:
        self.proc = subprocess.Popen(
            ["clickhouse-server", f"--config-file={self.config}"], cwd=self.root,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                client = connect(self.settings.clickhouse)
                client.execute("SELECT 1")
                client.disconnect()
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("own clickhouse-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


def produce(bootstrap: str, topic: str, records: list, keys: list | None = None) -> None:
    """Send records (dicts become JSON, bytes go as they are) and wait for the acks."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=15000, max_block_ms=15000,
                             acks="all", linger_ms=5)
    for i, rec in enumerate(records):
        value = rec if isinstance(rec, bytes) else json.dumps(rec, ensure_ascii=False).encode()
        key = keys[i].encode() if keys else None
        producer.send(topic, value=value, key=key)
    producer.flush(timeout=15)
    producer.close(timeout=5)


def scored_post(i: int, *, hour: int = 10, brand: str = "快送", category: str = "outage",
                author: str | None = None, followers: int = 100, negative: bool = True, prefix: str = "t") -> dict:
    return {
        "id": f"{prefix}:{i}", "platform": "weibo", "text": f"帖子 {i}", "lang": "zh",
        "published_at": f"2026-11-25T{hour:02d}:{i % 60:02d}:00+08:00",
        "ingested_at": "2026-11-25T12:00:00+08:00",
        "author_id": author or f"u{i}", "author_name": "n", "author_kind": "user",
        "followers": followers, "verified": False, "reposts": 0, "comments": 0, "likes": 0, "views": 0,
        "sentiment": 0.1 if negative else 0.9, "negative": negative,
        "brands": [brand], "categories": [category], "matches": [{"brand": brand, "category": category}],
    }


def count(settings, sql: str, params: dict | None = None):
    client = connect(settings.clickhouse, database=settings.clickhouse.database)
    try:
        return client.execute(sql, params)[0][0] if params else client.execute(sql)[0][0]
    finally:
        client.disconnect()


def migrate_db(settings) -> None:
    """Apply the migrations to `settings.clickhouse` (e.g. a test's own server, with its
    generated passwords), as `yuqing stack up` does before anything writes."""
    client = connect(settings.clickhouse)
    try:
        migrate(client, settings.clickhouse)
    finally:
        client.disconnect()


def run_yuqing(args: list[str], settings, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    ch = settings.clickhouse
    env.update(YUQING_CLICKHOUSE_PORT=str(ch.port), YUQING_CLICKHOUSE_HTTP_PORT=str(ch.http_port),
               YUQING_CLICKHOUSE_DATABASE=ch.database, YUQING_CLICKHOUSE_SECRETS_DIR=ch.secrets_dir)
    yuqing = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "yuqing"
    return subprocess.run([str(yuqing), *args], env=env, capture_output=True, text=True, timeout=60, **kw)
