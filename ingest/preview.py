"""Preview sink: the crawler's posts and rejects written to JSONL files instead of Kafka.

`yuqing crawl --config FILE --once --out POSTS.jsonl [--dlq-out REJECTS.jsonl]` uses it so a
user can check a new source before it goes live, with no broker running. Posts are
CONTRACTS §1 lines; rejects are the dead-letter shape (reason, raw item, source).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from ingest.producer import dlq_record
from core.post import Post


class PreviewSink:
    """Implements the crawler's Sink protocol on two files (rejects are counted when no file is given)."""

    def __init__(self, posts_path: Path, rejects_path: Path | None = None):
        self.posts_path = posts_path
        self.rejects_path = rejects_path
        self.topic = str(posts_path)  # where the crawler's banner says posts go
        self._posts: IO[str] = posts_path.open("w", encoding="utf-8")
        self._rejects: IO[str] | None = rejects_path.open("w", encoding="utf-8") if rejects_path else None
        self.counts = {"post": 0, "dlq": 0}
        self._pending = {"post": 0, "dlq": 0}

    def send_post(self, post: Post, label: str) -> Any:
        self._posts.write(post.to_json() + "\n")
        self._pending["post"] += 1

    def send_dlq(self, reason: str, raw: bytes, label: str) -> Any:
        if self._rejects is not None:
            self._rejects.write(json.dumps(dlq_record(reason, raw, label), ensure_ascii=False) + "\n")
        self._pending["dlq"] += 1

    def flush(self) -> dict[str, int]:
        self._posts.flush()
        if self._rejects is not None:
            self._rejects.flush()
        done, self._pending = self._pending, {"post": 0, "dlq": 0}
        for kind, count in done.items():
            self.counts[kind] += count
        return done

    def close(self) -> None:
        self._posts.close()
        if self._rejects is not None:
            self._rejects.close()
