"""Page once: remember recently sent notices by key for a time window."""
from __future__ import annotations

import threading

from .notice import Notice


class Deduplicator:
    """Thread-safe; `admit` both checks and records, so two paths racing get one winner."""

    def __init__(self, window_s: float):
        self.window_s = window_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def admit(self, notice: Notice, now: float) -> bool:
        """True if the notice should be sent (no key seen within the window), and record it."""
        keys = notice.dedup_keys()
        with self._lock:
            self._expire(now)
            if any(k in self._seen for k in keys):
                return False
            for k in keys:
                self._seen[k] = now
            # Resolving re-arms firing (and the reverse): a crisis that comes back pages again.
            for k in notice.opposite_keys():
                self._seen.pop(k, None)
            return True

    def _expire(self, now: float) -> None:
        old = [k for k, t in self._seen.items() if now - t >= self.window_s]
        for k in old:
            del self._seen[k]

    def __len__(self) -> int:
        return len(self._seen)
