"""Who may do what in ClickHouse, against a real server of our own with generated passwords.

The private server (fixture `own_clickhouse`) is rendered by server_config from settings whose
passwords are empty, so `ensure_secrets` generated them exactly as `yuqing stack up` does.
"""
from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest
from clickhouse_driver.errors import ServerException

from sinks.clickhouse import migrate as mig
from sinks.clickhouse.client import connect
from sinks.clickhouse.server_config import ANALYST_LIMITS, ensure_secrets, render_users_xml
from core.config import load_settings

from ch_helpers import migrate_db


def _refused(fn) -> str:
    with pytest.raises(ServerException) as info:
        fn()
    return str(info.value)


def _auth_refused(ch, user: str, password: str) -> None:
    client = connect(ch, user=user, password=password, database=ch.database)
    try:
        message = _refused(lambda: client.execute("SELECT 1"))
    finally:
        client.disconnect()
    assert "password" in message.lower() or "authentication" in message.lower(), message


@pytest.fixture
def access(own_clickhouse):
    settings = own_clickhouse.settings
    migrate_db(settings)
    return own_clickhouse


def test_generated_secrets_are_random_private_and_read_through_settings(tmp_path):
    env = {"YUQING_STATE_DIR": str(tmp_path / "a")}
    first = load_settings(env=env)
    assert first.clickhouse.secrets_dir == str(tmp_path / "a" / "secrets" / "clickhouse")
    assert first.clickhouse.admin_password == "" and first.clickhouse.analyst_secret == ""
    assert ensure_secrets(first) == ["password", "analyst_password"]
    assert ensure_secrets(first) == []  # kept: the running server and the clients keep agreeing
    folder = Path(first.clickhouse.secrets_dir)
    for name in ("password", "analyst_password"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    admin, analyst = first.clickhouse.admin_password, first.clickhouse.analyst_secret
    assert len(admin) >= 24 and len(analyst) >= 24 and admin != analyst
    other = load_settings(env={"YUQING_STATE_DIR": str(tmp_path / "b")})
    ensure_secrets(other)
    assert other.clickhouse.admin_password not in (admin, analyst)
    # a file someone made world-readable is tightened; an explicit setting wins over the file
    (folder / "password").chmod(0o644)
    ensure_secrets(first)
    assert stat.S_IMODE((folder / "password").stat().st_mode) == 0o600
    explicit = load_settings(env={**env, "YUQING_CLICKHOUSE_PASSWORD": "from-env"})
    assert explicit.clickhouse.admin_password == "from-env"
    # users.xml stores hashes only
    users = render_users_xml(first)
    assert admin not in users and analyst not in users and "password_sha256_hex" in users


def test_without_the_password_nobody_gets_in(access):
    ch = access.settings.clickhouse
    _auth_refused(ch, ch.user, "")  # `default` with no password: refused
    _auth_refused(ch, ch.analyst_user, "")
    _auth_refused(ch, ch.analyst_user, "analyst")  # the old fixed default
    _auth_refused(ch, ch.analyst_user, ch.admin_password)


def test_analyst_is_read_only_with_limits_it_cannot_lift(access):
    ch = access.settings.clickhouse
    for sql in ("INSERT INTO posts (id) VALUES", "CREATE TABLE t_analyst (a UInt8) ENGINE = Memory",
                "DROP TABLE rejects", "ALTER TABLE posts DELETE WHERE 1", "SET readonly = 0",
                "SET max_execution_time = 100000", "SET max_result_rows = 0"):
        args = (sql, [("analyst:1",)]) if sql.endswith("VALUES") else (sql,)
        analyst = connect(ch, user=ch.analyst_user, password=ch.analyst_secret, database=ch.database)
        try:
            message = _refused(lambda: analyst.execute(*args)).lower()
        finally:
            analyst.disconnect()
        assert "readonly" in message or "not enough privileges" in message, (sql, message)
    analyst = connect(ch, user=ch.analyst_user, password=ch.analyst_secret, database=ch.database)
    try:
        assert analyst.execute("SELECT count() FROM posts")[0][0] == 0
        # settings sent along with a query are refused or have no effect
        watched = ("readonly", "max_result_rows", "max_execution_time")
        for override in ({"readonly": 0}, {"max_result_rows": 0}, {"max_execution_time": 0}):
            try:
                rows = analyst.execute("SELECT name, value FROM system.settings WHERE name IN %(names)s",
                                       {"names": watched}, settings=override)
            except ServerException as exc:
                assert "readonly" in str(exc).lower(), exc
                continue
            assert dict(rows) == {k: str(ANALYST_LIMITS[k]) for k in watched}, override
        # the limits are in force
        values = dict(analyst.execute(
            "SELECT name, value FROM system.settings WHERE name IN %(names)s", {"names": tuple(ANALYST_LIMITS)}))
        assert values == {k: str(v) for k, v in ANALYST_LIMITS.items()}
        message = _refused(lambda: analyst.execute(
            f"SELECT number FROM system.numbers LIMIT {ANALYST_LIMITS['max_result_rows'] + 10}"))
        assert "limit for result exceeded" in message.lower(), message
        # other databases are out of reach
        message = _refused(lambda: analyst.execute("SELECT * FROM default.nothing_here"))
        assert "access" in message.lower() or "doesn't exist" in message.lower() or "not allowed" in message.lower()
    finally:
        analyst.disconnect()
    assert connect(ch).execute(f"EXISTS TABLE {ch.database}.rejects")[0][0] == 1


def test_migrate_again_with_a_new_analyst_password_applies_it(access):
    settings = access.settings
    ch = settings.clickhouse
    old = ch.analyst_secret
    (Path(ch.secrets_dir) / "analyst_password").write_text("新的-password-2026\n", encoding="utf-8")
    assert ch.analyst_secret == "新的-password-2026"
    client = connect(ch)
    try:
        result = mig.migrate(client, ch, users_xml=access.root / "users.xml")
    finally:
        client.disconnect()
    assert result.applied == [] and "analyst" in result.access
    analyst = connect(ch, user=ch.analyst_user, password="新的-password-2026", database=ch.database)
    assert analyst.execute("SELECT value FROM system.settings WHERE name = 'readonly'")[0][0] == "1"
    analyst.disconnect()
    _auth_refused(ch, ch.analyst_user, old)
    # and a password given in the settings wins over the file
    explicit = replace(ch, analyst_password="from-settings")
    client = connect(explicit)
    try:
        mig.migrate(client, explicit, users_xml=access.root / "users.xml")
    finally:
        client.disconnect()
    analyst = connect(explicit, user=ch.analyst_user, password="from-settings", database=ch.database)
    assert analyst.execute("SELECT 1")[0][0] == 1
    analyst.disconnect()
    # migrating another database (as the end-to-end test does on the shared stack) leaves the
    # analyst where `stack up` put it; with no analyst password known, users.xml is left alone
    before = (access.root / "users.xml").read_text(encoding="utf-8")
    other = replace(explicit, database="yq_other_db")
    client = connect(other)
    try:
        assert "already has this password" in mig.migrate(client, other, users_xml=access.root / "users.xml").access
        unknown = replace(other, analyst_password="", secrets_dir=str(access.root / "no-secrets"))
        assert "left as it is" in mig.migrate(client, unknown, users_xml=access.root / "users.xml").access
        client.execute("DROP DATABASE IF EXISTS yq_other_db")
    finally:
        client.disconnect()
    assert (access.root / "users.xml").read_text(encoding="utf-8") == before
    assert "<database>" + ch.database + "</database>" in before


def test_the_stack_prepares_a_server_its_clients_log_into(tmp_path):
    """`stack up`'s ClickHouse step on a fresh state folder: passwords generated, users.xml
    0600 with hashes only, and a client that only loaded the settings gets in (the analyst too)."""
    import signal
    import socket
    import subprocess
    import time

    from yuqing.stack.components import CLICKHOUSE

    def port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    env = {"YUQING_STATE_DIR": str(tmp_path / "state"), "YUQING_CLICKHOUSE_PORT": str(port()),
           "YUQING_CLICKHOUSE_HTTP_PORT": str(port())}
    settings = load_settings(env=env)
    assert not Path(settings.clickhouse.secrets_dir).exists()
    CLICKHOUSE.prepare(settings)
    users = settings.state_dir / "clickhouse" / "users.xml"
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    fresh = load_settings(env=env)  # what any later process sees
    assert fresh.clickhouse.admin_password and fresh.clickhouse.admin_password not in users.read_text()
    proc = subprocess.Popen(CLICKHOUSE.command(settings), cwd=settings.state_dir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not CLICKHOUSE.healthy(settings):
            assert proc.poll() is None and time.monotonic() < deadline, "clickhouse-server did not start"
            time.sleep(0.1)
        client = connect(fresh.clickhouse)
        assert client.execute("SELECT 1") == [(1,)]
        client.execute(f"CREATE DATABASE {fresh.clickhouse.database}")
        client.disconnect()
        analyst = connect(fresh.clickhouse, user=fresh.clickhouse.analyst_user,
                          password=fresh.clickhouse.analyst_secret, database=fresh.clickhouse.database)
        assert analyst.execute("SELECT value FROM system.settings WHERE name = 'readonly'") == [("1",)]
        analyst.disconnect()
        _auth_refused(fresh.clickhouse, "default", "")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
