"""The batch scorer's output: every record accounted for, decodable, and what SQL expects."""
from __future__ import annotations

import base64
import json

import pytest

from scoring.batch import GS, KEY_FIELDS, RS, US, PostScorer, decode
from scoring.features import post_features
from scoring.matching import Matcher


def _scorer(watchlist):
    # sentiment stand-in: texts with [怒] are negative (the real model is tested elsewhere)
    return PostScorer(watchlist, lambda texts: [0.1 if "[怒]" in t else 0.9 for t in texts])


POST = {
    "id": "weibo:1", "platform": "Weibo", "text": "快送APP数据泄露了,我的个人信息被卖 [怒]",
    "published_at": "2026-11-25T10:00:00+08:00",
    "author": {"id": "u1", "name": "某媒体", "followers": 2_000_000, "verified": True, "kind": "media"},
    "metrics": {"reposts": 10, "comments": 5, "likes": 100, "views": 5_000_000},
    "url": "https://example.com/p/1",
}


def test_each_input_gets_exactly_one_output_of_the_right_kind(watchlist):
    raws = [
        json.dumps(POST, ensure_ascii=False).encode(),
        json.dumps(dict(POST, id="weibo:2", text="今天天气不错"), ensure_ascii=False).encode(),
        b"{not json",
        b"\xff\xfe broken utf-8",
        json.dumps({"id": "x", "platform": "weibo", "text": 5, "published_at": "2026-11-25T10:00:00Z"}).encode(),
    ]
    out, counts = _scorer(watchlist).score_batch(raws, [0, 1, 0, 1, 0], [10, 11, 12, 13, 14], topic="posts.raw")
    kinds = [decode(r)["kind"] for r in out]
    assert kinds == ["S", "U", "E", "E", "E"]
    assert (counts.scored, counts.unmatched, counts.rejected) == (1, 1, 3)
    assert list(counts.rejected_reasons) == [decode(r)["dlq"]["reason"] for r in out[2:]]
    assert counts.by_platform == {"weibo": 2}
    dlq = [decode(r)["dlq"] for r in out[2:]]
    assert dlq[0]["reason"].startswith("invalid JSON")
    assert dlq[1]["reason"] == "invalid UTF-8 at byte 0"
    assert dlq[2]["reason"] == "text: expected a string, got int"
    assert base64.b64decode(dlq[1]["raw_b64"]) == raws[3]
    assert (dlq[0]["stage"], dlq[0]["topic"], dlq[0]["partition"], dlq[0]["offset"]) == ("job", "posts.raw", 0, 12)


def test_scored_record_keys_and_example_match_the_features(watchlist):
    out, _ = _scorer(watchlist).score_batch([json.dumps(POST, ensure_ascii=False).encode()])
    result = decode(out[0])
    scored = result["scored"]
    assert scored["brands"] == ["快送"] and "privacy" in scored["categories"]
    assert scored["negative"] is True and scored["sentiment"] == pytest.approx(0.1)
    assert {(k["brand"], k["category"]) for k in result["keys"]} == {(m["brand"], m["category"]) for m in scored["matches"]}
    # the key fields are exactly post_features' values, in KEY_FIELDS order
    from yuqing.post import post_from_dict

    post = post_from_dict(POST)
    match = Matcher(watchlist).match(post.text)
    expected = post_features(post, True, 0.1, match).to_dict()
    key = result["keys"][0]
    assert list(key) == list(KEY_FIELDS)
    for name, value in expected.items():
        assert str(key[name]) == (repr(value) if isinstance(value, float) else str(value)), name
    assert result["example"]["id"] == "weibo:1" and result["example"]["url"] == POST["url"]


def test_separators_never_leak_into_parts(watchlist):
    nasty = dict(POST, text=f"快送 崩了{GS}{RS}{US} [怒]",
                 author={"id": f"a{US}b", "name": f"n{GS}", "kind": "user"})
    out, _ = _scorer(watchlist).score_batch([json.dumps(nasty, ensure_ascii=False).encode()])
    parts = out[0].split(GS)
    assert len(parts) == 4
    for key in parts[2].split(RS):
        assert len(key.split(US)) == len(KEY_FIELDS)
    assert json.loads(parts[1])["text"] == nasty["text"]


def test_example_rank_orders_negative_then_reach(watchlist):
    calm = dict(POST, id="a", text="快送数据泄露?好像没事 很开心")
    loud = dict(POST, id="b")
    quiet = dict(POST, id="c", author={"followers": 10, "kind": "user"}, metrics={"views": 1})
    out, _ = _scorer(watchlist).score_batch([json.dumps(p, ensure_ascii=False).encode() for p in (calm, loud, quiet)])
    ranks = {decode(r)["scored"]["id"]: r.split(GS)[3] for r in out}
    assert max(ranks.values()) == ranks["b"]
    assert ranks["c"] > ranks["a"]  # negative beats any reach
