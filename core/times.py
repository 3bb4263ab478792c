"""Time formats shared by every record that crosses Kafka."""
from __future__ import annotations

from datetime import datetime, timezone


def format_ms(ms: int) -> str:
    """RFC 3339 in UTC, second precision (windows close on whole minutes)."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="seconds")
