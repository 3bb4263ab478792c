"""The report endpoint as a trust boundary.

Pure logic (tokens, rate buckets, body decoding, the post the server builds) and, against
REAL Kafka, the server: 401 without a token, 429 with Retry-After, 4xx for every hostile
body (never a dropped connection), slow clients that hold no worker, and 40 reports that
cannot raise an alert on a calm baseline any more.
"""
import base64
import json
import select
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ingest.producer import PostProducer
from ingest.report import BadReport, ReportServer, build_report, caller_claims, decode_body
from ingest.report_auth import (Channel, RateLimiter, TokenError, TokenRegistry, load_registry,
                                load_tokens_file, parse_tokens_env)
from scoring.engine import Engine
from scoring.features import post_features
from scoring.watchlist import load_watchlist
from core.config import ReportSettings
from core.post import parse_post, post_from_dict
from yuqing.synth import calm_chatter, generate

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=CST)
APP = Channel("app", author_name="App 反馈")
OA_TOKEN = "oa-token-0123456789abcdef"
APP_TOKEN = "app-token-fedcba9876543210"
WATCHLIST = Path(__file__).resolve().parents[2] / "data" / "watchlist.sample.yaml"


# ---------------------------------------------------------------- pure logic

def test_server_sets_identity_and_keeps_claims_apart():
    fields = {"text": "  配送员 <b>态度</b>差&amp;  ", "platform": "weibo", "id": "weibo:4890123",
              "author": {"id": "media-1", "kind": "media", "followers": 10**9, "verified": True},
              "metrics": {"views": 10**9}, "reporter_id": "e1", "url": "javascript:alert(1)", "channel": "x"}
    out = build_report(fields, APP, NOW)
    assert out["text"] == "配送员 态度差&" and out["platform"] == "internal" and out["source"] == "report"
    assert out["id"].startswith("report:app:") and len(out["id"]) == len("report:app:") + 32
    assert out["author"] == {"id": "report:app", "name": "App 反馈", "kind": "user", "followers": 0,
                             "verified": False}
    assert out["channel"] == "app" and out["published_at"] == "2026-11-25T10:00:00+08:00"
    assert "metrics" not in out and "url" not in out
    assert out["claimed"]["platform"] == "weibo" and out["claimed"]["id"] == "weibo:4890123"
    assert out["claimed"]["author"]["followers"] == 10**9 and out["claimed"]["url"] == "javascript:alert(1)"
    # one author per channel: another report gets another id but the same author
    again = build_report({"text": "另一条", "reporter_id": "e2"}, APP, NOW)
    assert again["id"] != out["id"] and again["author"]["id"] == "report:app"
    # a channel that separates its reporters
    desk = Channel("oa", author_kind="official", distinct_reporters=True)
    assert build_report({"text": "x", "reporter_id": "e7"}, desk, NOW)["author"]["id"] == "report:oa:e7"
    # retries with one Idempotency-Key keep the id, within the channel's namespace only
    assert build_report({"text": "x"}, APP, NOW, "k1")["id"] == build_report({"text": "y"}, APP, NOW, "k1")["id"]
    assert build_report({"text": "x"}, desk, NOW, "k1")["id"].startswith("report:oa:")
    with pytest.raises(BadReport, match="missing required field: text"):
        build_report({"title": "x"}, APP, NOW)
    with pytest.raises(BadReport, match="text: must not be empty"):
        build_report({"text": "<p> </p>"}, APP, NOW)


def test_claims_are_bounded():
    claims = caller_claims({"text": "t", "note": "长" * 5000, "deep": {"a": {"b": {"c": 1}}},
                            "list": list(range(100)), **{f"k{i}": i for i in range(100)}})
    assert len(claims) == 32 and len(claims["note"]) == 500 and claims["deep"] == {"a": {"b": None}}
    assert len(claims["list"]) == 20 and "text" not in claims


def test_published_at_window():
    assert build_report({"text": "x", "published_at": "2026-11-25T10:04:59+08:00"}, APP, NOW)["published_at"] \
        == "2026-11-25T10:04:59+08:00"
    with pytest.raises(BadReport, match="more than 300 s ahead"):
        build_report({"text": "x", "published_at": "2026-11-25T10:50:00+08:00"}, APP, NOW)
    with pytest.raises(BadReport, match="more than 7 days old"):
        build_report({"text": "x", "published_at": "2026-11-18T09:59:00+08:00"}, APP, NOW)
    with pytest.raises(BadReport, match="not an RFC 3339 timestamp"):
        build_report({"text": "x", "published_at": "yesterday"}, APP, NOW)


@pytest.mark.parametrize("body,content_type,reason", [
    (b"[" * 5000 + b"]" * 5000, "application/json", "nested deeper than 8"),
    (b'{"text": "x", "a": ' + b"[" * 12 + b"1" + b"]" * 12 + b"}", "application/json", "nested deeper than 8"),
    (b'{"text": "x", "n": ' + b"9" * 5000 + b"}", "application/json", "5000 digits"),
    (b'{"text": "x", "n": 1e999}', "application/json", "number out of range"),
    (b'{"text": "x", "n": NaN}', "application/json", "NaN is not a JSON value"),
    (b'{"text": "\\ud800 \xe5\xbf\xab"}', "application/json", "text: lone surrogate"),
    (b'{"\\udfff": "x", "text": "y"}', "application/json", "lone surrogate"),
    ('{"text": "快送泄露"}'.encode("gb18030"), "application/json", "invalid UTF-8 at byte 10"),
    ('text=快送'.encode("big5"), "application/x-www-form-urlencoded", "invalid UTF-8"),
    (b"text=%ED%A0%80", "application/x-www-form-urlencoded", "not valid UTF-8"),
    (b"&".join(b"f%d=1" % i for i in range(100)), "application/x-www-form-urlencoded", "more than 64 fields"),
    (b'"just a string"', "application/json", "expected a JSON object, got str"),
    (b"text=x", "text/plain", "unsupported content type"),
])
def test_hostile_bodies_get_a_reason(body, content_type, reason):
    with pytest.raises(BadReport, match=reason):
        decode_body(body, content_type)


def test_chinese_bodies_decode():
    assert decode_body('{"text": "快送APP 泄露 [怒] 😡 ＡＰＰ"}'.encode(), "application/json")["text"] == "快送APP 泄露 [怒] 😡 ＡＰＰ"
    form = urllib.parse.urlencode({"text": "飛鳥出行 數據洩露", "channel": "app"}).encode()
    assert decode_body(form, "application/x-www-form-urlencoded; charset=utf-8")["text"] == "飛鳥出行 數據洩露"


def test_tokens_from_env_and_file(tmp_path):
    registry = TokenRegistry(parse_tokens_env(f"oa:{OA_TOKEN}, app:{APP_TOKEN}"))
    assert registry.authenticate(f"Bearer {OA_TOKEN}").name == "oa"
    assert registry.authenticate(f"bearer {APP_TOKEN}").name == "app"
    for bad in (None, "", OA_TOKEN, f"Basic {OA_TOKEN}", f"Bearer {OA_TOKEN}x", "Bearer ", f"Bearer {OA_TOKEN[:-1]}"):
        assert registry.authenticate(bad) is None, bad
    path = tmp_path / "tokens.yaml"
    path.write_text(f"tokens:\n  - name: oa\n    token: {OA_TOKEN}\n    author_name: 内部OA\n    author_kind: official\n"
                    f"    distinct_reporters: true\n    rate_per_s: 5\n    burst: 50\n", encoding="utf-8")
    (channel, token), = load_tokens_file(path)
    assert channel == Channel("oa", "internal", "内部OA", "official", 0, False, True, 5.0, 50) and token == OA_TOKEN
    both = load_registry(str(path), env={"YUQING_REPORT_TOKENS": f"app:{APP_TOKEN}"})
    assert sorted(both.names) == ["app", "oa"]
    with pytest.raises(TokenError, match="no report tokens"):
        load_registry("", env={})
    for text, reason in ((f"- name: oa\n  token: short\n", "at least 16"),
                         (f"- name: 'a b'\n  token: {OA_TOKEN}\n", "name must be"),
                         (f"- name: oa\n  token: {OA_TOKEN}\n  followers: -1\n", "followers"),
                         (f"- name: oa\n  token: {OA_TOKEN}\n  admin: true\n", "unknown option"),
                         (f"- name: oa\n  token: {OA_TOKEN}\n- name: oa\n  token: {APP_TOKEN}\n", "defined twice"),
                         (f"- name: oa\n  token: {OA_TOKEN}\n- name: ob\n  token: {OA_TOKEN}\n", "reuses"),
                         (f"- name: oa\n  token: [{OA_TOKEN}\n", "not valid")):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(TokenError, match=reason) as caught:
            load_registry(str(path), env={})
        assert OA_TOKEN not in str(caught.value) and APP_TOKEN not in str(caught.value)
    with pytest.raises(TokenError, match="expected name:token"):
        parse_tokens_env("justatoken")


def test_rate_limiter_buckets():
    limiter = RateLimiter(rate_per_s=2.0, burst=3, max_keys=2)
    assert [limiter.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", 0.0) == pytest.approx(0.5)
    assert limiter.take("a", 0.5) == 0.0  # one token back after 0.5 s
    assert limiter.take("b", 0.5) == 0.0  # keys are independent
    assert limiter.take("a", 0.5, rate=1.0, burst=1) == pytest.approx(1.0)
    limiter.take("c", 0.6)  # at most two keys kept: the oldest ("a"/"b") is forgotten
    assert len(limiter._buckets) == 2


def test_claims_never_reach_scoring():
    """A report's claims sit in Post.extra; every feature is the same with or without them."""
    plain = build_report({"text": "快送APP 泄露用户隐私 [怒]"}, APP, NOW)
    claimed = build_report({"text": "快送APP 泄露用户隐私 [怒]", "platform": "weibo",
                            "author": {"id": "m", "kind": "media", "followers": 10**9, "verified": True},
                            "metrics": {"views": 10**9, "reposts": 10**6}}, APP, NOW)
    claimed["id"] = plain["id"]
    a, b = post_from_dict(plain), post_from_dict(claimed)
    assert "claimed" in b.extra and b.author == a.author and b.metrics == a.metrics and b.platform == a.platform
    assert post_features(a, True, 0.1) == post_features(b, True, 0.1)


# ---------------------------------------------------------------- the server against real Kafka

def request(base, path="/reports", body=b"", *, method="POST", token=OA_TOKEN, content_type="application/json",
            headers=None):
    data = body if isinstance(body, bytes) else body.encode("utf-8")
    head = {"Content-Type": content_type, **(headers or {})}
    if token:
        head["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data if method == "POST" else None, method=method, headers=head)
    try:
        with urllib.request.urlopen(req, timeout=15) as answer:
            return answer.status, json.loads(answer.read()), answer.headers
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw.startswith(b"{") else raw.decode(), exc.headers


def raw_exchange(port, data, *, source="127.0.0.1", timeout=15.0):
    """Send bytes, read the answer until the server closes: (status, body) or (None, b"")."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0)) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    if not answer:
        return None, b""
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.fixture
def report_stack(kafka_bootstrap, kafka_topic):
    made = []

    def start(settings=ReportSettings(), clock=None, registry=None):
        topic, dlq = kafka_topic(partitions=2), kafka_topic(partitions=1)
        producer = PostProducer(kafka_bootstrap, topic, dlq, timeout_s=10, linger_ms=0)
        registry = registry or TokenRegistry(parse_tokens_env(f"oa:{OA_TOKEN},app:{APP_TOKEN}"))
        kwargs = {"clock": clock} if clock else {}
        server = ReportServer(producer, registry, settings, host="127.0.0.1", port=0, metrics_port=0,
                              **kwargs).start()
        made.append((server, producer))
        return server, topic, dlq, f"http://127.0.0.1:{server.port}"

    yield start
    for server, producer in made:
        server.shutdown()
        producer.close()


def test_reports_202_and_what_lands_in_kafka(report_stack, topic_reader):
    server, topic, dlq, base = report_stack()
    now = datetime.now(CST).replace(microsecond=0)
    status, body, _ = request(base, body=json.dumps(
        {"text": "快送APP 泄露客户手机号 [怒]", "reporter_name": "张三", "author_kind": "media", "platform": "weibo",
         "id": "weibo:4890123", "published_at": (now - timedelta(minutes=30)).isoformat()}, ensure_ascii=False))
    assert status == 202 and body["status"] == "accepted" and body["id"].startswith("report:oa:")
    json_id = body["id"]
    form = urllib.parse.urlencode({"text": "骑手把餐洒了，客服不理", "platform": "xiaohongshu"})
    status, body, _ = request(base, body=form, token=APP_TOKEN, content_type="application/x-www-form-urlencoded; charset=utf-8")
    assert status == 202 and body["id"].startswith("report:app:")
    form_id = body["id"]

    records = topic_reader(topic, expect=2)
    by_id = {r.key.decode(): json.loads(r.value) for r in records}
    assert sorted(by_id) == sorted([json_id, form_id]) and len(records) == 2
    first = by_id[json_id]
    assert first["text"] == "快送APP 泄露客户手机号 [怒]" and first["platform"] == "internal"
    assert first["source"] == "report" and first["channel"] == "oa"
    assert first["author"] == {"id": "report:oa", "name": "oa", "followers": 0, "verified": False, "kind": "user"}
    assert first["claimed"] == {"reporter_name": "张三", "author_kind": "media", "platform": "weibo",
                                "id": "weibo:4890123"}
    assert [r.timestamp for r in records if r.key.decode() == json_id] == [int((now - timedelta(minutes=30)).timestamp() * 1000)]
    assert by_id[form_id]["platform"] == "internal" and by_id[form_id]["claimed"] == {"platform": "xiaohongshu"}
    assert isinstance(parse_post(records[0].value), type(post_from_dict(first)))


def test_no_token_401_and_nothing_stored(report_stack, topic_reader):
    server, topic, dlq, base = report_stack()
    report = json.dumps({"text": "快送APP 崩了"}, ensure_ascii=False)
    for token in (None, "wrong-token-0123456789", OA_TOKEN + "x"):
        status, body, headers = request(base, body=report, token=token)
        assert status == 401 and "bearer token" in body["error"], token
        assert headers["WWW-Authenticate"].startswith("Bearer")
    status, _, _ = request(base, body=report)
    assert status == 202
    assert len(topic_reader(topic, expect=1)) == 1
    assert topic_reader(dlq, expect=0, timeout_s=2) == []  # unauthenticated bodies do not reach the DLQ


def test_hostile_bodies_get_4xx_not_a_dropped_connection(report_stack, topic_reader):
    server, topic, dlq, base = report_stack(replace(ReportSettings(), token_burst=100, address_burst=100))
    port = server.port
    auth = f"Authorization: Bearer {OA_TOKEN}\r\n".encode()

    def send(body, content_type=b"application/json", extra=b""):
        return raw_exchange(port, b"POST /reports HTTP/1.1\r\nHost: t\r\nContent-Type: " + content_type + b"\r\n"
                            + auth + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    cases = [
        (send(b"[" * 30000 + b"]" * 30000), 400, "nested deeper"),
        (send(b'{"text": "x", "n": ' + b"1" * 5000 + b"}"), 400, "5000 digits"),
        (send(b'{"text": "\\udc00"}'), 400, "lone surrogate"),
        (send('{"text": "快送"}'.encode("gb18030")), 400, "invalid UTF-8"),
        (send(b"text=%ff%fe", b"application/x-www-form-urlencoded"), 400, "not valid UTF-8"),
        (send(b"x" * 70_000), 413, "larger than 65536"),
        (send(b"text=x", b"text/plain"), 415, "unsupported content type"),
        (send(b'{"text": "x", "published_at": "2099-01-01T00:00:00Z"}'), 400, "ahead of the server's clock"),
        (raw_exchange(port, b"POST /reports HTTP/1.1\r\nHost: t\r\n" + auth + b"Transfer-Encoding: chunked\r\n"
                      b"Content-Type: application/json\r\n\r\n" + (b"8000\r\n" + b" " * 0x8000 + b"\r\n") * 3
                      + b"0\r\n\r\n"), 413, "larger than"),
        (raw_exchange(port, b"POST /reports HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"), 431, "bad HTTP"),
        (raw_exchange(port, b"GARBAGE\r\n\r\n"), 400, "bad HTTP"),
        (raw_exchange(port, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"), 404, "no such path"),
        (raw_exchange(port, b"GET /reports HTTP/1.1\r\nHost: t\r\n\r\n"), 405, "use POST"),
    ]
    for (status, body), want, reason in cases:
        assert status == want and reason in json.loads(body)["error"], (want, reason, status, body[:200])
    assert raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n") == (200, b'{"status": "ok"}')
    assert raw_exchange(port, b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n") == (200, b'{"status": "ready"}')
    dead = [json.loads(r.value) for r in topic_reader(dlq, expect=6)]
    assert len(dead) == 6 and {d["source"] for d in dead} == {"report"}  # the 400s, not 413/415/protocol errors
    assert base64.b64decode(dead[2]["raw_b64"]) == b'{"text": "\\udc00"}'
    status, text = metrics_text(server)
    assert 'yuqing_report_requests_total{status="400"} 7.0' in text  # 6 bodies and the garbage request line
    assert 'yuqing_report_requests_total{status="413"} 2.0' in text and 'yuqing_crawler_rejected_total{source="report"} 6.0' in text


def metrics_text(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as answer:
        return answer.status, answer.read().decode()


def test_rate_limits_429_with_retry_after(report_stack):
    settings = replace(ReportSettings(), token_rate_per_s=0.01, token_burst=3, address_rate_per_s=0.01, address_burst=6)
    server, topic, dlq, base = report_stack(settings)
    report = json.dumps({"text": "快送 客服不理人"}, ensure_ascii=False)
    statuses = [request(base, body=report)[0] for _ in range(4)]
    assert statuses == [202, 202, 202, 429]  # the channel's burst
    status, body, headers = request(base, body=report)
    assert status == 429 and "channel oa" in body["error"] and int(headers["Retry-After"]) >= 1
    status, _, _ = request(base, body=report, token=APP_TOKEN)  # another channel has its own bucket
    assert status == 202
    status, body, headers = request(base, body=report, token=APP_TOKEN)  # 7th request from this address
    assert status == 429 and "your address" in body["error"] and int(headers["Retry-After"]) >= 50
    status, body, headers = request(base, body=report, token=None)  # the address limit comes before auth
    assert status == 429
    _, text = metrics_text(server)
    assert 'yuqing_report_limited_total{by="token"} 2.0' in text and 'yuqing_report_limited_total{by="address"} 2.0' in text


def test_slow_clients_hold_no_worker_and_meet_the_deadline(report_stack):
    """Many connections trickling their request: a normal client is still answered at once;
    the slow ones get 408 at the deadline, or 429 beyond the per-address connection cap."""
    settings = replace(ReportSettings(), workers=2, request_deadline_s=4.0, address_connections=64)
    server, topic, dlq, base = report_stack(settings)
    # a body that stops half-way also meets the deadline
    half = socket.create_connection(("127.0.0.1", server.port), timeout=10, source_address=("127.0.0.3", 0))
    half.sendall(b"POST /reports HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nAuthorization: Bearer "
                 + OA_TOKEN.encode() + b"\r\nContent-Length: 100\r\n\r\n{\"text\":")
    slow = []
    for _ in range(150):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"POST /reports HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n")
        slow.append(sock)
    try:
        time.sleep(0.5)
        for sock in slow[::10]:
            sock.sendall(b"X-Slow: 1\r\n")
        started = time.monotonic()
        body = json.dumps({"text": "快送 正常的一条"}, ensure_ascii=False).encode()
        status, answer = raw_exchange(server.port, b"POST /reports HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                      b"Authorization: Bearer " + APP_TOKEN.encode() + b"\r\n"
                                      b"Content-Length: %d\r\n\r\n" % len(body) + body, source="127.0.0.2")
        assert status == 202 and time.monotonic() - started < 3.0
        # answered while the slow connections held by the server are still waiting for their deadline
        readable, _, _ = select.select(slow, [], [], 0)
        assert len(readable) == 150 - 64  # only the refused ones (over the per-address cap) have an answer
        answers = []
        for sock in slow:
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            answers.append(int(data.split(b" ")[1]) if data else None)
        assert answers.count(408) == 64 and answers.count(429) == 150 - 64, answers
        assert time.monotonic() - started < settings.request_deadline_s + 2
    finally:
        for sock in slow:
            sock.close()
    with half:
        assert half.recv(4096).startswith(b"HTTP/1.1 408 ")


def test_metrics_and_readiness_on_their_own_port(report_stack, kafka_bootstrap):
    server, topic, dlq, base = report_stack()
    assert request(base, "/metrics", method="GET", token=None)[0] == 404
    status, text = metrics_text(server)
    assert status == 200 and "yuqing_report_requests_total" in text
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/readyz", timeout=5) as answer:
        assert json.loads(answer.read()) == {"status": "ready"}


# ---------------------------------------------------------------- the abuse of issue 18, end to end

def crisis_text(i):
    return ["快送APP 泄露用户隐私 [怒] 太过分了", "快送 数据泄露 个人信息被卖 [怒]", "快送外卖 隐私泄露 退钱！"][i % 3] + f" #{i}"


def calm_baseline(watchlist, start, minutes):
    posts = generate([calm_chatter(b.name, start, minutes) for b in watchlist.brands], watchlist, seed=7,
                     arrival_jitter_s=20)
    return [post_from_dict(p) for p in posts]


def sentiment(posts):
    """Ground truth for the calm sample, and the reports are angry (the worst case)."""
    return [0.05 if p.source == "report" else (0.1 if p.extra["synth"]["label"] == 0 else 0.8) for p in posts]


def max_level(posts, watchlist, brand="快送"):
    result = Engine(watchlist, sentiment).run(sorted(posts, key=lambda p: p.published_at))  # as they arrive
    order = {"low": 0, "medium": 1, "high": 2}
    levels = [a.level for a in result.assessments if a.brand == brand]
    return max(levels, key=order.__getitem__, default="low")


def test_forty_reports_cannot_raise_an_alert(report_stack, topic_reader):
    """40 reports in 3 minutes claiming media authors with 10^9 followers: filed as they are
    claimed (today's behaviour) they page on-call with a high alert; filed by the server they
    count as one author with no reach, and the calm baseline stays below high."""
    watchlist = load_watchlist(WATCHLIST)
    report_at = [NOW + timedelta(seconds=4.5 * i) for i in range(40)]
    ticks = iter(report_at)
    settings = replace(ReportSettings(), token_burst=100, address_burst=100)
    server, topic, dlq, base = report_stack(settings, clock=lambda: next(ticks))
    ids = []
    for i in range(40):
        claim = {"text": crisis_text(i), "platform": "weibo", "id": f"weibo:48901{i:02d}",
                 "author": {"id": f"媒体{i}", "name": f"晨报{i}", "kind": "media", "followers": 10**9, "verified": True},
                 "metrics": {"reposts": 10**6, "views": 10**9}}
        status, body, _ = request(base, body=json.dumps(claim, ensure_ascii=False), token=APP_TOKEN)
        assert status == 202, body
        ids.append(body["id"])
    filed = [post_from_dict(json.loads(r.value)) for r in topic_reader(topic, expect=40)]
    assert sorted(p.id for p in filed) == sorted(ids)
    assert {p.author.id for p in filed} == {"report:app"} and {p.author.followers for p in filed} == {0}

    baseline = calm_baseline(watchlist, NOW - timedelta(minutes=120), 140)
    assert max_level(baseline, watchlist) == "low"
    as_claimed = [post_from_dict({**{k: v for k, v in p.to_dict().items() if k != "claimed"}, **p.extra["claimed"]})
                  for p in filed]
    assert max_level(baseline + as_claimed, watchlist) == "high"  # the attack works when claims are believed
    assert max_level(baseline + filed, watchlist) != "high"


# ---------------------------------------------------------------- the command

def test_command_refuses_to_start_without_tokens(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("YUQING_REPORT_TOKENS", "YUQING_REPORT_TOKENS_FILE")}
    done = subprocess.run([sys.executable, "-m", "yuqing", "report-server", "--port", "0"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "no report tokens" in done.stderr and done.stdout == ""
    path = tmp_path / "tokens.yaml"
    path.write_text(f"- name: oa\n  token: {OA_TOKEN}\n  burst: 0\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "yuqing", "report-server", "--tokens-file", str(path)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "burst must be a positive integer" in done.stderr and OA_TOKEN not in done.stderr
    done = subprocess.run([sys.executable, "-m", "yuqing", "report-server"], capture_output=True, text=True, timeout=60,
                          env={**env, "YUQING_REPORT_TOKENS": f"oa:{OA_TOKEN}", "YUQING_REPORT_WORKERS": "0"})
    assert done.returncode == 1 and "report.workers: must be >= 1, got 0" in done.stderr and "Traceback" not in done.stderr


def test_command_serves_with_env_tokens(kafka_bootstrap, kafka_topic, topic_reader):
    import os
    import re
    import subprocess
    import sys

    topic, dlq = kafka_topic(partitions=1), kafka_topic(partitions=1)
    env = {**os.environ, "YUQING_REPORT_TOKENS": f"app:{APP_TOKEN}"}
    process = subprocess.Popen([sys.executable, "-m", "yuqing", "report-server", "--port", "0", "--metrics-port", "0",
                                "--bootstrap", kafka_bootstrap, "--topic", topic, "--dlq-topic", dlq],
                               env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/reports", line).group(1))
        assert "1 token(s): app" in line and APP_TOKEN not in line
        status, body, _ = request(f"http://127.0.0.1:{port}", body='{"text": "快送 客服电话打不通"}', token=APP_TOKEN)
        assert status == 202 and body["id"].startswith("report:app:")
        assert len(topic_reader(topic, expect=1)) == 1
    finally:
        process.terminate()
        rest = process.communicate(timeout=30)[1]
    assert process.returncode == 0 and APP_TOKEN not in rest


def test_client_address_behind_trusted_proxies():
    from ingest.report import client_address, parse_networks

    proxies = parse_networks("10.0.0.0/8, 127.0.0.1")
    assert client_address("203.0.113.9", "1.2.3.4", proxies) == "203.0.113.9"  # not a proxy: header ignored
    assert client_address("10.1.2.3", "1.2.3.4, 198.51.100.7", proxies) == "198.51.100.7"
    assert client_address("10.1.2.3", "198.51.100.7, 10.9.9.9", proxies) == "198.51.100.7"  # skip inner proxies
    assert client_address("10.1.2.3", "garbage", proxies) == "10.1.2.3"
    assert client_address("10.1.2.3", "1.2.3.4", ()) == "10.1.2.3"  # no trusted proxies: never the header
    with pytest.raises(ValueError, match="'10.0.0/33' is not an address"):
        parse_networks("10.0.0/33")


def test_address_limit_counts_the_forwarded_client(report_stack):
    settings = replace(ReportSettings(), address_rate_per_s=0.01, address_burst=2, trusted_proxies="127.0.0.1")
    server, topic, dlq, base = report_stack(settings)
    report = json.dumps({"text": "快送 客服不理人"}, ensure_ascii=False)
    behind = [request(base, body=report, headers={"X-Forwarded-For": f"198.51.100.{i % 2}"})[0] for i in range(6)]
    assert behind == [202, 202, 202, 202, 429, 429]  # two clients, two each


def test_future_dated_report_is_refused_and_never_reaches_kafka(report_stack, topic_reader):
    """Issue 18: one report stamped 50 minutes ahead moved the job's watermark (or, past the
    broker's limit, got 503 and was retried forever). Now: 400 with the reason, nothing in posts.raw."""
    server, topic, dlq, base = report_stack()
    now = datetime.now(CST)
    ahead = json.dumps({"text": "快送APP 泄露隐私", "published_at": (now + timedelta(minutes=50)).isoformat()},
                       ensure_ascii=False)
    status, body, _ = request(base, body=ahead)
    assert status == 400 and "ahead of the server's clock" in body["error"]
    status, body, _ = request(base, body=json.dumps({"text": "快送 正常", "published_at": (now + timedelta(minutes=4)).isoformat()},
                                                    ensure_ascii=False))
    assert status == 202
    assert [r.key.decode() for r in topic_reader(topic, expect=1)] == [body["id"]]
    assert len(topic_reader(dlq, expect=1)) == 1
