"""Window close -> page: a window holding a crisis closes -> the on-call webhook receives the page.

Reported as `window_close_to_page_*` (earlier releases called it "detection latency"): it is
NOT what a live crisis waits, because the clock starts at a post sent on purpose to close
the window (and the trial posts are stamped an hour in the past). What a live crisis waits,
from the post that tips it over to the page, is `bench/live.py`.

The job and `yuqing notify` run live (notify pages from the `alerts` topic to a generic
webhook served here). Each trial makes a never-seen brand cross into high:

1. a burst of ~200 crisis posts about the trial's brand, all inside one 1-minute pane
   [P, P+60 s) of event time, is produced and flushed;
2. then one post naming no brand with event time P+91 s: it moves the watermark
   (max event time - 30 s out-of-orderness) past the window end P+60 s, which closes
   the first window holding the burst; its producer ack starts the clock;
3. the clock stops when the webhook receives the first page naming the trial's brand.

So the figure is what the product adds after the evidence is in Kafka: source poll,
batched scoring UDF, window firing, keyed scorer, Kafka sink, notify's consumer and the
webhook delivery. The raw topic has one partition so that no idle partition holds the
watermark back (the job marks a partition idle after table.exec.source.idle-timeout).
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from bench import posts as bench_posts
from bench.harness import Workbench, check_alive, http_get, say, wait_for
from bench.report import percentile, seconds_summary
from core.config import REPO_ROOT

SAMPLE_WATCHLIST = REPO_ROOT / "data" / "watchlist.sample.yaml"
TRIAL_SPACING_MS = 120_000
OUT_OF_ORDERNESS_MS = 30_000


class Inbox:
    """A webhook receiver that timestamps each page on arrival (time.monotonic)."""

    def __init__(self) -> None:
        self.pages: list[tuple[float, dict]] = []
        self.cond = threading.Condition()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.monotonic()
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"text": body.decode("utf-8", "replace")}
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')
                with inbox.cond:
                    inbox.pages.append((at, payload))
                    inbox.cond.notify_all()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/bench"

    def wait_page(self, brand: str, since: float, timeout_s: float,
                  firing_only: bool = False) -> tuple[float, dict] | None:
        """The first page naming `brand` received after `since` (time.monotonic);
        `firing_only`: not a "resolved" one."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while True:
                for at, payload in self.pages:
                    notice = payload.get("notice") or {}
                    if (at >= since and notice.get("brand") == brand
                            and not (firing_only and notice.get("status") == "resolved")):
                        return at, payload
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def notify_config(path: Path, url: str, group_id: str) -> Path:
    path.write_text(yaml.safe_dump({
        "dedup_window_s": 900,
        "retry": {"attempts": 3, "backoff_s": 0.5, "timeout_s": 5},
        "kafka": {"enabled": True, "min_level": "high", "auto_offset_reset": "earliest", "group_id": group_id},
        "channels": [{"name": "bench-inbox", "kind": "webhook", "url": url}],
    }, allow_unicode=True), encoding="utf-8")
    return path


def write_brand_watchlist(phase_dir: Path, brands: list[str]):
    """The sample watchlist plus the trials' brands, written where the phase's job reads it;
    returns its path and the parsed watchlist (for the bench's own reference work)."""
    from scoring.watchlist import parse_watchlist

    phase_dir.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load(SAMPLE_WATCHLIST.read_text(encoding="utf-8"))
    wl_data = bench_posts.watchlist_with_brands(base, brands)
    wl_path = phase_dir / "watchlist.yaml"
    wl_path.write_text(yaml.safe_dump(wl_data, allow_unicode=True), encoding="utf-8")
    return wl_path, parse_watchlist(wl_data)


def start_notify_and_job(wb: Workbench, pipeline, alive, inbox: Inbox, phase_dir: Path, wl_path: Path,
                         notify_group: str, job_group: str) -> None:
    """Start `yuqing notify` (paging `inbox`) and the live job; return once notify has joined
    its Kafka group and the job serves its metrics, so that no trial's page can be missed."""
    settings = wb.settings
    pipeline.start("notify", "notify", "--config",
                   str(notify_config(phase_dir / "notify.yaml", inbox.url, notify_group)))
    pipeline.start("job", "job", "run", "--watchlist", str(wl_path), "--no-resume", "--parallelism", "1",
                   "--python-mode", "thread", "--group-id", job_group, "--checkpoint-interval", "30")
    notify_health = f"http://{settings.metrics.host}:{settings.metrics.notify_port}/healthz"

    def notify_ready() -> bool:
        body = http_get(notify_health)
        return bool(body) and json.loads(body).get("kafka") == "assigned"

    wait_for(notify_ready, 60, "yuqing notify to join its Kafka group", alive)
    job_metrics = f"http://{settings.metrics.host}:{settings.metrics.job_port}/metrics"
    wait_for(lambda: http_get(job_metrics) is not None, 240, "the scoring job to start", alive)


def run(wb: Workbench, trials: int = 25, burst: int = 200, warmup: int = 1, progress=say) -> dict:
    from kafka import KafkaProducer

    settings = wb.settings
    topics = wb.make_topics("lat", raw_partitions=1)
    brands = bench_posts.trial_brands(trials + warmup, bench_posts.run_prefix(int(time.time())))
    phase_dir = wb.run_dir / "latency"
    wl_path, watchlist = write_brand_watchlist(phase_dir, brands)
    inbox = Inbox()
    pipeline = wb.pipeline("latency", wb.env(topics))
    alive = check_alive(pipeline)
    producer = None
    try:
        start_notify_and_job(wb, pipeline, alive, inbox, phase_dir, wl_path,
                             notify_group=f"bench-{wb.tag}-notify", job_group=f"bench-{wb.tag}-lat")
        progress(f"latency: job and notify are up; {warmup} warm-up + {trials} trials of ~{burst} posts")
        producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks=1, linger_ms=5,
                                 request_timeout_ms=15_000, max_block_ms=30_000, client_id="yuqing-bench-latency")
        now_ms = int(time.time() * 1000)
        start_ms = now_ms - (trials + warmup) * TRIAL_SPACING_MS - 3_600_000
        start_ms -= start_ms % 60_000
        results = []
        for i, brand in enumerate(brands):
            pane = start_ms + i * TRIAL_SPACING_MS
            t_burst = time.monotonic()
            posts = bench_posts.crisis_burst(watchlist, brand, "privacy", pane, posts=burst, seed=i)
            for post in posts:
                producer.send(topics["raw"], key=post["id"].encode(), timestamp_ms=bench_posts.post_ms(post),
                              value=json.dumps(post, ensure_ascii=False).encode())
            producer.flush(timeout=30)
            closing_ms = pane + 60_000 + OUT_OF_ORDERNESS_MS + 1_000
            close = bench_posts.closing_post(closing_ms, f"{wb.tag}-{i}")
            t_send = time.monotonic()
            producer.send(topics["raw"], key=close["id"].encode(), timestamp_ms=closing_ms,
                          value=json.dumps(close, ensure_ascii=False).encode()).get(timeout=15)
            t0 = time.monotonic()
            got = inbox.wait_page(brand, since=t_burst, timeout_s=180 if i < warmup else 60)
            if got is None:
                alive()
                raise RuntimeError(f"trial {i}: no page for {brand} within the timeout; logs in {pipeline.run_dir / 'logs'}")
            at, payload = got
            notice = payload.get("notice") or {}
            trial = {"brand": brand, "posts": len(posts), "seconds": round(at - t0, 3),
                     "from_send_s": round(at - t_send, 3), "ack_s": round(t0 - t_send, 3),
                     "category": notice.get("category"), "level": notice.get("level"), "path": notice.get("path"),
                     "warmup": i < warmup}
            results.append(trial)
            progress(f"  trial {i}{' (warm-up)' if i < warmup else ''}: {brand} {notice.get('category')}/"
                     f"{notice.get('level')} paged {trial['seconds']:.2f} s after the closing post")
    finally:
        if producer is not None:
            producer.close(timeout=10)
        pipeline.stop()
        inbox.close()
    # a page before the ack means the window closed without the closing post: not a measurement
    invalid = [t for t in results if not t["warmup"] and t["seconds"] < 0]
    if invalid:
        progress(f"latency: WARNING {len(invalid)} trial(s) paged before the closing post's ack; not counted")
    counted = [t for t in results if not t["warmup"] and t["seconds"] >= 0]
    if not counted:
        raise RuntimeError("no valid latency trial")
    measured = [t["seconds"] for t in counted]
    return {
        "window_close_to_page_trials_invalid": len(invalid),
        "window_close_to_page_from_send_p95_s": round(percentile([t["from_send_s"] for t in counted], 95), 3),
        "window_close_to_page_ack_max_s": max(t["ack_s"] for t in counted),
        "window_close_to_page_trials": len(measured),
        **seconds_summary("window_close_to_page", measured),
        "window_close_to_page_burst_posts": burst,
        "window_close_to_page_trial_list": results,
    }
