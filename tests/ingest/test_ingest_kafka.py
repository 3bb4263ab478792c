"""Crawlers into REAL Kafka: exact counts, keys and timestamps, no duplicates after restarts, DLQ."""
import base64
import json
from datetime import datetime

import yaml

from ingest.crawler import Crawler
from ingest.config import parse_crawl_config
from ingest.dedup import Deduper
from ingest.http import HttpClient
from ingest.metrics import IngestMetrics
from ingest.producer import PostProducer
from yuqing.cli import main

RSS = """<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>n</title>
<item><title>快送外卖被曝泄露用户信息</title><link>https://news.example/1</link><guid>n1</guid>
<pubDate>Wed, 25 Nov 2026 02:00:00 GMT</pubDate><description>多名用户称收到诈骗电话，怀疑快送外卖泄露了个人信息</description></item>
<item><title>快送回应</title><link>https://news.example/2</link><guid>n2</guid>
<pubDate>Wed, 25 Nov 2026 03:00:00 GMT</pubDate><description>快送官方称正在调查此事并将公布结果</description></item>
</channel></rss>"""


def api_page(items, nxt):
    return json.dumps({"data": {"list": items, "next": nxt}}, ensure_ascii=False)


def item(mid, text, minute, **extra):
    out = {"mid": mid, "text": text, "created_at": f"2026-11-25 10:{minute:02d}:00",
           "user": {"id": f"u{mid}", "screen_name": f"用户{mid}", "followers_count": 5}}
    out.update(extra)
    return out


BAD_ITEM = {"mid": "bad1", "text": "没有时间的帖子", "user": {"id": "u"}}
COPY = item("copy1", "多名用户称收到诈骗电话，怀疑快送外卖泄露了个人信息！！", 5)   # same words as n1
REPOST = item("rp1", "快送官方称正在调查此事并将公布结果", 6, retweeted_status={"mid": "900"})


def serve_api(web, pages):
    web.add("/api", pages[0][0], "application/json")
    for cursor, body in pages[1:]:
        web.add(f"/api?cursor={cursor}", body, "application/json")


def write_config(tmp_path, web):
    config = {
        "http": {"timeout_s": 2, "retries": 1, "backoff_base_s": 0.01, "min_interval_s": 0,
                 "allow_private_networks": ["127.0.0.0/8"]},
        "sources": [
            {"name": "news", "type": "rss", "url": web.url("/feed"), "platform": "news"},
            {"name": "weibo", "type": "json_api", "url": web.url("/api"), "items": "data.list",
             "paging": {"mode": "cursor", "param": "cursor", "next": "data.next"},
             "fields": {"id": "mid", "text": "text", "published_at": "created_at", "author.id": "user.id",
                        "author.name": "user.screen_name", "author.followers": "user.followers_count",
                        "repost_of": "retweeted_status.mid"}},
        ],
    }
    path = tmp_path / "crawl.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def crawl(path, bootstrap, topic, dlq, state):
    return main(["crawl", "--config", str(path), "--once", "--bootstrap", bootstrap, "--topic", topic,
                 "--dlq-topic", dlq, "--state-dir", str(state), "--metrics-port", "0"])


def test_crawl_exact_counts_keys_timestamps_dlq_and_restart(tmp_path, web, kafka_bootstrap, kafka_topic,
                                                            topic_reader):
    topic, dlq = kafka_topic(partitions=3), kafka_topic(partitions=1)
    web.add("/feed", RSS, "application/rss+xml")
    serve_api(web, [(api_page([item("1", "快送APP又崩了[怒]", 1), BAD_ITEM, COPY, REPOST], "c2"), None),
                    ("c2", api_page([item("2", "骑手态度太差了，再也不点快送外卖了", 2)], "c3")),
                    ("c3", api_page([], None))])
    config = write_config(tmp_path, web)
    state = tmp_path / "state"

    assert crawl(config, kafka_bootstrap, topic, dlq, state) == 0
    records = topic_reader(topic, expect=5)
    posts = [json.loads(r.value) for r in records]
    ids = sorted(p["id"] for p in posts)
    # n1, n2 from RSS; weibo 1, rp1 (a repost keeps its own voice), 2; COPY dropped as a text duplicate
    assert ids == ["news:n1", "news:n2", "weibo:1", "weibo:2", "weibo:rp1"]
    for record, post in zip(records, posts):
        assert record.key.decode() == post["id"]
        assert record.timestamp == int(datetime.fromisoformat(post["published_at"]).timestamp() * 1000)
    by_id = {p["id"]: p for p in posts}
    assert by_id["weibo:1"]["text"] == "快送APP又崩了[怒]" and by_id["weibo:1"]["source"] == "api"
    assert by_id["weibo:rp1"]["repost_of"] == "weibo:900"
    assert by_id["news:n1"]["published_at"] == "2026-11-25T02:00:00+00:00"

    (dead,) = [json.loads(r.value) for r in topic_reader(dlq, expect=1)]
    assert dead["reason"] == "published_at: time is missing"
    assert dead["stage"] == "ingest" and dead["source"] == "weibo"
    raw = base64.b64decode(dead["raw_b64"])
    assert json.loads(raw) == BAD_ITEM and dead["raw"] == raw.decode()

    # restart: same state, nothing new -> nothing sent again
    assert crawl(config, kafka_bootstrap, topic, dlq, state) == 0
    # one new post after the saved cursor -> exactly one more record
    web.add("/api?cursor=c3", api_page([item("3", "快送客服终于回复了", 9)], "c4"), "application/json")
    web.add("/api?cursor=c4", api_page([], None), "application/json")
    assert crawl(config, kafka_bootstrap, topic, dlq, state) == 0
    after = [json.loads(r.value)["id"] for r in topic_reader(topic, expect=6)]
    assert sorted(after) == sorted(ids + ["weibo:3"])
    assert len(topic_reader(dlq, expect=1)) == 1


def test_replay_with_bad_bytes_goes_to_dlq_exactly(tmp_path, kafka_bootstrap, kafka_topic, topic_reader):
    topic, dlq = kafka_topic(partitions=2), kafka_topic(partitions=1)
    good = [json.dumps({"id": f"weibo:{i}", "platform": "weibo", "text": f"第{i}条",
                        "published_at": f"2026-11-25T10:00:{i:02d}+08:00"}, ensure_ascii=False).encode()
            for i in range(4)]
    bad = b'{"id": "weibo:x", "platform": "weibo", "text": "\xff\xfe", "published_at": "2026"}'
    path = tmp_path / "posts.jsonl"
    path.write_bytes(b"\n".join(good[:2] + [bad] + good[2:]) + b"\n")
    args = ["crawl", "--jsonl", str(path), "--speedup", "10", "--bootstrap", kafka_bootstrap, "--topic", topic,
            "--dlq-topic", dlq, "--state-dir", str(tmp_path / "s"), "--metrics-port", "0"]
    assert main(args) == 0
    assert main(args) == 0  # the saved offset: a second run sends nothing
    records = topic_reader(topic, expect=4)
    assert sorted(r.key for r in records) == [f"weibo:{i}".encode() for i in range(4)]
    (dead,) = [json.loads(r.value) for r in topic_reader(dlq, expect=1)]
    assert base64.b64decode(dead["raw_b64"]) == bad
    assert dead["reason"] == f"invalid UTF-8 at byte {bad.index(0xFF)}" and "\ufffd" in dead["raw"]
    assert main(args + ["--from-start"]) == 0  # replaying again is explicit; dedup still holds the ids
    assert len(topic_reader(topic, expect=4)) == 4


def test_failed_delivery_is_counted_and_nothing_is_lost(tmp_path, web, kafka_bootstrap, kafka_topic,
                                                        topic_reader):
    web.add("/feed", RSS, "application/rss+xml")
    config = parse_crawl_config({"http": {"min_interval_s": 0, "timeout_s": 2, "allow_private_networks": ["127.0.0.0/8"]},
                                 "sources": [{"name": "news", "type": "rss", "url": web.url("/feed")}]})
    state = tmp_path / "state"
    metrics = IngestMetrics()
    broken = PostProducer(kafka_bootstrap, "bad topic name!", "also bad!", timeout_s=5)
    try:
        crawler = Crawler(config.sources, broken, HttpClient(config.http), state, metrics,
                          Deduper(config.dedup, state / "dedup.json"))
        (result,) = crawler.run_once()
    finally:
        broken.close()
    assert result.error and result.produced == 0
    assert metrics.registry.get_sample_value("yuqing_crawler_produce_failures_total", {"source": "news"}) >= 1
    assert metrics.registry.get_sample_value("yuqing_crawler_errors_total",
                                             {"source": "news", "status": "produce"}) == 1
    assert not (state / "cursors" / "news.json").exists()

    topic, dlq = kafka_topic(partitions=2), kafka_topic(partitions=1)
    good = PostProducer(kafka_bootstrap, topic, dlq, timeout_s=10)
    try:
        crawler = Crawler(config.sources, good, HttpClient(config.http), state, metrics,
                          Deduper(config.dedup, state / "dedup.json"))
        (result,) = crawler.run_once()
    finally:
        good.close()
    assert result.error is None and result.produced == 2
    assert sorted(r.key for r in topic_reader(topic, expect=2)) == [b"news:n1", b"news:n2"]


def test_crawler_metrics(tmp_path, web, kafka_bootstrap, kafka_topic):
    web.sequence("/feed", [(500, "text/plain", "boom", 0), (200, "application/rss+xml", RSS, 0)])
    web.add("/slow", RSS, "application/rss+xml", delay_s=1.0)
    config = parse_crawl_config({
        "http": {"min_interval_s": 0, "timeout_s": 0.3, "retries": 1, "backoff_base_s": 0.01,
                 "allow_private_networks": ["127.0.0.0/8"]},
        "sources": [{"name": "news", "type": "rss", "url": web.url("/feed")},
                    {"name": "slow", "type": "rss", "url": web.url("/slow")}]})
    topic, dlq = kafka_topic(partitions=1), kafka_topic(partitions=1)
    metrics = IngestMetrics()
    producer = PostProducer(kafka_bootstrap, topic, dlq, timeout_s=10)
    try:
        crawler = Crawler(config.sources, producer, HttpClient(config.http), tmp_path, metrics)
        results = {r.source: r for r in crawler.run_once()}
    finally:
        producer.close()
    assert results["news"].produced == 2 and results["slow"].error
    sample = metrics.registry.get_sample_value
    assert sample("yuqing_crawler_requests_total", {"source": "news", "status": "500"}) == 1
    assert sample("yuqing_crawler_requests_total", {"source": "news", "status": "200"}) == 1
    assert sample("yuqing_crawler_fetched_total", {"source": "news"}) == 2
    assert sample("yuqing_crawler_produced_total", {"source": "news"}) == 2
    assert sample("yuqing_crawler_errors_total", {"source": "slow", "status": "timeout"}) == 1
    assert sample("yuqing_crawler_requests_total", {"source": "slow", "status": "timeout"}) == 2
    assert sample("yuqing_crawler_last_success_timestamp_seconds", {"source": "news"}) > 0
    assert sample("yuqing_crawler_last_success_timestamp_seconds", {"source": "slow"}) is None
    lag = sample("yuqing_crawler_lag_seconds", {"source": "news"})
    assert lag > 0 and abs(lag - (datetime.now().timestamp() - 1795575600)) < 60


def test_a_post_kafka_refuses_goes_to_the_dlq_and_the_cursor_moves(tmp_path, web, kafka_bootstrap, kafka_topic,
                                                                   topic_reader):
    """One post too large for the broker must not hold its source still forever (issue #17)."""
    # within the contract (text <= 200,000 chars, title unbounded) but ~1.1 MB as a record:
    # over the producer's 1 MB request limit
    huge = item("big", "快送" * 95_000, 3, title="外卖" * 95_000)
    too_long = item("long", "快" * 300_000, 2)   # refused by the contract; its dead letter is cut to size
    serve_api(web, [(api_page([item("1", "快送APP又崩了[怒]", 1), huge, too_long, item("2", "骑手态度差", 4)],
                              None), None)])
    config = parse_crawl_config({"http": {"min_interval_s": 0, "timeout_s": 5, "max_body_bytes": 8 << 20,
                                          "allow_private_networks": ["127.0.0.0/8"]},
                                 "sources": [{"name": "weibo", "type": "json_api", "url": web.url("/api"),
                                              "items": "data.list", "fields": {"id": "mid", "text": "text",
                                                                               "title": "title",
                                                                               "published_at": "created_at"}}]})
    topic, dlq = kafka_topic(partitions=1), kafka_topic(partitions=1)
    state = tmp_path / "state"
    producer = PostProducer(kafka_bootstrap, topic, dlq, timeout_s=10)
    try:
        crawler = Crawler(config.sources, producer, HttpClient(config.http), state, IngestMetrics(),
                          Deduper(config.dedup, state / "dedup.json"), log=lambda _m: None)
        (result,) = crawler.run_once()
    finally:
        producer.close()
    assert result.error is None and result.produced == 2 and result.rejected == 2
    assert sorted(r.key for r in topic_reader(topic, expect=2)) == [b"weibo:1", b"weibo:2"]
    dead = {json.loads(r.value)["reason"].split(":")[0]: json.loads(r.value) for r in topic_reader(dlq, expect=2)}
    assert len(dead) == 2
    refused = next(d for d in dead.values() if "MessageSizeTooLarge" in d["reason"])
    assert '"id":"weibo:big"' in refused["raw"][:100] and "raw cut to" in refused["reason"]
    contract = next(d for d in dead.values() if "longer than" in d["reason"])
    assert len(base64.b64decode(contract["raw_b64"])) <= 128 * 1024 and "raw cut to" in contract["reason"]
    assert json.loads((state / "cursors" / "weibo.json").read_text())["newest"] == "2026-11-25T10:04:00+08:00"
