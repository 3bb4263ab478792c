"""JSONL replay: posts from a file (CONTRACTS §1 lines), optionally paced to keep relative timing.

`speedup: 60` sends one hour of posts (by published_at, in file order) per minute; 0 sends
as fast as Kafka takes them. Posts keep their own published_at (event time). Cursor: the
byte offset after the last delivered line, so a restart resumes and, with `tail: true`,
the continuous mode follows a growing file (a last line without its newline waits). Lines are not re-cleaned: a replay is faithful to its file.
"""
from __future__ import annotations

import json
from datetime import timezone
from pathlib import Path
from typing import Any, Iterator

from ingest.normalize import parse_datetime
from ingest.sources.base import FetchContext, Item, Options, Page, Source, SourceConfigError
from core.post import Rejected, parse_post

PAGE_LINES = 500
PROGRESS_EVERY_S = 2.0


class JsonlSource(Source):
    kind = "replay"
    default_interval_s = 5.0

    def default_platform(self) -> str:
        return "replay"

    def configure(self, opts: Options) -> None:
        self.path = Path(opts.get("path", required=True, kind=str)).expanduser()
        self.speedup = opts.number("speedup", 0.0)
        self.tail: bool = opts.get("tail", False, kind=bool)

    def fetch(self, cursor: dict[str, Any], ctx: FetchContext) -> Iterator[Page]:
        if not self.path.is_file():
            raise SourceConfigError(f"{self.where}: replay file {self.path} does not exist")
        offset = int(cursor.get("offset", 0))
        line_no = int(cursor.get("line", 0))
        size = self.path.stat().st_size
        if offset > size:
            ctx.progress(f"replay {self.name}: {self.path} shrank below the saved offset; starting over")
            offset, line_no = 0, 0
        started = ctx.monotonic()
        last_report = started
        first_event: float | None = None
        sent = 0
        items: list[Item] = []
        with self.path.open("rb") as handle:
            handle.seek(offset)
            for raw_line in iter(handle.readline, b""):
                if ctx.stop.is_set():
                    break
                if self.tail and not raw_line.endswith(b"\n") and handle.tell() >= size:
                    # a line still being written: leave it for the next poll
                    break
                line = raw_line.rstrip(b"\r\n")
                if line.strip():
                    item = self._item(line)
                    if self.speedup > 0 and item.post is not None:
                        when = parse_datetime(item.post.get("published_at"), timezone.utc)
                        if when is not None:
                            at = when.timestamp()
                            first_event = at if first_event is None else first_event
                            delay = started + (at - first_event) / self.speedup - ctx.monotonic()
                            if delay > 0.05 and items:
                                yield Page(items, {"offset": offset, "line": line_no})
                                items = []
                            if delay > 0 and ctx.pause(delay):
                                break
                    items.append(item)
                    sent += 1
                offset += len(raw_line)
                line_no += 1
                now = ctx.monotonic()
                if now - last_report >= PROGRESS_EVERY_S:
                    last_report = now
                    ctx.progress(self._progress(line_no, sent, offset, size, now - started))
                if len(items) >= PAGE_LINES:
                    yield Page(items, {"offset": offset, "line": line_no})
                    items = []
        yield Page(items, {"offset": offset, "line": line_no})
        ctx.progress(self._progress(line_no, sent, offset, size, ctx.monotonic() - started) + " (end of file)")

    def _progress(self, line_no: int, sent: int, offset: int, size: int, elapsed: float) -> str:
        share = 100.0 * offset / size if size else 100.0
        rate = sent / elapsed if elapsed > 0 else 0.0
        return f"replay {self.name}: line {line_no}, {share:.0f}% of {self.path.name}, {sent} read this run, {rate:.0f}/s"

    def _item(self, line: bytes) -> Item:
        parsed = parse_post(line)
        if isinstance(parsed, Rejected):
            return Item(None, line, parsed.reason)
        obj = json.loads(line)
        obj.setdefault("source", "replay")
        return Item(obj, line)
