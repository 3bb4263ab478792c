"""The report endpoint against REAL Kafka: 202 with the id (and the post in Kafka), 400 with the reason."""
import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from ingest.producer import PostProducer
from ingest.report import BadReport, ReportServer, build_report

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=8)))


def post(url, body, content_type="application/json", headers=None):
    data = body if isinstance(body, bytes) else body.encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=15) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_build_report_unit():
    fields = {"text": "  配送员 <b>态度</b>差&amp;  ", "channel": "app", "reporter_id": "e1"}
    out = build_report(fields, NOW, idempotency_key="abc")
    assert out["text"] == "配送员 态度差&" and out["platform"] == "internal" and out["source"] == "report"
    assert out["published_at"] == "2026-11-25T10:00:00+08:00" and out["channel"] == "app"
    assert out["author"] == {"id": "e1", "name": None, "kind": "user"}
    assert out["id"] == build_report(fields, NOW, idempotency_key="abc")["id"]  # retries keep the id
    assert build_report({"text": "x", "id": "T-1"}, NOW)["id"] == "report:T-1"
    with pytest.raises(BadReport, match="missing required field: text"):
        build_report({"title": "x"}, NOW)
    with pytest.raises(BadReport, match="text: must not be empty"):
        build_report({"text": "<p> </p>"}, NOW)


@pytest.fixture
def report_server(kafka_bootstrap, kafka_topic):
    topic, dlq = kafka_topic(partitions=2), kafka_topic(partitions=1)
    producer = PostProducer(kafka_bootstrap, topic, dlq, timeout_s=10, linger_ms=0)
    server = ReportServer(producer, "127.0.0.1", 0).start()
    yield server, topic, dlq, f"http://127.0.0.1:{server.port}"
    server.shutdown()
    producer.close()


def test_reports_202_and_400_and_what_lands_in_kafka(report_server, topic_reader):
    server, topic, dlq, base = report_server
    status, body = post(base + "/reports", json.dumps(
        {"text": "快送APP 泄露客户手机号 [怒]", "channel": "oa", "reporter_name": "张三",
         "published_at": "2026-11-25T09:30:00+08:00", "author_kind": "official"}, ensure_ascii=False))
    assert status == 202 and body["status"] == "accepted" and body["id"].startswith("report:")
    json_id = body["id"]
    form = urllib.parse.urlencode({"text": "骑手把餐洒了，客服不理", "platform": "xiaohongshu", "channel": "app"})
    status, body = post(base + "/reports", form, "application/x-www-form-urlencoded; charset=utf-8")
    assert status == 202
    form_id = body["id"]

    bad_json = b'{"text": "unterminated'
    status, body = post(base + "/reports", bad_json)
    assert status == 400 and body["error"].startswith("invalid JSON: Unterminated string")
    bad_time = json.dumps({"text": "x", "published_at": "yesterday"})
    assert post(base + "/reports", bad_time) == (400, {"error": "published_at: not an RFC 3339 timestamp: 'yesterday'"})
    assert post(base + "/reports", json.dumps({"title": "t"})) == (400, {"error": "missing required field: text"})
    assert post(base + "/reports", "text=x", "text/plain")[0] == 415
    assert post(base + "/nowhere", "{}")[0] == 404

    records = topic_reader(topic, expect=2)
    by_id = {r.key.decode(): json.loads(r.value) for r in records}
    assert sorted(by_id) == sorted([json_id, form_id]) and len(records) == 2
    first = by_id[json_id]
    assert first["text"] == "快送APP 泄露客户手机号 [怒]" and first["platform"] == "internal"
    assert first["source"] == "report" and first["channel"] == "oa"
    assert first["author"]["name"] == "张三" and first["author"]["kind"] == "official"
    assert [r.timestamp for r in records if r.key.decode() == json_id] == [1795570200000]
    assert by_id[form_id]["platform"] == "xiaohongshu"

    dead = [json.loads(r.value) for r in topic_reader(dlq, expect=3)]
    assert len(dead) == 3 and {d["stage"] for d in dead} == {"ingest"} and {d["source"] for d in dead} == {"report"}
    assert base64.b64decode(dead[0]["raw_b64"]) == bad_json
    assert dead[1]["reason"] == "published_at: not an RFC 3339 timestamp: 'yesterday'"

    status, text = get(base + "/metrics")
    assert status == 200
    assert 'yuqing_report_requests_total{status="202"} 2.0' in text
    assert 'yuqing_report_requests_total{status="400"} 3.0' in text
    assert 'yuqing_crawler_produced_total{source="report"} 2.0' in text
    assert 'yuqing_crawler_rejected_total{source="report"} 3.0' in text


def test_healthz_and_oversized_bodies(report_server):
    _server, _topic, _dlq, base = report_server
    assert get(base + "/healthz") == (200, '{"status": "ok"}')
    status, body = post(base + "/reports", json.dumps({"text": "x" * 70_000}))
    assert status == 413 and "larger than" in body["error"]
