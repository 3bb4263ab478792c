"""Each service of the running test stack does its job, through the clients Yuqing uses."""
from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def _posts(n: int) -> list[dict]:
    base = datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    return [
        {
            "id": f"weibo:{i}",
            "platform": "weibo",
            "text": f"快送今天又崩了 #{i} [怒]",
            "published_at": (base + timedelta(seconds=i)).isoformat(),
        }
        for i in range(n)
    ]


def _produce(bootstrap: str, topic: str, posts: list[dict]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             max_block_ms=10_000, request_timeout_ms=10_000)
    try:
        for post in posts:
            ts = int(datetime.fromisoformat(post["published_at"]).timestamp() * 1000)
            producer.send(topic, key=post["id"].encode(), value=json.dumps(post, ensure_ascii=False).encode(),
                          timestamp_ms=ts)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def _consumer(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    return KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=False, consumer_timeout_ms=5_000, request_timeout_ms=30_000)


@pytest.fixture(scope="module")
def thousand_posts_topic(stack_settings):
    """1,000 posts on a fresh 2-partition topic, shared by the Kafka and Flink tests."""
    from yuqing.stack.kafka_admin import ensure_topics

    topic = f"t-foundation-{int(time.time() * 1000)}"
    ensure_topics(stack_settings, {topic: 2})
    _produce(stack_settings.kafka.bootstrap, topic, _posts(1000))
    return topic


def test_consumer_group_reads_everything_and_resumes_from_committed_offsets(kafka_bootstrap, thousand_posts_topic):
    first = _consumer(kafka_bootstrap, thousand_posts_topic, "g-resume")
    seen: list[str] = []
    for record in first:
        seen.append(json.loads(record.value)["id"])
        if len(seen) == 400:
            break
    first.commit()
    first.close()

    second = _consumer(kafka_bootstrap, thousand_posts_topic, "g-resume")
    rest = [json.loads(record.value)["id"] for record in second]
    partitions = [TopicPartition(thousand_posts_topic, p) for p in second.partitions_for_topic(thousand_posts_topic)]
    second.close()

    assert len(partitions) == 2
    assert len(seen) + len(rest) == 1000
    assert set(seen).isdisjoint(rest)
    assert set(seen) | set(rest) == {f"weibo:{i}" for i in range(1000)}


@pytest.mark.flink
@pytest.mark.slow
def test_pyflink_job_reads_the_posts_through_the_kafka_connector(stack_settings, thousand_posts_topic):
    from pyflink.common import Types, WatermarkStrategy
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer, KafkaSource

    from scoring.flink_env import stream_env

    env = stream_env(stack_settings, parallelism=1)
    source = (
        KafkaSource.builder()
        .set_bootstrap_servers(stack_settings.kafka.bootstrap)
        .set_topics(thousand_posts_topic)
        .set_group_id("g-flink-count")
        .set_starting_offsets(KafkaOffsetsInitializer.earliest())
        .set_bounded(KafkaOffsetsInitializer.latest())
        .set_value_only_deserializer(SimpleStringSchema())
        .build()
    )
    stream = env.from_source(source, WatermarkStrategy.no_watermarks(), "posts.raw").uid("src")
    ids = stream.map(lambda raw: json.loads(raw)["id"], output_type=Types.STRING()).name("parse").uid("parse")
    with ids.execute_and_collect("foundation-count") as results:
        collected = list(results)
    assert len(collected) == 1000
    assert len(set(collected)) == 1000


def test_clickhouse_answers_through_clickhouse_driver(clickhouse_settings):
    from clickhouse_driver import Client

    ch = clickhouse_settings.clickhouse
    client = Client(host=ch.host, port=ch.port, user=ch.user, password=ch.admin_password,
                    connect_timeout=ch.connect_timeout_s, send_receive_timeout=ch.send_receive_timeout_s)
    try:
        assert client.execute("SELECT 1 + %(x)s", {"x": 41}) == [(42,)]
        assert client.execute("SELECT %(s)s", {"s": "舆情 😡"}) == [("舆情 😡",)]
    finally:
        client.disconnect()


def _prom_query(url: str, query: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/query?query={urllib.parse.quote(query)}", timeout=5) as resp:
        return json.load(resp)["data"]["result"]


def test_prometheus_scrapes_a_prometheus_client_exporter(stack_settings, prometheus_url):
    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    registry = CollectorRegistry()
    Gauge("yuqing_foundation_probe", "set by the foundation test", registry=registry).set(7)
    server, thread = start_http_server(stack_settings.metrics.job_port, addr="127.0.0.1", registry=registry)
    try:
        deadline = time.monotonic() + 30
        up: list[dict] = []
        while time.monotonic() < deadline:
            up = _prom_query(prometheus_url, 'up{job="yuqing-job"} == 1')
            if up:
                break
            time.sleep(0.5)
        assert up, "Prometheus never saw the exporter up"
        deadline = time.monotonic() + 10
        value: list[dict] = []
        while time.monotonic() < deadline and not value:
            value = _prom_query(prometheus_url, "yuqing_foundation_probe")
            time.sleep(0.2)
        assert value and value[0]["value"][1] == "7"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_alertmanager_accepts_an_alert(alertmanager_url):
    alert = [{
        "labels": {"alertname": "YuqingFoundationProbe", "severity": "info", "brand": "快送"},
        "annotations": {"summary": "foundation test"},
        "startsAt": datetime.now(timezone.utc).isoformat(),
    }]
    request = urllib.request.Request(f"{alertmanager_url}/api/v2/alerts", data=json.dumps(alert).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 200
    with urllib.request.urlopen(f"{alertmanager_url}/api/v2/alerts?filter=alertname%3D%22YuqingFoundationProbe%22",
                                timeout=5) as resp:
        alerts = json.load(resp)
    assert [a["labels"]["brand"] for a in alerts] == ["快送"]


def test_broker_retains_by_size_not_by_record_age(kafka_bootstrap, thousand_posts_topic):
    """Record timestamps are the posts' published_at: an age limit would delete a backfill of
    old posts (and every fixed-date test sample, a week later) before it is scored."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    futures = admin.describe_configs([ConfigResource("topic", thousand_posts_topic)], request_timeout=10)
    entries = next(iter(futures.values())).result(timeout=15)
    assert entries["retention.ms"].value == "-1"
    assert int(entries["retention.bytes"].value) > 0
