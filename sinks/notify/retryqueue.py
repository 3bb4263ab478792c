"""Deliveries that failed every quick retry wait here, in memory and optionally in a file.

Bounded: when full, the oldest entry is dropped (and counted) so that a dead channel
cannot eat the process's memory. The file is rewritten atomically on each change, which
is fine for the small volume of pages.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from .notice import Notice

log = logging.getLogger("yuqing.notify")


@dataclass(frozen=True)
class Pending:
    channel: str
    notice: Notice
    failures: int
    first_failed_at: float
    last_error: str


class RetryQueue:
    def __init__(self, maxlen: int, path: Path | None = None):
        self.maxlen = maxlen
        self.path = path
        self._items: deque[Pending] = deque()
        self._lock = threading.Lock()
        if path and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                self._items.append(Pending(d["channel"], Notice.from_dict(d["notice"]), int(d["failures"]),
                                           float(d["first_failed_at"]), str(d.get("last_error", ""))))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("notify: skipping unreadable retry-queue line %d in %s: %s", n, path, exc)
        while len(self._items) > self.maxlen:
            self._items.popleft()

    def _save(self) -> None:
        if not self.path:
            return
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            for p in self._items:
                fh.write(json.dumps({"channel": p.channel, "notice": p.notice.to_dict(), "failures": p.failures,
                                     "first_failed_at": p.first_failed_at, "last_error": p.last_error},
                                    ensure_ascii=False) + "\n")
        os.replace(tmp, self.path)

    def push(self, item: Pending) -> Pending | None:
        """Add an item; returns the dropped oldest one if the queue was full."""
        with self._lock:
            dropped = self._items.popleft() if len(self._items) >= self.maxlen else None
            self._items.append(item)
            self._save()
            return dropped

    def take_all(self) -> list[Pending]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._save()
            return items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
