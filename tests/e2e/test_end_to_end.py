"""End to end on the real test stack, no mocks: posts in, pages and dashboards out.

A seeded sample (calm chatter, a privacy crisis, a launch, a refund trickle) about four
brands whose names are unique to this run is replayed by `yuqing crawl --jsonl` into a
fresh raw topic, with two malformed records produced beside it. The product's own
processes run as subprocesses on fresh topics and a fresh ClickHouse database
(`yuqing job run`, `yuqing sink clickhouse`, `yuqing notify`). The test checks:

* the crisis is paged to a generic webhook (`yuqing notify`, Kafka path), level high;
* Prometheus (job `yuqing-job`) saw `yuqing_risk_level` = 2 for the crisis brand;
* ClickHouse holds the brand's scored posts, a high assessment, the raised alert, and the
  job's dead letters;
* every Grafana panel query returns data against the real Prometheus and ClickHouse,
  except the few listed in SKIP with the reason they cannot have data in such a run.
"""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SAMPLE_WATCHLIST = REPO / "data" / "watchlist.sample.yaml"
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
NAME_CHARS = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥"

pytestmark = [pytest.mark.flink, pytest.mark.slow, pytest.mark.timeout(480)]

# (dashboard uid, panel title, refId) -> why a healthy replay cannot give it data
SKIP = {
    ("yuqing-pipeline-health", "采集速率 Crawler fetches /s", "A"):
        "HTTP attempts; a JSONL replay makes no HTTP requests",
    ("yuqing-pipeline-health", "写入错误 Sink errors /s", "A"): "counts write failures; a healthy run has none",
    ("yuqing-pipeline-health", "写入错误 Sink errors /s", "B"): "counts insert failures; a healthy run has none",
}


def unique_brands(n: int) -> list[str]:
    """Brand names of this run only (so Prometheus series of other runs cannot pass the test)."""
    rng = random.Random(uuid.uuid4().int)
    names: list[str] = []
    while len(names) < n:
        name = "舆测" + "".join(rng.choice(NAME_CHARS) for _ in range(3))
        if name not in names:
            names.append(name)
    return names


def http_json(url: str, timeout_s: float = 5.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def prom_query(base: str, query: str, *, instant: bool = True, window_s: int = 900) -> list:
    """Result series of a PromQL query (instant, or a range over the last window_s)."""
    if instant:
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    else:
        now = time.time()
        url = f"{base}/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": query, "start": now - window_s, "end": now, "step": "5"})
    body = http_json(url)
    if not body or body.get("status") != "success":
        raise AssertionError(f"Prometheus refused {query!r}: {body}")
    return body["data"]["result"]


def wait_until(predicate, timeout_s: float, what: str, check=None, interval_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if check:
            check()
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def write_sample(path: Path, watchlist, hours: float) -> int:
    from yuqing.synth import generate, sample_scenarios

    start = (datetime.now(timezone.utc) - timedelta(hours=hours)).replace(microsecond=0)
    posts = generate(sample_scenarios(watchlist, hours=hours, start=start), watchlist, seed=11, arrival_jitter_s=20)
    with open(path, "w", encoding="utf-8") as out:
        for post in posts:
            out.write(json.dumps(post, ensure_ascii=False) + "\n")
    return len(posts)


def in_database(sql: str, database: str) -> str:
    """The dashboards name the production database `yuqing`; point them at this run's."""
    assert re.search(r"\byuqing\.\w", sql), sql
    return re.sub(r"\byuqing\.(?=\w)", f"{database}.", sql)


def test_skip_reasons_are_short_and_name_real_panels():
    from sinks.dashboards import panel_queries

    keys = {(q.dashboard, q.panel, q.ref_id) for q in panel_queries(DASHBOARDS)}
    for key, reason in SKIP.items():
        assert key in keys, f"SKIP names a panel query that no longer exists: {key}"
        assert 10 <= len(reason) <= 80, reason


def test_posts_to_pages_clickhouse_prometheus_and_dashboards(stack_settings, kafka_topic, tmp_path):
    from kafka import KafkaProducer

    from scoring.watchlist import parse_watchlist
    from sinks.clickhouse.client import connect
    from sinks.dashboards import panel_queries
    from yuqing.pipeline import Pipeline, last_line
    from yuqing.run import WebhookInbox

    s = stack_settings
    t_start = time.monotonic()
    token = uuid.uuid4().hex[:8]
    brands = unique_brands(4)
    crisis_brand = brands[0]
    topics = {
        "YUQING_KAFKA_RAW_TOPIC": kafka_topic(2, "e2e-raw"),
        "YUQING_KAFKA_SCORED_TOPIC": kafka_topic(2, "e2e-scored"),
        "YUQING_KAFKA_DLQ_TOPIC": kafka_topic(1, "e2e-dlq"),
        "YUQING_KAFKA_ASSESSMENTS_TOPIC": kafka_topic(1, "e2e-assessments"),
        "YUQING_KAFKA_ALERTS_TOPIC": kafka_topic(1, "e2e-alerts"),
    }
    database = f"e2e_{token}"
    env = dict(topics, YUQING_CLICKHOUSE_DATABASE=database)
    full_env = dict(os.environ, **env)
    migrate = subprocess.run([sys.executable, "-m", "yuqing", "db", "migrate"], env=full_env, cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr

    data = yaml.safe_load(SAMPLE_WATCHLIST.read_text(encoding="utf-8"))
    data["brands"] = [{"name": name} for name in brands]
    watchlist_path = tmp_path / "watchlist.yaml"
    watchlist_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    sample = tmp_path / "posts.jsonl"
    n_posts = write_sample(sample, parse_watchlist(data), hours=1.5)

    inbox = WebhookInbox()
    notify_yaml = tmp_path / "notify.yaml"
    notify_yaml.write_text(yaml.safe_dump({
        "dedup_window_s": 900,
        "retry": {"attempts": 1, "backoff_s": 0.1, "timeout_s": 2, "retry_every_s": 3600},
        "kafka": {"enabled": True, "min_level": "high", "auto_offset_reset": "earliest", "group_id": f"e2e-{token}"},
        "channels": [
            {"name": "oncall", "kind": "webhook", "url": f"http://127.0.0.1:{inbox.port}/hooks/oncall"},
            # a receiver that is down: its failures and retry queue are what the health panel shows
            {"name": "unreachable", "kind": "webhook", "url": "http://127.0.0.1:9/hooks/down"},
        ],
    }, allow_unicode=True), encoding="utf-8")

    pipeline = Pipeline(s, tmp_path, env=env)
    client = connect(s.clickhouse, database=database)

    def alive():
        for dead in pipeline.check():
            raise AssertionError(dead)

    try:
        pipeline.start("sink", "sink", "clickhouse")
        pipeline.start("notify", "notify", "--config", str(notify_yaml))
        pipeline.start("job", "job", "run", "--watchlist", str(watchlist_path), "--no-resume",
                       "--group-id", f"e2e-{token}", "--checkpoint-interval", "30")
        m = s.metrics
        wait_until(lambda: (http_json(f"http://{m.host}:{m.notify_port}/healthz") or {}).get("kafka") == "assigned",
                   90, "yuqing notify to join its Kafka group", alive)
        wait_until(lambda: _http_ok(f"http://{m.host}:{m.job_port}/metrics"), 180, "the scoring job", alive)
        pipeline.start("crawler", "crawl", "--jsonl", str(sample), "--follow", "--state-dir", str(tmp_path / "crawl"))
        producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap, acks="all", request_timeout_ms=15000)
        for raw in (b'{"id": "e2e:broken", "platform": "weibo", "text": ', b'{"id": "e2e:no-text", "platform": "weibo", '
                    b'"published_at": "2026-11-25T10:00:00+08:00"}'):
            producer.send(topics["YUQING_KAFKA_RAW_TOPIC"], raw, key=b"bad").get(timeout=15)
        producer.close(timeout=10)

        # 1. the page for the crisis reaches the webhook, level high
        def crisis_page():
            for message in list(inbox.messages):
                notice = message.get("notice") or {}
                if (notice.get("brand"), notice.get("category"), notice.get("level")) == (crisis_brand, "privacy", "high"):
                    return notice
            return None

        notice = wait_until(crisis_page, 180, f"a high privacy page for {crisis_brand}", alive)
        assert notice["status"] == "firing" and notice["playbook"]["title"], notice

        # 2. Prometheus scraped yuqing_risk_level = 2 for that brand from the job
        level_query = f'max_over_time(yuqing_risk_level{{job="yuqing-job", brand="{crisis_brand}"}}[15m])'
        wait_until(lambda: any(float(r["value"][1]) == 2 for r in prom_query(s.prometheus.url, level_query)),
                   60, f"yuqing_risk_level=2 for {crisis_brand} in Prometheus", alive)

        # 3. ClickHouse: scored posts, the high assessment, the raised alert, the dead letters
        def count(sql: str) -> int:
            return client.execute(sql, {"b": crisis_brand})[0][0]

        wait_until(lambda: count("SELECT count() FROM posts FINAL WHERE has(brands, %(b)s)") > 100
                   and count("SELECT count() FROM risk_assessments FINAL WHERE brand = %(b)s AND level = 'high'") > 0
                   and count("SELECT count() FROM alerts FINAL WHERE brand = %(b)s AND event = 'raised' "
                             "AND level = 'high'") > 0
                   and count("SELECT count() FROM rejects WHERE stage = 'job'") >= 2,
                   90, "posts, a high assessment, the alert and the dead letters in ClickHouse", alive)
        calm = brands[2]
        assert client.execute("SELECT countIf(level = 'high') FROM risk_assessments FINAL WHERE brand = %(b)s",
                              {"b": calm})[0][0] == 0, "a calm brand must not go high"

        # 4. every dashboard panel query returns data
        queries = [q for q in panel_queries(DASHBOARDS) if (q.dashboard, q.panel, q.ref_id) not in SKIP]
        assert len(queries) >= 15

        def empty_panels() -> list[str]:
            empty = []
            for q in queries:
                if q.datasource_kind == "prometheus":
                    rows = prom_query(s.prometheus.url, q.query, instant=q.instant)
                    has_data = any(r.get("value") or r.get("values") for r in rows)
                else:
                    has_data = bool(client.execute(in_database(q.query, database)))
                if not has_data:
                    empty.append(f"{q.dashboard} / {q.panel} [{q.ref_id}]")
            return empty

        last: list[str] = []

        def all_have_data() -> bool:
            last[:] = empty_panels()
            return not last

        try:
            wait_until(all_have_data, 90, "every dashboard panel to have data", alive, interval_s=3)
        except AssertionError:
            raise AssertionError(f"panels without data: {last}") from None
        assert inbox.count >= 1
        skipped = [q for q in panel_queries(DASHBOARDS) if (q.dashboard, q.panel, q.ref_id) in SKIP]
        print(f"e2e: {n_posts} posts; {len(queries)} panel queries with data, {len(skipped)} skipped; "
              f"{time.monotonic() - t_start:.0f} s")
    except AssertionError:
        for process in pipeline.processes:
            print(f"{process.name}: {last_line(process.log)}")
        raise
    finally:
        pipeline.stop()
        inbox.close()
        try:
            client.execute(f"DROP DATABASE IF EXISTS {database}")
        finally:
            client.disconnect()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False
