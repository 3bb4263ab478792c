"""The PyFlink job (local mini-cluster) gives exactly the reference engine's results,
from a file (`yuqing replay`) and live from real Kafka, and routes bad records to the DLQ."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scoring.engine import Engine, text_scorer
from scoring.watchlist import load_watchlist
from core.post import Post, parse_post
from yuqing.synth import generate, sample_scenarios

REPO = Path(__file__).resolve().parents[2]
WATCHLIST = REPO / "data" / "watchlist.sample.yaml"
BAD_LINES = [
    b'{"id": "bad:1", "platform": "weibo", "text": "truncated',
    b'{"id": "bad:2", "platform": "weibo", "published_at": "2026-11-25T09:00:00+08:00"}',
    b'{"id": "bad:3", "platform": "weibo", "text": ["not", "a", "string"], "published_at": "2026-11-25T09:00:00+08:00"}',
    b"\xff\xfe\x00 not utf-8",
]
FIELDS = ("brand", "category", "window_start", "window_end", "posts", "negative_ratio", "influence",
          "severity", "volatility", "risk_score", "level")

pytestmark = [pytest.mark.flink, pytest.mark.slow]


@pytest.fixture(scope="module")
def sample_posts() -> list[dict]:
    """Two hours of the bundled scenario mix (a crisis among calm chatter), seeded."""
    watchlist = load_watchlist(WATCHLIST)
    return generate(sample_scenarios(watchlist, hours=2.0), watchlist, seed=11, arrival_jitter_s=20)


@pytest.fixture(scope="module")
def reference(sample_posts):
    """What the plain-Python engine says about the same posts, with the same model."""
    from scoring.sentiment import load_model

    model = load_model()
    posts = [p for p in (parse_post(json.dumps(d, ensure_ascii=False)) for d in sample_posts) if isinstance(p, Post)]
    posts.sort(key=lambda p: p.published_ms)
    result = Engine(load_watchlist(WATCHLIST), text_scorer(model.predict_proba)).run(posts)
    assessments = {(a.brand, a.category, a.window_end_ms): a.to_dict() for a in result.assessments}
    return result, {(d["brand"], d["category"], d["window_end"]): d for d in assessments.values()}


def _assert_same(expected: dict, got: list[dict]) -> None:
    by_key = {(d["brand"], d["category"], d["window_end"]): d for d in got}
    assert len(by_key) == len(got), "duplicate assessments for one key and window"
    assert set(by_key) == set(expected)
    for key, want in expected.items():
        for field in FIELDS:
            have = by_key[key][field]
            if isinstance(want[field], float):
                assert have == pytest.approx(want[field], abs=1e-9), (key, field)
            else:
                assert have == want[field], (key, field)


def test_replay_command_matches_the_reference_engine(tmp_path, sample_posts, reference):
    result, expected = reference
    lines = [json.dumps(p, ensure_ascii=False).encode() for p in reversed(sample_posts)]  # any order
    lines[10:10] = BAD_LINES
    (tmp_path / "posts.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    run = subprocess.run(
        [sys.executable, "-m", "yuqing", "replay", "--input", str(tmp_path / "posts.jsonl"),
         "--watchlist", str(WATCHLIST), "--alerts", str(tmp_path / "alerts.jsonl"),
         "--dlq", str(tmp_path / "dlq.jsonl")],
        capture_output=True, timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    got = [json.loads(line) for line in run.stdout.decode().splitlines()]
    assert got and all(set(FIELDS) <= set(d) for d in got)
    _assert_same(expected, got)
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    # the same incident records; the order across brands is the engine's or Flink's own
    assert sorted(_incident_view(a) for a in alerts) == sorted(_incident_view(r) for r in result.incidents)
    assert len([a for a in alerts if a["kind"] != "closed"]) == len(result.alerts)
    assert any(a["level"] == "high" for a in alerts)
    dlq = [json.loads(line) for line in (tmp_path / "dlq.jsonl").read_text().splitlines()]
    assert sorted(d["raw_b64"] for d in dlq) == sorted(__import__("base64").b64encode(b).decode() for b in BAD_LINES)
    assert all(d["reason"] and d["stage"] == "job" for d in dlq)
    assert "4 rejected records" in run.stderr.decode()


def _incident_view(a: dict) -> tuple:
    """What an alerts record says about its incident (scoring/incidents.py)."""
    return (a["brand"], a["category"], a["at"], a["level"], a["event"], a["kind"], a["incident_id"],
            a["incident_level"], tuple((c["category"], c["level"]) for c in a["categories"]))


def _read_topic(bootstrap: str, topic: str, expect: int | None = None, timeout_s: float = 30) -> list[bytes]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000, group_id=None)
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = [r.value for r in consumer]
            values.extend(batch)
            if expect is None or len(values) >= expect:
                break
    finally:
        consumer.close()
    return values


def test_live_job_on_kafka_matches_the_reference_and_fills_every_topic(stack_settings, kafka_topic, sample_posts,
                                                                      reference):
    from kafka import KafkaProducer

    from scoring.job import JobConfig, run_live

    result, expected = reference
    raw_topic = kafka_topic(partitions=3, prefix="job-raw")
    outputs = {name: kafka_topic(partitions=1, prefix=f"job-{name}") for name in ("dlq", "scored", "assessments", "alerts")}
    producer = KafkaProducer(bootstrap_servers=stack_settings.kafka.bootstrap, acks="all", enable_idempotence=True)
    from datetime import datetime

    for i, post in enumerate(sample_posts):
        ts = int(datetime.fromisoformat(post["published_at"]).timestamp() * 1000)
        producer.send(raw_topic, key=post["id"].encode(), value=json.dumps(post, ensure_ascii=False).encode(),
                      timestamp_ms=ts)
        if i == 100:
            for bad in BAD_LINES:
                producer.send(raw_topic, key=b"bad", value=bad, timestamp_ms=ts)
    producer.flush(timeout=30)
    producer.close()

    cfg = JobConfig.build(stack_settings, WATCHLIST, topic=raw_topic, metrics_port=0, udf_metrics_port=0, checkpoint_interval_s=5)
    cfg = __import__("dataclasses").replace(cfg, incidents=True)  # the alerts topic speaks incidents
    run_live(stack_settings, cfg, bounded=True, group_id=f"g-{raw_topic}", topics=outputs)

    bootstrap = stack_settings.kafka.bootstrap
    dlq = [json.loads(v) for v in _read_topic(bootstrap, outputs["dlq"], expect=len(BAD_LINES))]
    assert sorted(d["raw_b64"] for d in dlq) == sorted(__import__("base64").b64encode(b).decode() for b in BAD_LINES)
    assert {d["topic"] for d in dlq} == {raw_topic} and all(d["offset"] is not None for d in dlq)
    scored = _read_topic(bootstrap, outputs["scored"], expect=result.posts_matched)
    assert len(scored) == result.posts_matched
    got = [json.loads(v) for v in _read_topic(bootstrap, outputs["assessments"], expect=len(expected))]
    # the sample is history (event times long before the job's clock): no early firing
    assert not [d for d in got if d.get("provisional")]
    _assert_same(expected, got)
    alerts = [json.loads(v) for v in _read_topic(bootstrap, outputs["alerts"], expect=len(result.incidents))]
    assert sorted(_incident_view(a) for a in alerts) == sorted(_incident_view(r) for r in result.incidents)
    high = [a for a in alerts if a["level"] == "high" and a["event"] == "raised"]
    assert high and high[0]["examples"] and high[0]["playbook"]["level"] == "high"
