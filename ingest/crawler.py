"""The crawl loop: poll sources, validate, deduplicate, deliver, then persist cursor and dedup.

Order matters for "no loss, no re-send": a page's posts are flushed to Kafka first; only
then are the dedup state and the source's cursor written (atomically). A crash between
the two re-sends that page on restart (at-least-once), never skips it. A failed delivery
forgets the page's dedup entries, so the next poll sends the same posts again.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Protocol

from ingest.dedup import Deduper
from ingest.http import FetchError, HttpClient
from ingest.metrics import IngestMetrics
from ingest.producer import DeliveryError
from ingest.sources.base import FetchContext, Item, Source, SourceConfigError
from ingest.state import CursorStore
from yuqing.post import Post, Rejected, parse_post


class Sink(Protocol):
    """What the crawler needs from a producer (PostProducer is the real one)."""

    def send_post(self, post: Post, label: str) -> Any: ...
    def send_dlq(self, reason: str, raw: bytes, label: str) -> Any: ...
    def flush(self) -> dict[str, int]: ...


@dataclass
class PollResult:
    source: str
    fetched: int = 0
    produced: int = 0
    rejected: int = 0
    duplicates: int = 0
    pages: int = 0
    error: str | None = None

    def summary(self) -> str:
        text = (f"{self.source}: {self.fetched} fetched, {self.produced} produced, "
                f"{self.rejected} rejected, {self.duplicates} duplicate")
        return text + (f"; FAILED: {self.error}" if self.error else "")


def validate(item: Item) -> Post | Rejected:
    """An item as the contract sees it; the raw bytes kept for the DLQ are the source's own."""
    if item.post is None:
        return Rejected(reason=item.reason or "unreadable item", raw=item.raw)
    parsed = parse_post(json.dumps(item.post, ensure_ascii=False).encode("utf-8"))
    if isinstance(parsed, Rejected):
        return Rejected(reason=parsed.reason, raw=item.raw)
    return parsed


@dataclass
class Crawler:
    sources: list[Source]
    sink: Sink
    http: HttpClient
    state_dir: Path
    metrics: IngestMetrics = field(default_factory=IngestMetrics)
    deduper: Deduper | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True)

    def __post_init__(self) -> None:
        self.cursors = CursorStore(self.state_dir)
        if self.deduper is None:
            self.deduper = Deduper(path=Path(self.state_dir) / "dedup.json")

    def poll(self, source: Source) -> PollResult:
        """One pass over a source: every page it yields, delivered and committed in turn."""
        result = PollResult(source.name)
        assert self.deduper is not None
        dedup = self.deduper
        ctx = FetchContext(
            http=self.http,
            known_id=dedup.known_id,
            observe=lambda status: self.metrics.requests.labels(source.name, status).inc(),
            stop=self.stop,
            progress=self.log,
        )
        try:
            cursor = self.cursors.load(source.name)
            for page in source.fetch(cursor, ctx):
                added: list[Post] = []
                rejected = 0
                try:
                    for item in page.items:
                        result.fetched += 1
                        self.metrics.fetched.labels(source.name).inc()
                        checked = validate(item)
                        if isinstance(checked, Rejected):
                            self.sink.send_dlq(checked.reason, checked.raw, source.name)
                            rejected += 1
                            continue
                        duplicate = dedup.check(checked)
                        if duplicate:
                            result.duplicates += 1
                            self.metrics.duplicates.labels(source.name, duplicate).inc()
                            continue
                        dedup.add(checked)
                        added.append(checked)
                        self.sink.send_post(checked, source.name)
                    self.sink.flush()
                except DeliveryError as exc:
                    for post in added:
                        dedup.forget(post)  # so the next poll sends them again
                    self.metrics.produce_failures.labels(source.name).inc(exc.failed or 1)
                    raise
                result.produced += len(added)
                result.rejected += rejected
                self.metrics.produced.labels(source.name).inc(len(added))
                self.metrics.rejected.labels(source.name).inc(rejected)
                for post in added:
                    self.metrics.saw_published(source.name, post.published_at)
                dedup.prune(time.time())
                dedup.save()
                self.cursors.save(source.name, page.cursor)
                result.pages += 1
            self.metrics.success(source.name)
        except FetchError as exc:
            result.error = str(exc)
            self.metrics.errors.labels(source.name, exc.status).inc()
        except DeliveryError as exc:
            result.error = str(exc)
            self.metrics.errors.labels(source.name, "produce").inc()
        except SourceConfigError as exc:
            result.error = str(exc)
            self.metrics.errors.labels(source.name, "config").inc()
        except OSError as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            self.metrics.errors.labels(source.name, "io").inc()
        return result

    def run_once(self) -> list[PollResult]:
        results = []
        for source in self.sources:
            if self.stop.is_set():
                break
            result = self.poll(source)
            self.log(f"crawl {result.summary()}")
            results.append(result)
        return results

    def run_forever(self) -> None:
        """Poll each source every `interval_s` until `stop` is set; failures wait an interval too."""
        due = {source.name: 0.0 for source in self.sources}
        while not self.stop.is_set():
            source = min(self.sources, key=lambda s: due[s.name])
            wait = due[source.name] - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                break
            result = self.poll(source)
            if result.fetched or result.error:
                self.log(f"crawl {datetime.now(timezone.utc):%H:%M:%S} {result.summary()}")
            due[source.name] = time.monotonic() + source.interval_s
