"""Fault tests: the whole pipeline (scoring job, ClickHouse sink, notifier -> a webhook we
control) on a private stack, with a crash or an outage in the middle of the stream.

After each fault: every produced post that names a brand is in ClickHouse exactly once
(FINAL count = uniqExact(id) = rows inserted = the expected ids; the hourly rollup counts
each post's (brand, category) pairs once), every expected page reached the webhook once,
and the dead-letter table holds exactly the bad records we produced.

The live job publishes per-brand incidents (scoring/incidents.py): a page is an incident
opening or escalating (to high: the notifier's min_level here), its end an incident closing,
never a key's dip and rise inside an open incident.

Expected results come from the plain-Python reference engine over the same posts (the
job matches it exactly, tests/scoring/test_job.py), not from hard-coded numbers.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.fixtures.jobs import RunSlice, job_args, kill_tree, new_run, sentiment_model_path
from tests.fixtures.streams import (WATCHLIST, WebhookReceiver, event_ms, notify_config, post_counts, produce_posts,
                                    produce_to_every_partition, query, read_json_topic, wait_for)

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.flink]

OUTAGE_S = 60
WINDOW_SHARE = 0.99  # of the reference's windows that must be scored after a fault
BAD_RECORDS = [b'{"id": "bad:1", "text": "truncated', b'{"id": "bad:2", "platform": "weibo"}', b"\xff\xfe"]


# ------------------------------------------------------------------ expectations

class Expected:
    """What the reference engine says about a seeded 2-hour crisis sample."""

    def __init__(self, posts: list[dict]):
        from scoring.engine import Engine, text_scorer
        from scoring.risk import RiskConfig
        from scoring.sentiment import load_model
        from scoring.watchlist import load_watchlist
        from core.post import Post, parse_post

        parsed = sorted((p for p in (parse_post(json.dumps(d, ensure_ascii=False)) for d in posts)
                         if isinstance(p, Post)), key=lambda p: p.published_ms)
        result = Engine(load_watchlist(WATCHLIST), text_scorer(load_model(str(sentiment_model_path())).predict_proba)
                        ).run(parsed)
        from scoring.matching import Matcher

        matcher = Matcher(load_watchlist(WATCHLIST))
        matches = matcher.match_many([p.text for p in parsed], [p.title for p in parsed])
        self.ids = {p.id for p, m in zip(parsed, matches) if m}
        self.pairs = sum(len(dict.fromkeys(m.pairs)) for m in matches if m)
        assert len(self.ids) == result.posts_matched
        self.windows = {(a.brand, a.category, a.window_end_ms) for a in result.assessments}
        self.pages = expected_pages(result.incidents)
        assert any(status == "firing" and level == "high" for status, _, _, level in self.pages), \
            "the sample must raise a HIGH alert"
        assert any(status == "resolved" for status, _, _, _ in self.pages), "the HIGH incident must close"
        # the sample must have key-level news inside an incident that pages nobody, or the
        # test could not tell incidents from key-level pages
        assert sum(1 for a in result.alerts if a.event == "raised") > sum(1 for r in result.incidents if r["page"])
        self.quiet_ms = RiskConfig().alerts.incident_quiet_s * 1000  # the job's too: no --risk-config


def expected_pages(incidents: list[dict]) -> Counter:
    """Pages the notifier sends for the job's incident records at min_level high: an incident
    opening or escalating at high fires, an incident that had reached high closing resolves;
    `updated`/`lowered` records page nobody (docs/alerting.md, "Incidents")."""
    from scoring.incidents import is_page

    pages: Counter = Counter()
    for r in incidents:
        if r["incident_level"] != "high":
            continue
        if is_page(r):
            pages[("firing", r["brand"], r["category"], "high")] += 1
        elif r["kind"] == "closed":
            pages[("resolved", r["brand"], r["category"], "high")] += 1
    return pages


@pytest.fixture(scope="module")
def sample() -> tuple[list[dict], Expected]:
    from scoring.watchlist import load_watchlist
    from yuqing.synth import generate, sample_scenarios

    watchlist = load_watchlist(WATCHLIST)
    posts = generate(sample_scenarios(watchlist, hours=2.0), watchlist, seed=11, arrival_jitter_s=20)
    return posts, Expected(posts)


# ------------------------------------------------------------------ the pipeline under test

class Harness:
    def __init__(self, settings, tmp_path: Path, tag: str):
        from sinks.clickhouse.client import connect
        from sinks.clickhouse.migrate import migrate
        from yuqing.pipeline import Pipeline

        self.run: RunSlice = new_run(settings, tmp_path, tag, partitions=3, database=True)
        client = connect(self.run.clickhouse())
        try:
            migrate(client, self.run.clickhouse())
        finally:
            client.disconnect()
        self.settings = settings
        self.bootstrap = settings.kafka.bootstrap
        self.receiver = WebhookReceiver().start()
        self.pipeline = Pipeline(settings, tmp_path, env=self.run.env)
        self.notify_yaml = notify_config(tmp_path / "notify.yaml", self.receiver.url, f"{self.run.group_id}-notify",
                                         retry_every_s=5)
        self.jobs = 0

    def start_job(self, *extra: str):
        """The job with a 300 s source idle timeout (docs/deploy.md: raise it when catching
        up). With the default 30 s, windows were lost after a restart (see `verify`): a
        backlog's partition not served for 30 s on a loaded machine counts as idle, the others
        move the watermark on and its posts come late; the likely cause of the worker-kill
        test's one page that never came (if the lost windows were the crisis's peak). Every
        partition here gets posts and the closing tick, so none is idle for long."""
        self.jobs += 1
        return self.pipeline.start(f"job{self.jobs}", *job_args(self.run, "--checkpoint-interval", "3",
                                                                "-D", "table.exec.source.idle-timeout=300 s",
                                                                *extra))

    def start_all(self, *job_extra: str) -> None:
        self.pipeline.start("sink", "sink", "clickhouse", "--batch-interval", "0.5", "--no-metrics")
        self.pipeline.start("notify", "notify", "--config", str(self.notify_yaml))
        self.start_job(*job_extra)

    def produce(self, posts: list[dict]) -> None:
        produce_posts(self.bootstrap, self.run.topics["raw"], posts)

    def produce_bad(self, ts_ms: int) -> None:
        from tests.fixtures.streams import producer

        out = producer(self.bootstrap)
        try:
            for i, value in enumerate(BAD_RECORDS):
                out.send(self.run.topics["raw"], key=f"bad-{i}".encode(), value=value, timestamp_ms=ts_ms)
            out.flush(timeout=30)
        finally:
            out.close(timeout=10)

    def close_windows(self, last_ms: int, expected: "Expected") -> None:
        """A post naming no brand, the incidents' quiet period plus two hours later, on every
        partition: the watermark passes every window of the sample (each one is scored) and
        the end of every incident's quiet period (each one closes, as in the engine's run)."""
        tick = json.dumps({"id": "tick", "platform": "news", "text": "今日天气晴", "published_at": "2000-01-01T00:00:00Z"})
        produce_to_every_partition(self.bootstrap, self.run.topics["raw"], 3, tick.encode(),
                                   last_ms + expected.quiet_ms + 2 * 3_600_000)

    def checkpoints(self) -> list[Path]:
        return sorted((self.run.state_dir / "flink" / "checkpoints").glob("*/*/chk-*/_metadata"))

    def stored(self) -> int:
        try:
            return post_counts(self.run.clickhouse()).rows
        except Exception:  # ClickHouse down: nothing to count
            return -1

    def check_alive(self) -> None:
        dead = self.pipeline.check()
        assert not dead, dead

    def wait_done(self, expected: Expected, timeout_s: float) -> None:
        wait_for(lambda: self.stored() == len(expected.ids), timeout_s, 2, "every post stored in ClickHouse",
                 on_tick=self.check_alive)
        wait_for(lambda: Counter(self.receiver.pages()) == expected.pages or None, timeout_s, 2,
                 f"pages {dict(expected.pages)} (got {self.receiver.pages()})", on_tick=self.check_alive)
        wait_for(lambda: self._windows() >= WINDOW_SHARE * len(expected.windows), 60, 2, "the windows stored")
        time.sleep(3)  # anything extra (a duplicate) would show up now

    def _windows(self) -> int:
        try:
            return query(self.run.clickhouse(), "SELECT count() FROM risk_assessments FINAL")[0][0]
        except Exception:
            return -1

    def verify(self, expected: Expected) -> dict:
        ch = self.run.clickhouse()
        counts = post_counts(ch)
        ids = {r[0] for r in query(ch, "SELECT id FROM posts FINAL")}
        pairs = query(ch, "SELECT sum(length(match_brands)) FROM posts FINAL")[0][0]
        assert ids == expected.ids, f"missing {len(expected.ids - ids)}, unexpected {len(ids - expected.ids)}"
        assert counts.rows == counts.unique == len(expected.ids), counts
        assert counts.raw_rows == counts.rows, f"duplicate post rows inserted: {counts}"
        assert counts.rollup == pairs == expected.pairs, f"hourly rollup counts {counts.rollup}, want {expected.pairs}"
        windows = {(b, c, e * 1000) for b, c, e in query(
            ch, "SELECT brand, category, toUnixTimestamp(window_end) FROM risk_assessments FINAL")}
        # a window of a sparse key can be lost when a partition's posts arrive after the
        # others moved the watermark on (source idle-timeout after a restart): see the report
        assert windows <= expected.windows, f"unexpected windows {sorted(windows - expected.windows)[:5]}"
        assert len(windows) >= WINDOW_SHARE * len(expected.windows), (len(windows), len(expected.windows))
        rejects = query(ch, "SELECT raw_b64, stage FROM rejects FINAL")
        import base64

        assert sorted(r[0] for r in rejects) == sorted(base64.b64encode(b).decode() for b in BAD_RECORDS)
        assert {r[1] for r in rejects} == {"job"}
        dlq = read_json_topic(self.bootstrap, self.run.topics["dlq"], timeout_s=20)
        assert {d["raw_b64"] for d in dlq} == {base64.b64encode(b).decode() for b in BAD_RECORDS}
        pages = Counter(self.receiver.pages())
        assert pages == expected.pages, f"pages {dict(pages)} != {dict(expected.pages)}"
        return {"posts": counts.rows, "windows": f"{len(windows)}/{len(expected.windows)}", "rejects": len(rejects), "dlq_records": len(dlq),
                "pages": sum(pages.values())}

    def close(self) -> None:
        self.pipeline.stop(timeout_s=15)
        self.receiver.stop()


@pytest.fixture
def harness_factory(fault_stack, tmp_path):
    made: list[Harness] = []

    def make(tag: str) -> Harness:
        h = Harness(fault_stack, tmp_path, tag)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def _job_started(h: Harness, timeout_s: float = 120) -> None:
    """The job is consuming: its first checkpoint is written (or a newer one after a restart)."""
    before = len(h.checkpoints())
    wait_for(lambda: len(h.checkpoints()) > before, timeout_s, 1, "a new checkpoint", on_tick=h.check_alive)


# ------------------------------------------------------------------ the tests

def test_taskmanager_kill_and_broker_restart(fault_stack, harness_factory, sample):
    """SIGKILL the job's whole process tree (the mini-cluster's TaskManager JVM) mid-stream
    and start it again (it resumes from the newest retained checkpoint); later restart the
    Kafka broker under the running job, sink and notifier."""
    from yuqing.stack import manager

    posts, expected = sample
    h = harness_factory("tmkill")
    first, second, third = posts[: len(posts) // 3], posts[len(posts) // 3: 2 * len(posts) // 3], posts[2 * len(posts) // 3:]
    t0 = time.monotonic()
    h.start_all()
    h.produce(first)
    h.produce_bad(event_ms(first[-1]))
    _job_started(h)
    wait_for(lambda: h.stored() > 0, 180, 1, "the first posts in ClickHouse", on_tick=h.check_alive)
    h.produce(second[: len(second) // 2])
    time.sleep(2)  # mid-stream: some of this chunk is processed, some not, after the last checkpoint
    killed = kill_tree(h.pipeline.get("job1").record.pid)
    assert len(killed) >= 2  # the CLI process and the JVM at least
    h.pipeline.processes = [p for p in h.pipeline.processes if p.name != "job1"]
    h.produce(second[len(second) // 2:])  # arrives while the job is down
    restarted = h.start_job()
    wait_for(lambda: "resuming from checkpoint" in restarted.log.read_text(errors="replace"), 60, 1,
             "the restarted job to resume from a checkpoint")
    _job_started(h)

    manager.down(fault_stack, ["kafka"], on_progress=lambda m: None)
    time.sleep(5)
    manager.up(fault_stack, ["kafka"], on_progress=lambda m: None)
    h.produce(third)
    h.close_windows(max(event_ms(p) for p in posts), expected)
    h.wait_done(expected, timeout_s=180)
    summary = h.verify(expected)
    print(f"taskmanager kill + broker restart: {summary}, {len(killed)} processes killed, "
          f"{time.monotonic() - t0:.0f} s")


def python_workers(job_pid: int) -> list[int]:
    """The job's Python worker processes (`--python-worker process`: one per slot, started
    by the mini-cluster's JVM)."""
    from tests.fixtures.jobs import process_tree

    workers = []
    for pid in process_tree(job_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"pyflink.fn_execution.beam.beam_boot" in cmdline:
            workers.append(pid)
    return workers


def test_python_worker_process_killed(fault_stack, harness_factory, sample):
    """With one Python worker process per slot (`--python-worker process --parallelism 2`),
    SIGKILL one worker mid-stream: Flink fails the task and restarts it from the last
    checkpoint with new workers, in the same job process (nobody restarts the job)."""
    import os
    import signal

    posts, expected = sample
    h = harness_factory("pwkill")
    cut = len(posts) // 3
    t0 = time.monotonic()
    h.start_all("--python-worker", "process", "--parallelism", "2")
    job = h.pipeline.get("job1")
    h.produce(posts[:cut])
    h.produce_bad(event_ms(posts[cut - 1]))
    _job_started(h)
    wait_for(lambda: h.stored() > 0, 180, 1, "the first posts in ClickHouse", on_tick=h.check_alive)
    before = python_workers(job.record.pid)
    assert len(before) == 2, f"expected a Python worker per slot, found {before}"
    h.produce(posts[cut: 2 * cut])
    time.sleep(1)  # mid-stream
    os.kill(before[-1], signal.SIGKILL)
    # the JVM notices when it next hands the dead worker a record; posts keep coming
    h.produce(posts[2 * cut:])
    wait_for(lambda: len(set(python_workers(job.record.pid)) - set(before)) >= 1 or None, 90, 1,
             "Flink to start new Python workers", on_tick=h.check_alive)
    h.close_windows(max(event_ms(p) for p in posts), expected)
    h.wait_done(expected, timeout_s=180)
    summary = h.verify(expected)
    assert job.alive(), "the job process itself must not have died"
    print(f"Python worker process killed: {summary}, workers {before} -> {python_workers(job.record.pid)}, "
          f"{time.monotonic() - t0:.0f} s")


def test_clickhouse_and_webhook_down_for_60s(fault_stack, harness_factory, sample):
    """ClickHouse and the on-call webhook are both down for the same 60 s while the crisis
    (and its HIGH alert) streams through; the sink holds its batch and the notifier queues
    the page, and both deliver everything once when the services are back."""
    from yuqing.stack import manager

    posts, expected = sample
    h = harness_factory("outage")
    cut = len(posts) // 4
    t0 = time.monotonic()
    h.start_all()
    h.produce(posts[:cut])
    h.produce_bad(event_ms(posts[cut - 1]))
    _job_started(h)
    wait_for(lambda: h.stored() > 0, 180, 1, "the first posts in ClickHouse", on_tick=h.check_alive)

    manager.down(fault_stack, ["clickhouse"], on_progress=lambda m: None)
    h.receiver.stop()
    down_at = time.monotonic()
    h.produce(posts[cut:])
    h.close_windows(max(event_ms(p) for p in posts), expected)
    # during the outage the job keeps scoring: the HIGH alert reaches the alerts topic and the
    # notifier, which cannot deliver it
    wait_for(lambda: any(a["level"] == "high" for a in read_json_topic(h.bootstrap, h.run.topics["alerts"],
                                                                         timeout_s=5)),
             OUTAGE_S - 10, 2, "a HIGH alert event during the outage", on_tick=h.check_alive)
    while time.monotonic() - down_at < OUTAGE_S:
        h.check_alive()
        time.sleep(1)
    queued = h.pipeline.get("notify").log.read_text(errors="replace").count("queued for retry")
    manager.up(fault_stack, ["clickhouse"], on_progress=lambda m: None)
    h.receiver.start()
    h.wait_done(expected, timeout_s=150)
    summary = h.verify(expected)
    assert queued > 0, "the notifier never had to queue a page: the outage was not felt"
    print(f"ClickHouse + webhook down {OUTAGE_S} s: {summary}, {time.monotonic() - t0:.0f} s")


# ------------------------------------------------------------------ a post from the future

def live_crisis(brand: str, category: str, posts: int, seed: int) -> list[dict]:
    """About `posts` crisis posts about `brand` (media, big-V, hot-search and legal words):
    the peak minute of a synthetic crisis, to be stamped with the time they are sent."""
    from datetime import datetime, timedelta, timezone

    from scoring.watchlist import load_watchlist
    from yuqing.synth import crisis, generate

    onset = datetime(2026, 1, 1, tzinfo=timezone.utc)
    generated = generate([crisis(brand, category, onset, minutes=31, peak_per_min=posts, peak_at=30)],
                         load_watchlist(WATCHLIST), seed=seed)
    peak = onset + timedelta(minutes=30)
    out = []
    for post in generated:
        if datetime.fromisoformat(post["published_at"]) >= peak:
            post = dict(post, id=f"{post['id']}-live-{seed}")
            post.pop("repost_of", None)
            post.pop("synth", None)
            out.append(post)
    return out


def feed_live(h: Harness, posts: list[dict], spacing_s: float) -> float:
    """Send the posts one by one, each stamped with the moment it is sent (event time =
    now, as a live crisis has); returns time.monotonic() of the first send."""
    from datetime import datetime, timezone

    from tests.fixtures.streams import producer

    out = producer(h.bootstrap)
    t0 = time.monotonic()
    try:
        for post in posts:
            now = datetime.now(timezone.utc)
            stamped = dict(post, published_at=now.isoformat(timespec="milliseconds"))
            out.send(h.run.topics["raw"], key=post["id"].encode(), timestamp_ms=int(now.timestamp() * 1000),
                     value=json.dumps(stamped, ensure_ascii=False).encode())
            out.flush(timeout=10)
            time.sleep(spacing_s)
    finally:
        out.close(timeout=10)
    return t0


def seconds_to_page(h: Harness, brand: str, since: float, timeout_s: float = 120) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(status == "firing" and b == brand for status, b, _, _ in h.receiver.pages()):
            return time.monotonic() - since
        h.check_alive()
        time.sleep(0.2)
    raise AssertionError(f"no page for {brand} within {timeout_s} s (pages: {h.receiver.pages()})")


def clamped_records(settings) -> float:
    """yuqing_job_event_time_clamped_total on the scoring UDF's /metrics (first free port)."""
    import urllib.request

    from bench.harness import metric_sum

    for port in range(settings.metrics.job_udf_port, settings.metrics.job_udf_port + 8):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                text = response.read()
        except OSError:
            continue
        if b"yuqing_job_event_time_clamped" in text:
            return metric_sum(text, "yuqing_job_event_time_clamped_total")
    return -1.0


def test_a_post_fifty_minutes_ahead_does_not_delay_a_live_crisis(fault_stack, harness_factory):
    """Issue #18: one record stamped 50 minutes ahead used to move the watermark 50 minutes
    on, and every post of the next real crisis was then late. Now its event time is clamped
    to the job's clock + 5 min (counted), and the crisis that follows pages as fast as the
    one before it (early firing of the open window: no wait for the watermark)."""
    from datetime import datetime, timedelta, timezone

    from scoring.watchlist import load_watchlist

    brands = [b.name for b in load_watchlist(WATCHLIST).brands]
    h = harness_factory("ahead")
    h.pipeline.start("notify", "notify", "--config", str(h.notify_yaml))
    h.start_job()
    _job_started(h)
    before = live_crisis(brands[0], "privacy", 120, seed=1)
    seconds_before = seconds_to_page(h, brands[0], feed_live(h, before, 0.05))

    ahead = datetime.now(timezone.utc) + timedelta(minutes=50)
    future = {"id": "ahead:1", "platform": "weibo", "text": "今天的天气预报说明天会更冷",
              "published_at": ahead.isoformat(timespec="seconds"), "author": {"id": "u-ahead", "name": "预报员"}}
    produce_to_every_partition(h.bootstrap, h.run.topics["raw"], 3, json.dumps(future, ensure_ascii=False).encode(),
                               int(ahead.timestamp() * 1000))
    wait_for(lambda: clamped_records(h.settings) >= 3 or None, 60, 1, "the clamped records counted",
             on_tick=h.check_alive)
    after = live_crisis(brands[1], "privacy", 120, seed=2)
    seconds_after = seconds_to_page(h, brands[1], feed_live(h, after, 0.05))
    print(f"live crisis paged {seconds_before:.1f} s after its first post; after a post 50 min ahead "
          f"{seconds_after:.1f} s")
    assert seconds_after <= max(2 * seconds_before, seconds_before + 10), (seconds_before, seconds_after)
    assert seconds_after <= 30
