"""The stack comes up from nothing, is idempotent, fails clearly, and leaves nothing behind."""
from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from core.config import load_settings
from yuqing.stack import manager
from yuqing.stack.components import StackError
from yuqing.stack.process import PidFile, PidRecord, tcp_open

# Ports of their own: this test starts and stops a complete second stack.
LIFECYCLE_ENV = {
    "YUQING_KAFKA_PORT": "19392",
    "YUQING_KAFKA_CONTROLLER_PORT": "19393",
    "YUQING_CLICKHOUSE_PORT": "19400",
    "YUQING_CLICKHOUSE_HTTP_PORT": "18423",
    "YUQING_PROMETHEUS_PORT": "19390",
    "YUQING_ALERTMANAGER_PORT": "19395",
    "YUQING_METRICS_JOB_PORT": "19401",
    "YUQING_METRICS_JOB_UDF_PORT": "19405",
    "YUQING_METRICS_CRAWLER_PORT": "19402",
    "YUQING_METRICS_SINK_PORT": "19403",
    "YUQING_METRICS_NOTIFY_PORT": "19404",
    "YUQING_METRICS_REPORT_SERVER_PORT": "18380",
}


def _settings(state_dir: Path):
    env = dict(LIFECYCLE_ENV, YUQING_STATE_DIR=str(state_dir))
    return load_settings(env=env)


def _ports(settings) -> list[int]:
    return [port for c in manager.select(None) for _, port in c.ports(settings)]


@pytest.mark.slow
def test_up_from_nothing_is_healthy_idempotent_and_down_leaves_nothing(tmp_path):
    settings = _settings(tmp_path / "state")
    messages: list[str] = []
    try:
        statuses = manager.up(settings, on_progress=messages.append)
        assert [s.name for s in statuses] == ["kafka", "clickhouse", "prometheus", "alertmanager"]
        assert all(s.state == "running" for s in statuses), statuses
        assert any("created topics posts.raw" in m for m in messages)

        from yuqing.stack.kafka_admin import topic_partitions

        partitions = topic_partitions(settings)
        assert partitions["posts.raw"] >= 2
        for topic in ("posts.dlq", "risk.assessments", "alerts"):
            assert topic in partitions

        pids_before = {s.name: s.pid for s in statuses}
        messages.clear()
        again = manager.up(settings, on_progress=messages.append)
        assert {s.name: s.pid for s in again} == pids_before
        assert all("already running" in m for m in messages), messages
    finally:
        records = [manager.pid_file(settings, c).read() for c in manager.select(None)]
        manager.down(settings, on_progress=lambda m: None)
    assert all(r is not None and not r.alive() for r in records)
    assert not any(tcp_open("127.0.0.1", port) for port in _ports(settings))
    assert not list((settings.state_dir / "run").glob("*.pid"))
    # data is kept by a plain down, removed by --purge
    assert (settings.state_dir / "kafka" / "data" / "meta.properties").exists()
    manager.down(settings, purge=True, on_progress=lambda m: None)
    assert not (settings.state_dir / "kafka").exists()


def test_port_in_use_is_a_one_line_error_naming_port_and_fix(tmp_path):
    settings = _settings(tmp_path / "state")
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", settings.prometheus.port))
        squatter.listen(1)
        with pytest.raises(StackError) as info:
            manager.up(settings, ["prometheus"], on_progress=lambda m: None)
    message = str(info.value)
    assert "port 19390 (prometheus.port) is already in use" in message
    assert "YUQING_PROMETHEUS_PORT" in message and "\n" not in message
    assert manager.status(settings, ["prometheus"])[0].state == "stopped"


def test_missing_java_is_reported_with_the_fix(tmp_path, monkeypatch):
    settings = _settings(tmp_path / "state")
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    with pytest.raises(StackError, match=r"`java` not found on PATH: install a Java"):
        manager.up(settings, ["kafka"], on_progress=lambda m: None)


def test_stale_pid_file_from_a_crash_is_replaced(tmp_path):
    settings = _settings(tmp_path / "state")
    alertmanager = manager.select(["alertmanager"])[0]
    PidFile(settings.state_dir / "run" / "alertmanager.pid").write(PidRecord(999_999, 1, ["gone"]))
    assert manager.status(settings, ["alertmanager"])[0].state == "stale"
    messages: list[str] = []
    try:
        statuses = manager.up(settings, ["alertmanager"], on_progress=messages.append)
        assert statuses[0].state == "running"
        assert any("removing stale pid file (pid 999999" in m for m in messages)
    finally:
        manager.down(settings, ["alertmanager"], on_progress=lambda m: None)
    assert manager.status(settings, ["alertmanager"])[0].state == "stopped"
    assert alertmanager.name == "alertmanager"


def test_component_not_healthy_in_time_fails_and_leaves_no_partial_stack(tmp_path, monkeypatch):
    settings = _settings(tmp_path / "state")
    never_healthy = tuple(
        dataclasses.replace(c, healthy=lambda s: False, health_timeout_s=1.0) if c.name == "prometheus" else c
        for c in manager.COMPONENTS
    )
    monkeypatch.setattr(manager, "COMPONENTS", never_healthy)
    with pytest.raises(StackError, match=r"prometheus did not become healthy within 1 s; see .*prometheus.log"):
        manager.up(settings, ["alertmanager", "prometheus"], on_progress=lambda m: None)
    # alertmanager had started: the failed up stops it again, and prometheus too
    assert [s.state for s in manager.status(settings, ["alertmanager", "prometheus"])] == ["stopped", "stopped"]
    assert not tcp_open("127.0.0.1", settings.prometheus.port)
    assert not tcp_open("127.0.0.1", settings.alertmanager.port)


def test_crashing_component_reports_its_log(tmp_path, monkeypatch):
    from yuqing.stack import components

    settings = _settings(tmp_path / "state")
    monkeypatch.setattr(components, "render_prometheus_config", lambda *a, **k: "global: [not, a, mapping\n")
    with pytest.raises(StackError, match=r"prometheus exited during start-up; see .*prometheus.log"):
        manager.up(settings, ["prometheus"], on_progress=lambda m: None)
    assert manager.status(settings, ["prometheus"])[0].state == "stopped"


def test_kafka_refuses_a_retention_that_would_delete_every_record(tmp_path):
    from yuqing.stack.components import _kafka_prepare

    settings = load_settings(env={"YUQING_STATE_DIR": str(tmp_path), "YUQING_KAFKA_RETENTION_MB_PER_PARTITION": "0"})
    with pytest.raises(StackError, match="retention_mb_per_partition: at least 1"):
        _kafka_prepare(settings)
    assert not (tmp_path / "kafka" / "server.properties").exists()
