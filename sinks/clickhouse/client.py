"""Connections to ClickHouse: every client gets the connect and send/receive timeouts."""
from __future__ import annotations

import re

from clickhouse_driver import Client

from core.config import ClickHouseSettings

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


def connect(
    ch: ClickHouseSettings,
    *,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
    settings: dict | None = None,
) -> Client:
    """A native-protocol client; lazy: the socket opens on the first query."""
    return Client(
        host=ch.host,
        port=ch.port,
        user=ch.user if user is None else user,
        password=ch.admin_password if password is None else password,
        database=database or "default",
        connect_timeout=ch.connect_timeout_s,
        send_receive_timeout=ch.send_receive_timeout_s,
        sync_request_timeout=min(5.0, ch.send_receive_timeout_s),
        settings=settings or {},
        client_name="yuqing",
    )


def parse_version(text: str) -> tuple[int, int, int]:
    """'18.16.1' -> (18, 16, 1); '25.8.2.29' -> (25, 8, 2)."""
    m = _VERSION.match(text.strip())
    if not m:
        raise ValueError(f"cannot parse ClickHouse version {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def server_version(client: Client) -> tuple[int, int, int]:
    return parse_version(client.execute("SELECT version()")[0][0])


def error_text(exc: BaseException) -> str:
    """One line from a driver/server error: 'Code: 164. DB::Exception: …' without the stack."""
    text = str(exc).split("Stack trace", 1)[0]
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return line[:500] or type(exc).__name__
