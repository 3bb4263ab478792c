"""The Kafka -> ClickHouse sink against a real broker and real servers."""
import threading
import time
from dataclasses import replace

from ch_helpers import count, produce, scored_post

from sinks.clickhouse import metrics
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrate import migrate
from sinks.clickhouse.sink import ClickHouseSink, SinkOptions


def _topics(settings, kafka_topic):
    k = replace(settings.kafka, scored_topic=kafka_topic(partitions=2), assessments_topic=kafka_topic(partitions=1),
                alerts_topic=kafka_topic(partitions=1), dlq_topic=kafka_topic(partitions=1))
    return replace(settings, kafka=k)


class Crash(Exception):
    pass


class CrashBeforeCommit(ClickHouseSink):
    """Inserts its first batch, then dies before committing the offsets."""

    def _commit(self, batch):
        raise Crash(f"crash with {len(batch)} uncommitted records")


def test_sink_lands_every_record_once_after_a_crash_and_rejects_bad_ones(migrated_db, kafka_topic):
    settings = _topics(migrated_db, kafka_topic)
    k = settings.kafka
    posts = [scored_post(i, hour=10 + i % 2, author=f"a{i % 5}", followers=i) for i in range(40)]
    produce(k.bootstrap, k.scored_topic, posts + posts[:10], keys=[p["id"] for p in posts + posts[:10]])
    produce(k.bootstrap, k.scored_topic, [b"{not json", b'{"id": "x:1", "platform": "weibo"}'])
    assessment = {"brand": "快送", "category": "outage", "window_start": "2026-11-25T10:00:00+08:00",
                  "window_end": "2026-11-25T11:00:00+08:00", "posts": 40, "negative_ratio": 1.0,
                  "influence": 0.4, "severity": 0.5, "volatility": 0.6, "risk_score": 0.5, "level": "medium"}
    produce(k.bootstrap, k.assessments_topic, [assessment, {**assessment, "level": "severe"}])
    alert = {**assessment, "alert_id": "al-1", "event": "raised", "previous_level": "low",
             "at": "2026-11-25T11:00:00+08:00", "first_detected_at": "2026-11-25T10:40:00+08:00",
             "examples": [], "playbook": {"level": "medium", "title": "T", "owner": "PR", "steps": []},
             "deadlines": [{"name": "statement", "due_at": "2026-11-25T12:40:00+08:00", "hours_after_detection": 2}]}
    produce(k.bootstrap, k.alerts_topic, [alert, alert])
    dlq = {"reason": "missing required field(s): text", "raw": '{"id":"w:9"}', "stage": "ingest",
           "source": "api", "topic": "posts.raw", "partition": 0, "offset": 7,
           "rejected_at": "2026-11-25T10:00:00+08:00"}
    produce(k.bootstrap, k.dlq_topic, [dlq, dlq])

    options = SinkOptions(batch_size=500, batch_interval_s=1.0, group_id=f"g-{k.scored_topic}", idle_exit_s=2.0)
    crashed = CrashBeforeCommit(settings, options)
    try:
        crashed.run()
        raise AssertionError("the crashing sink did not crash")
    except Crash:
        pass
    assert count(settings, "SELECT count() FROM posts") > 0  # the batch was inserted before the crash

    stats = ClickHouseSink(settings, options).run()  # same group: re-consumes everything
    assert stats.records == 50 + 2 + 2 + 2 + 2
    assert count(settings, "SELECT count() FROM posts") == 40
    assert count(settings, "SELECT sum(posts) FROM posts_hourly_v") == 40
    assert count(settings, "SELECT sum(reach) FROM posts_hourly_v") == sum(range(40))
    assert count(settings, "SELECT count() FROM risk_assessments FINAL") == 1
    assert count(settings, "SELECT count() FROM alerts FINAL") == 1
    assert count(settings, "SELECT toString(first_deadline_at) FROM alerts FINAL") == "2026-11-25 12:40:00"
    client = connect(settings.clickhouse, database=settings.clickhouse.database)
    rejects = client.execute("SELECT stage, topic, reason FROM rejects FINAL ORDER BY reason")
    client.disconnect()
    assert len(rejects) == 4
    by_reason = {r[2]: r for r in rejects}
    assert by_reason["level: expected one of low, medium, high, got 'severe'"][:2] == ("sink", k.assessments_topic)
    assert any(r.startswith("invalid JSON") for r in by_reason)
    assert "missing required field(s): text, published_at, sentiment, negative" in by_reason
    assert by_reason["missing required field(s): text"][:2] == ("ingest", "posts.raw")

    # a third run finds nothing left: the offsets were committed
    again = ClickHouseSink(settings, replace(options, idle_exit_s=1.0)).run()
    assert again.records == 0


def test_sink_survives_clickhouse_downtime(own_clickhouse, kafka_bootstrap, kafka_topic):
    settings = _topics(own_clickhouse.settings, kafka_topic)
    k = settings.kafka
    client = connect(settings.clickhouse)
    migrate(client, settings.clickhouse)
    client.disconnect()
    stop = threading.Event()
    sink = ClickHouseSink(settings, SinkOptions(batch_size=100, batch_interval_s=0.3, group_id=f"g-{k.scored_topic}"),
                          stop_event=stop)
    sink.writer.backoff_max_s = 1.0
    result = {}

    def run():
        try:
            result["stats"] = sink.run()
        except BaseException as exc:  # surfaced by the asserts below
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def wait_for(n, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if count(settings, "SELECT count() FROM posts") == n:
                    return True
            except Exception:
                pass
            time.sleep(0.2)
        return False

    posts = [scored_post(i, prefix="down") for i in range(60)]
    produce(k.bootstrap, k.scored_topic, posts[:20], keys=[p["id"] for p in posts[:20]])
    assert wait_for(20, timeout=45.0), result.get("error")  # first group join on a cold broker can be slow
    errors_before = metrics.INSERT_ERRORS.labels("posts", "retryable")._value.get()

    own_clickhouse.stop()
    later = posts[20:] + posts[:5]  # new posts plus a replay of five stored ones
    produce(k.bootstrap, k.scored_topic, later, keys=[p["id"] for p in later])
    time.sleep(3)
    assert thread.is_alive()
    own_clickhouse.start()

    assert wait_for(60), count(settings, "SELECT count() FROM posts")
    time.sleep(1)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert count(settings, "SELECT count() FROM posts") == 60
    assert count(settings, "SELECT sum(posts) FROM posts_hourly_v") == 60
    assert metrics.INSERT_ERRORS.labels("posts", "retryable")._value.get() > errors_before
    assert result["stats"].records == 65 and result["stats"].duplicates == 5
