"""Bad and weird input through the live scoring job on real Kafka: every record is
accounted for - in posts.dlq with its reason, or scored into posts.scored, or (valid but
naming no brand) counted as unmatched - and the job finishes its bounded run.

Timestamps far in the past or future are valid RFC 3339, so the contract accepts them and
the job scores them (they land in posts.scored with their published_at). The job windows
by the Kafka record timestamp; the broker (Kafka 4, log.message.timestamp.after.max.ms =
1 h) refuses records stamped more than an hour ahead, so a far-future post can only arrive
with a sane record timestamp and never drags the watermark into the future.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone

import pytest

from core.post import DLQ_MAX_RAW_BYTES
from tests.fixtures.jobs import job_args, new_run
from tests.fixtures.streams import REPO, WATCHLIST, event_ms, producer, read_json_topic

pytestmark = [pytest.mark.flink, pytest.mark.slow]

GOOD_TS = "2026-11-25T08:15:00+08:00"  # inside the ordinary traffic below


def _post(pid: str, text: str = "快送APP 泄露了我的个人信息 [怒]", **fields) -> dict:
    post = {"id": pid, "platform": "weibo", "text": text, "published_at": GOOD_TS,
            "author": {"id": "u1", "name": "路过的小猫", "followers": 10, "kind": "user"}}
    post.update(fields)
    return post


def _raw(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _without(field: str) -> bytes:
    post = _post(f"bad:no-{field}")
    del post[field]
    return _raw(post)


# (label, value bytes or None for a tombstone, reason fragment expected in the DLQ)
BAD = [
    ("truncated JSON", b'{"id": "bad:trunc", "platform": "weibo", "text": "quote never ends', "invalid JSON"),
    ("empty value", b"", "invalid JSON"),
    ("tombstone", None, "invalid JSON"),
    ("not an object", b'["bad:list", "weibo"]', "not a JSON object"),
    ("UTF-8 BOM", b"\xef\xbb\xbf" + _raw(_post("bad:bom")), "invalid JSON"),
    ("nested too deeply", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("invalid UTF-8", b'{"id": "bad:utf8", "platform": "weibo", "text": "\xff\xfe\xfd", '
                      b'"published_at": "2026-11-25T09:00:00+08:00"}', "invalid UTF-8"),
    ("Latin-1 bytes", "快送 café".encode("utf-8")[:6] + "é".encode("latin-1"), "invalid UTF-8"),
    ("text is a list", _raw(_post("bad:text-list", text=["快送", "泄露"])), "text: expected a string"),
    ("id is a number", _raw(_post(12345)), "id: expected a string"),
    ("platform is an object", _raw(_post("bad:platform", platform={"name": "weibo"})), "platform: expected a string"),
    ("published_at is a number", _raw(_post("bad:ts-num", published_at=1795600000)), "published_at: expected"),
    ("published_at without offset", _raw(_post("bad:ts-naive", published_at="2026-11-25 09:00:00")), "lacks a UTC offset"),
    ("published_at not a time", _raw(_post("bad:ts-junk", published_at="yesterday-ish")), "not an RFC 3339"),
    ("likes is a string", _raw(_post("bad:likes", metrics={"likes": "many"})), "metrics.likes"),
    ("likes is NaN", _raw(_post("bad:nan"))[:-1] + b', "metrics": {"likes": NaN}}', "metrics.likes"),
    ("negative followers", _raw(_post("bad:followers", author={"followers": -5})), "author.followers"),
    ("verified is a string", _raw(_post("bad:verified", author={"verified": "yes"})), "author.verified"),
    ("unknown author kind", _raw(_post("bad:kind", author={"kind": "alien"})), "author.kind"),
    ("author is a list", _raw(_post("bad:author", author=["u1"])), "author: expected an object"),
    ("followers beyond any account", _raw(_post("bad:big", author={"followers": 10 ** 30})), "author.followers: larger"),
    ("title is a number", _raw(_post("bad:title", title=42)), "title: expected a string"),
    ("empty id", _raw(_post("   ")), "id: must not be empty"),
    ("missing text", _without("text"), "missing required field(s): text"),
    ("missing published_at", _without("published_at"), "missing required field(s): published_at"),
    ("missing id", _without("id"), "missing required field(s): id"),
    ("null platform", _raw(_post("bad:null-platform", platform=None)), "missing required field(s): platform"),
    ("lone surrogate escape", b'{"id": "bad:surrogate", "platform": "weibo", "text": "\\u5feb\\u9001 \\ud800 '
                              b'\\u6cc4\\u9732", "published_at": "2026-11-25T08:15:00+08:00"}', "lone surrogate"),
    ("1 MB text", _raw(_post("bad:1mb", text="快送泄露" + "a" * (1 << 20))), "text: longer than 200000"),
]


def _weird() -> list[tuple[str, dict, int | None]]:
    """(label, valid post naming a brand, record timestamp: None = published_at, 0 = amid
    the ordinary traffic, as a producer that does not copy published_at would send it)."""
    return [
        ("HTML", _post("weird:html", text="<script>alert('x')</script><b>快送</b> 泄露 &amp; &lt;div&gt; "
                                            "<a href=\"javascript:void(0)\">隐私</a>"), None),
        ("emoji flood", _post("weird:emoji", text="快送外卖 崩了 " + "😡🤬💢👍🏻👨‍👩‍👧" * 4000), None),
        ("control characters", _post("weird:ctrl\x1d\x1e\x1f", text="快送\x00\x01\x07\x1b\x1d\x1e\x1f泄露\u200b\u202e隐私",
                                     author={"id": "u\x1f2", "name": "名\x1d字\x1e", "kind": "kol"}), None),
        ("text at the length cap", _post("weird:long", text="快送隐私泄露" + "长" * 199_990), None),
        ("all-ASCII JSON: escaped surrogate pairs", _post("weird:ascii", text="快送 😡🤬 泄露"), None),
        ("Weibo emoticons and repost chain", _post("weird:repost", text="//@科技老王: 快送 [怒][怒] 泄露 "
                                                    "https://t.cn/xyz #快送泄露#", repost_of="weibo:1"), None),
        ("far past", _post("weird:past", published_at="1990-01-01T00:00:00+08:00"), None),
        ("epoch", _post("weird:epoch", published_at="1970-01-01T00:00:00Z"), None),
        ("far future, sane record time", _post("weird:future", published_at="2199-12-31T23:59:59+08:00"), 0),
        ("unknown extra fields", _post("weird:extra", extra={"nested": [1, {"a": None}]}, lang=None), None),
    ]


def _causes(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").splitlines()
    return "\n".join([l for l in lines if "Caused by" in l or "Error" in l][-12:] + lines[-5:])


def _b64(value: bytes | None) -> str:
    """The dead letter's raw_b64: the exact bytes, or the head of a huge record."""
    return base64.b64encode((value or b"")[:DLQ_MAX_RAW_BYTES]).decode()


UNMATCHED = [_post(f"plain:{i}", text=f"今天天气不错，出去走走 {i}") for i in range(5)]


def test_every_bad_record_is_dead_lettered_or_scored_and_the_job_finishes(stack_settings, tmp_path):
    from kafka.errors import InvalidTimestampError

    from scoring.matching import Matcher
    from scoring.watchlist import load_watchlist
    from core.post import Post, parse_post
    from yuqing.synth import calm_chatter, crisis, generate, DEFAULT_START

    run = new_run(stack_settings, tmp_path, "badin", partitions=3)
    raw_topic = run.topics["raw"]
    bootstrap = stack_settings.kafka.bootstrap

    # some ordinary traffic around the bad records, so windows and assessments happen too
    watchlist = load_watchlist(WATCHLIST)
    normal = generate([calm_chatter("快送", DEFAULT_START, 30, per_min=2.0),
                       crisis("快送", "privacy", DEFAULT_START, minutes=30, peak_per_min=10, peak_at=20)],
                      watchlist, seed=5)
    weird = _weird()
    base_ms = event_ms(normal[len(normal) // 2])

    out = producer(bootstrap)
    sent: list[tuple[str, bytes | None]] = []  # (label, value) of everything produced
    try:
        for post in normal[: len(normal) // 2]:
            out.send(raw_topic, key=post["id"].encode(), value=_raw(post), timestamp_ms=event_ms(post))
        for label, value, _ in BAD:
            out.send(raw_topic, key=label.encode(), value=value, timestamp_ms=base_ms)
            sent.append((label, value))
        for label, post, record_ms in weird:
            value = json.dumps(post).encode("ascii") if post["id"] == "weird:ascii" else _raw(post)
            ts = base_ms if record_ms == 0 else event_ms(post)
            out.send(raw_topic, key=label.encode(), value=value, timestamp_ms=max(ts, 0))
            sent.append((label, value))
        for post in UNMATCHED:
            out.send(raw_topic, key=post["id"].encode(), value=_raw(post), timestamp_ms=base_ms)
            sent.append((post["id"], _raw(post)))
        for post in normal[len(normal) // 2:]:
            out.send(raw_topic, key=post["id"].encode(), value=_raw(post), timestamp_ms=event_ms(post))
        out.flush(timeout=60)
        # documented behaviour: the broker refuses a record stamped in the far future, so such
        # a timestamp can never move the job's watermark (and is not silently dropped either)
        future = out.send(raw_topic, key=b"future-stamp", value=_raw(_post("weird:stamp")),
                          timestamp_ms=int(datetime(2199, 1, 1, tzinfo=timezone.utc).timestamp() * 1000))
        with pytest.raises(InvalidTimestampError):
            future.get(timeout=30)
    finally:
        out.close(timeout=10)
    sent += [(p["id"], _raw(p)) for p in normal]

    env = dict(run.env)
    proc = subprocess.run([sys.executable, "-m", "yuqing", *job_args(run, "--bounded", "--no-resume",
                                                                       "--checkpoint-interval", "0")],
                          cwd=REPO, env={**os.environ, **env}, capture_output=True, timeout=420)
    assert proc.returncode == 0, _causes(proc.stderr)

    # what the contract says about every record produced
    matcher = Matcher(watchlist)
    expected_dlq: Counter = Counter()  # raw_b64 -> how many (an empty value and a tombstone look alike)
    expected_scored: set[str] = set()
    unmatched = 0
    for label, value in sent:
        parsed = parse_post(value or b"")
        if isinstance(parsed, Post):
            if matcher.match_many([parsed.text], [parsed.title])[0]:
                expected_scored.add(parsed.id)
            else:
                unmatched += 1
        else:
            expected_dlq[_b64(value)] += 1
    assert unmatched == len(UNMATCHED)
    assert sum(expected_dlq.values()) == len(BAD) and len(expected_scored) == len(weird) + len(normal)

    dlq = read_json_topic(bootstrap, run.topics["dlq"], expect=len(BAD), timeout_s=60)
    got_dlq = {d["raw_b64"]: d for d in dlq}
    assert len(dlq) == len(BAD) and len({(d["partition"], d["offset"]) for d in dlq}) == len(BAD), \
        "each bad record is dead-lettered exactly once"
    assert Counter(d["raw_b64"] for d in dlq) == expected_dlq
    for label, value, fragment in BAD:
        record = got_dlq[_b64(value)]
        assert fragment in record["reason"], (label, record["reason"])
        assert record["stage"] == "job" and record["topic"] == raw_topic and record["offset"] is not None, label
        assert isinstance(record["raw"], str)
        if len(value or b"") > DLQ_MAX_RAW_BYTES:  # huge records keep their head, size and digest
            assert record["raw_truncated"] is True and record["raw_bytes"] == len(value), label
            assert record["raw_sha256"] == hashlib.sha256(value).hexdigest(), label
        else:
            assert "raw_truncated" not in record, label

    scored = read_json_topic(bootstrap, run.topics["scored"], expect=len(expected_scored), timeout_s=60)
    by_id = {s["id"]: s for s in scored}
    assert len(by_id) == len(scored), "a post was scored twice"
    assert set(by_id) == expected_scored
    total = len(dlq) + len(scored) + unmatched
    assert total == len(sent), f"{len(sent)} produced, {total} accounted for"

    # the weird-but-valid ones keep their content and carry sane scores
    weird_ids = {post["id"] for _, post, _ in weird}
    for pid in weird_ids:
        record = by_id[pid]
        assert 0.0 <= record["sentiment"] <= 1.0 and record["brands"] == ["快送"], pid
    assert by_id["weird:html"]["text"].startswith("<script>")
    assert by_id["weird:ascii"]["text"] == "快送 😡🤬 泄露"
    assert by_id["weird:emoji"]["text"].count("😡") == 4000
    assert "\x1d" in by_id["weird:ctrl\x1d\x1e\x1f"]["text"]
    assert len(by_id["weird:long"]["text"]) == 199_996
    assert by_id["weird:past"]["published_at"].startswith("1990-01-01")
    assert by_id["weird:future"]["published_at"].startswith("2199-12-31")

    # ordinary traffic was windowed normally around the bad records
    assessments = read_json_topic(bootstrap, run.topics["assessments"], timeout_s=30)
    ends = [datetime.fromisoformat(a["window_end"]) for a in assessments if a["window_end"].startswith("2026-11-2")]
    last = max(datetime.fromisoformat(p["published_at"]) for p in normal)
    assert ends and max(ends) > last, "posts after the bad records were windowed too"
