"""The crawl loop: poll sources, validate, deduplicate, deliver, then persist cursor and dedup.

Order matters for "no loss, no re-send": a page's posts are flushed to Kafka first; only
then are the dedup state and the source's cursor written (atomically). A crash between
the two re-sends that page on restart (at-least-once), never skips it. A failed delivery
(broker down, timeout) forgets the page's dedup entries, so the next poll sends the same
posts again; a record the broker refuses for itself (too large, a timestamp it will not
take) goes to the dead-letter topic instead, so one bad post can never hold a source's
cursor still forever.

Isolation: a bad item is dead-lettered with its reason and its page goes on; an error in
one source (any exception) fails that poll only, is counted in its health, and the other
sources are polled as usual.
"""
from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Protocol

from ingest.dedup import Deduper
from ingest.http import FetchError, HttpClient
from ingest.metrics import IngestMetrics
from ingest.producer import DeliveryError
from ingest.sources.base import FetchContext, Item, Source, SourceConfigError
from ingest.state import CursorStore, StateError
from ingest.times import future_reason
from core.post import Post, Rejected, parse_post

DLQ_RAW_LIMIT = 128 * 1024
REJECTS_REMEMBERED = 10_000  # per source


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
    health: "SourceHealth | None" = None

    def summary(self) -> str:
        text = (f"{self.source}: {self.fetched} fetched, {self.produced} produced, "
                f"{self.rejected} rejected, {self.duplicates} duplicate")
        text += f"; FAILED: {self.error}" if self.error else ""
        return text + (f" [{self.health.describe()}]" if self.health else "")


@dataclass
class SourceHealth:
    """How a source has been doing across polls (also exported as metrics)."""

    last_success: datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None

    def describe(self) -> str:
        ok = self.last_success.isoformat(timespec="seconds") if self.last_success else "never"
        text = f"last success {ok}, {self.consecutive_failures} consecutive failure(s)"
        return text + (f", last error: {self.last_error}" if self.last_error else "")


def validate(item: Item, fetched_at: datetime | None = None) -> Post | Rejected:
    """An item as the contract sees it; the raw bytes kept for the DLQ are the source's own.

    With `fetched_at`, a post dated more than 5 minutes after it is rejected: the broker
    would refuse it (or worse, event time would jump ahead for everyone).
    """
    if item.post is None:
        return Rejected(reason=item.reason or "unreadable item", raw=item.raw)
    try:
        parsed = parse_post(json.dumps(item.post, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        return Rejected(reason=f"item is not contract JSON: {exc}", raw=item.raw)
    if isinstance(parsed, Rejected):
        return Rejected(reason=parsed.reason, raw=item.raw)
    if fetched_at is not None:
        ahead = future_reason(parsed.published_at, fetched_at)
        if ahead is not None:
            return Rejected(reason=ahead, raw=item.raw)
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
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)

    def __post_init__(self) -> None:
        self.cursors = CursorStore(self.state_dir)
        if self.deduper is None:
            self.deduper = Deduper(path=Path(self.state_dir) / "dedup.json")
        self.health: dict[str, SourceHealth] = {source.name: SourceHealth() for source in self.sources}
        # rejects already dead-lettered, per source: a dateless feed entry seen on every poll is
        # dead-lettered once per process, not once per poll
        self._rejected_seen: dict[str, OrderedDict[str, None]] = {}

    def _failed(self, source: str, result: PollResult, status: str, message: str) -> None:
        result.error = message
        self.metrics.errors.labels(source, status).inc()
        health = self.health.setdefault(source, SourceHealth())
        health.consecutive_failures += 1
        health.last_error = message
        health.last_error_at = self.clock()
        self.metrics.failed(source, status, health.consecutive_failures)

    def _succeeded(self, source: str) -> None:
        health = self.health.setdefault(source, SourceHealth())
        health.consecutive_failures = 0
        health.last_success = self.clock()
        self.metrics.success(source)

    def _dead_letter(self, reason: str, raw: bytes, label: str) -> None:
        """A reject to the DLQ, its raw bytes cut so the dead letter always fits where a big item did not."""
        if len(raw) > DLQ_RAW_LIMIT:
            reason, raw = f"{reason} (raw cut to {DLQ_RAW_LIMIT} of {len(raw)} bytes)", raw[:DLQ_RAW_LIMIT]
        self.sink.send_dlq(reason, raw, label)

    def _deliver(self, added: list[Post], source: Source) -> int:
        """Flush the page; records the broker refuses for themselves are dead-lettered. Returns how many."""
        try:
            self.sink.flush()
            return 0
        except DeliveryError as exc:
            if exc.transient or not exc.refused:
                raise
            refused = exc.refused
        refused_ids = set()
        for kind, key, value, label, reason in refused:
            if kind != "post":
                raise DeliveryError(f"dead-letter topic refused a record: {reason}", 1, 1)
            refused_ids.add(key.decode("utf-8") if key else None)
            self._dead_letter(reason, value, label)
        self.sink.flush()
        assert self.deduper is not None
        for post in [p for p in added if p.id in refused_ids]:
            self.deduper.forget(post)
            added.remove(post)
        self.log(f"crawl {source.name}: {len(refused)} post(s) refused by Kafka went to the dead-letter topic")
        return len(refused)

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
            clock=self.clock,
        )
        try:
            cursor = self.cursors.load(source.name)
            for page in source.fetch(cursor, ctx):
                added: list[Post] = []
                rejected = 0
                fetched_at = self.clock()
                seen = self._rejected_seen.setdefault(source.name, OrderedDict())
                new_rejects: list[str] = []
                try:
                    for item in page.items:
                        result.fetched += 1
                        self.metrics.fetched.labels(source.name).inc()
                        try:
                            checked = validate(item, fetched_at)
                        except Exception as exc:  # noqa: BLE001 - one odd item must not stop its page
                            checked = Rejected(reason=f"item could not be checked: {type(exc).__name__}: {exc}",
                                               raw=item.raw)
                        if isinstance(checked, Rejected):
                            key = hashlib.sha1(checked.raw).hexdigest()
                            if key in seen:
                                result.duplicates += 1
                                self.metrics.duplicates.labels(source.name, "rejected").inc()
                                continue
                            self._dead_letter(checked.reason, checked.raw, source.name)
                            new_rejects.append(key)
                            rejected += 1
                            continue
                        duplicate = dedup.check(checked)
                        if duplicate:
                            result.duplicates += 1
                            self.metrics.duplicates.labels(source.name, duplicate).inc()
                            continue
                        dedup.add(checked)
                        added.append(checked)
                        try:
                            self.sink.send_post(checked, source.name)
                        except DeliveryError as exc:
                            if exc.transient or not exc.refused:
                                raise
                            added.remove(checked)
                            dedup.forget(checked)
                            self._dead_letter(str(exc), checked.to_json().encode("utf-8"), source.name)
                            rejected += 1
                    rejected += self._deliver(added, source)
                except DeliveryError as exc:
                    for post in added:
                        dedup.forget(post)  # so the next poll sends them again
                    self.metrics.produce_failures.labels(source.name).inc(exc.failed or 1)
                    raise
                for key in new_rejects:  # only once they are safely in the DLQ
                    seen[key] = None
                while len(seen) > REJECTS_REMEMBERED:
                    seen.popitem(last=False)
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
            self._succeeded(source.name)
        except FetchError as exc:
            self._failed(source.name, result, exc.status, str(exc))
        except DeliveryError as exc:
            self._failed(source.name, result, "produce", str(exc))
        except SourceConfigError as exc:
            self._failed(source.name, result, "config", str(exc))
        except (OSError, StateError) as exc:
            self._failed(source.name, result, "io", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug in one source must not stop the others
            self._failed(source.name, result, "internal", f"{type(exc).__name__}: {exc}")
        result.health = self.health.get(source.name)
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
