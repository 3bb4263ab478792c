"""Duplicate suppression by post id and by normalised-text fingerprint, kept across restarts.

Ids are remembered for `id_retention` after first sight; text fingerprints match only
posts published within `window` of each other (the same
words crawled twice under two ids, e.g. one story from a feed and from its HTML page).
Reposts (`repost_of` set) and very short texts ("崩了") are never text-deduplicated:
each repost or terse complaint is a separate voice that the risk score should count.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.normalize import fingerprint_length, text_fingerprint
from ingest.state import read_json, write_json_atomic
from core.post import Post


@dataclass(frozen=True)
class DedupConfig:
    window_s: float = 24 * 3600
    id_retention_s: float = 14 * 86400
    min_text_chars: int = 12
    max_ids: int = 500_000


class Deduper:
    """`check` says whether a post was seen; `add` records it; `forget` undoes an `add`."""

    def __init__(self, config: DedupConfig = DedupConfig(), path: Path | None = None):
        self.config = config
        self.path = path
        self._lock = threading.Lock()
        self.ids: dict[str, float] = {}  # post id -> wall time first seen (epoch s)
        self.texts: dict[str, tuple[float, str, float]] = {}  # fingerprint -> (published s, id, seen s)
        if path is not None:
            data = read_json(path, {})
            self.ids = {str(k): float(v) for k, v in data.get("ids", {}).items()}
            self.texts = {str(k): (float(v[0]), str(v[1]), float(v[2]))
                          for k, v in data.get("texts", {}).items()}

    def _fingerprint(self, post: Post) -> str | None:
        if post.repost_of is not None or fingerprint_length(post.text) < self.config.min_text_chars:
            return None
        return text_fingerprint(post.text)

    def known_id(self, post_id: str) -> bool:
        with self._lock:
            return post_id in self.ids

    def check(self, post: Post) -> str | None:
        """'id' or 'text' when the post is a duplicate, else None."""
        with self._lock:
            if post.id in self.ids:
                return "id"
            fp = self._fingerprint(post)
            if fp is not None and fp in self.texts:
                seen_at, seen_id, _ = self.texts[fp]
                if seen_id != post.id and abs(post.published_at.timestamp() - seen_at) <= self.config.window_s:
                    return "text"
            return None

    def add(self, post: Post, now_s: float | None = None) -> None:
        now_s = time.time() if now_s is None else now_s
        with self._lock:
            self.ids[post.id] = now_s
            fp = self._fingerprint(post)
            if fp is not None and fp not in self.texts:
                self.texts[fp] = (post.published_at.timestamp(), post.id, now_s)

    def forget(self, post: Post) -> None:
        with self._lock:
            self.ids.pop(post.id, None)
            fp = self._fingerprint(post)
            if fp is not None and fp in self.texts and self.texts[fp][1] == post.id:
                del self.texts[fp]

    def prune(self, now_s: float) -> None:
        """Drop ids and fingerprints that are too old to matter (bounded state)."""
        with self._lock:
            self.ids = {k: v for k, v in self.ids.items() if now_s - v <= self.config.id_retention_s}
            if len(self.ids) > self.config.max_ids:
                newest = sorted(self.ids.items(), key=lambda kv: kv[1])[-self.config.max_ids:]
                self.ids = dict(newest)
            self.texts = {k: v for k, v in self.texts.items() if now_s - v[2] <= self.config.window_s}

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            data = {"ids": dict(self.ids), "texts": {k: list(v) for k, v in self.texts.items()}}
        write_json_atomic(self.path, data)
