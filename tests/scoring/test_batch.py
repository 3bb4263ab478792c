"""The batch scorer's output: every record accounted for, decodable, and what SQL expects."""
from __future__ import annotations

import base64
import json

import pytest

from scoring.batch import FEATURE_COLUMNS, OUTPUT_COLUMNS, PostScorer, decode, example_rank, key_id, key_ids, key_pairs
from scoring.features import PostFeatures, post_features
from scoring.matching import Matcher
from core.post import post_from_dict


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
    pairs = key_pairs(watchlist)
    assert list(out.columns) == [name for name, _ in OUTPUT_COLUMNS]
    assert all(len(values) == len(raws) for values in out.columns.values())
    kinds = [decode(out, i, pairs)["kind"] for i in range(len(out))]
    assert kinds == ["S", "U", "E", "E", "E"]
    # only a scored post carries keys, features and an example; the others are NULL there
    for i in range(1, 5):
        assert {name for name, value in out.row(i).items() if value is not None} <= {"kind", "payload"}
    assert out.row(1)["payload"] is None
    assert (counts.scored, counts.unmatched, counts.rejected) == (1, 1, 3)
    assert list(counts.rejected_reasons) == [decode(out, i, pairs)["dlq"]["reason"] for i in range(2, 5)]
    assert counts.by_platform == {"weibo": 2}
    dlq = [decode(out, i, pairs)["dlq"] for i in range(2, 5)]
    assert dlq[0]["reason"].startswith("invalid JSON")
    assert dlq[1]["reason"] == "invalid UTF-8 at byte 0"
    assert dlq[2]["reason"] == "text: expected a string, got int"
    assert base64.b64decode(dlq[1]["raw_b64"]) == raws[3]
    assert (dlq[0]["stage"], dlq[0]["topic"], dlq[0]["partition"], dlq[0]["offset"]) == ("job", "posts.raw", 0, 12)


def test_scored_record_keys_and_example_match_the_features(watchlist):
    out, _ = _scorer(watchlist).score_batch([json.dumps(POST, ensure_ascii=False).encode()])
    result = decode(out, 0, key_pairs(watchlist))
    scored = result["scored"]
    assert scored["brands"] == ["快送"] and "privacy" in scored["categories"]
    assert scored["negative"] is True and scored["sentiment"] == pytest.approx(0.1)
    assert [(k["brand"], k["category"]) for k in result["keys"]] == [(m["brand"], m["category"]) for m in scored["matches"]]
    # the feature columns are exactly post_features' values, with their declared types
    post = post_from_dict(POST)
    expected = post_features(post, True, 0.1, Matcher(watchlist).match(post.text)).to_dict()
    assert [name for name, _ in FEATURE_COLUMNS] == list(expected)
    for key in result["keys"]:
        for name, sql_type in FEATURE_COLUMNS:
            assert key[name] == expected[name], name
            assert isinstance(key[name], str if sql_type == "STRING" else int), name
    assert result["example"]["id"] == "weibo:1" and result["example"]["url"] == POST["url"]


def test_key_ids_name_every_brand_and_category_once(watchlist):
    pairs = key_pairs(watchlist)
    assert len(set(pairs)) == len(pairs)
    assert {b for b, _ in pairs} == {b.name for b in watchlist.brands}
    assert {c for _, c in pairs} == {c.name for c in watchlist.categories} | {"general"}
    # ids are hashes of the names: the same whatever else the watchlist holds, so a window
    # restored after a watchlist edit stays with its key
    ids = key_ids(watchlist)
    assert set(ids) == set(pairs) and len(set(ids.values())) == len(ids)
    assert all(0 <= v < 2**63 for v in ids.values())
    assert ids[pairs[-1]] == key_id(pairs[-1]) == key_id((pairs[-1][0], pairs[-1][1]))
    from dataclasses import replace

    fewer = replace(watchlist, brands=watchlist.brands[1:])
    assert all(key_ids(fewer)[pair] == ids[pair] for pair in key_pairs(fewer))


def test_feature_columns_follow_post_features():
    from dataclasses import fields

    assert [name for name, _ in FEATURE_COLUMNS] == [f.name for f in fields(PostFeatures)]
    assert dict(FEATURE_COLUMNS)["platform"] == "STRING" and dict(FEATURE_COLUMNS)["engagement"] == "BIGINT"


def test_example_rank_orders_negative_then_reach(watchlist):
    calm = post_from_dict(dict(POST, id="a", text="快送数据泄露?好像没事 很开心"))
    loud = post_from_dict(dict(POST, id="b"))
    quiet = post_from_dict(dict(POST, id="c", author={"followers": 10, "kind": "user"}, metrics={"views": 1}))
    ranks = {"a": example_rank(calm, False, 5_000_000, 115), "b": example_rank(loud, True, 5_000_000, 115),
             "c": example_rank(quiet, True, 10, 0)}
    assert max(ranks.values()) == ranks["b"]
    assert ranks["c"] > ranks["a"]  # negative beats any reach


def _at(post: dict, minute: int, second: int = 0, **changes) -> bytes:
    return json.dumps(dict(post, published_at=f"2026-11-25T10:{minute:02d}:{second:02d}+08:00", **changes),
                      ensure_ascii=False).encode()


def test_only_the_best_example_of_each_key_and_slide_is_carried(watchlist):
    """The window takes MAX(example) per key, so a batch needs to hand on only its best
    candidate per key and slide; every other scored row carries NULL."""
    quiet = {"id": "u", "followers": 10, "kind": "user"}
    raws = [
        _at(POST, 0, 5, id="a", author=quiet),   # slide 10:00, 快送 privacy: loses to b
        _at(POST, 0, 50, id="b"),                 # slide 10:00: the best (media, big reach)
        _at(POST, 1, 10, id="c", author=quiet),  # slide 10:01: alone in its slide, so the best
        _at(POST, 0, 30, id="d", text="优品手机 崩了 [怒]", author=quiet),  # another key: its own best
    ]
    out, _ = _scorer(watchlist).score_batch(raws)
    carried = {json.loads(out.row(i)["payload"])["id"]: out.row(i)["example"] is not None for i in range(len(out))}
    assert carried == {"a": False, "b": True, "c": True, "d": True}
    # what is carried is the post's full candidate string, so MAX() over the carried
    # candidates of a slide equals MAX() over all of them
    candidates = [out.row(i)["example"] for i in (0, 1) if out.row(i)["example"]]
    assert candidates == [max(candidates)] and "\"id\":\"b\"" in candidates[0]


def test_slides_follow_the_record_timestamps_when_given(watchlist):
    quiet = {"id": "u", "followers": 10, "kind": "user"}
    raws = [_at(POST, 0, 5, id="a", author=quiet), _at(POST, 0, 50, id="b")]
    # Flink windows by the Kafka timestamp: two different slides, so both are carried
    out, _ = _scorer(watchlist).score_batch(raws, timestamps_ms=[0, 60_000])
    assert [out.row(i)["example"] is not None for i in range(2)] == [True, True]
    out, _ = _scorer(watchlist).score_batch(raws, timestamps_ms=[1_000, 2_000])
    assert [out.row(i)["example"] is not None for i in range(2)] == [False, True]


def test_a_tie_in_weight_is_broken_by_the_full_candidate_string(watchlist):
    """Candidates are compared by weight first and their strings are built only when
    needed; on equal weight the string decides, as MAX(example) over all of them would."""
    raws = [_at(POST, 0, 5, id=f"t{n}", text=f"快送数据泄露 {n} 太离谱") for n in (3, 9, 1)]
    out, _ = _scorer(watchlist).score_batch(raws)
    carried = [out.row(i)["example"] for i in range(3) if out.row(i)["example"] is not None]
    posts = [post_from_dict(json.loads(raw)) for raw in raws]
    reach = max(posts[0].author.followers, posts[0].metrics.views)
    every = [example_rank(p, False, reach, p.metrics.engagement) for p in posts]
    assert len({s[:16] for s in every}) == 1  # the same weight: a tie
    assert carried == [max(every)] and max(every) != every[0]


def test_each_scored_post_carries_its_slide_position(watchlist):
    raws = [_at(POST, 0, 5, id="a"), _at(POST, 0, 50, id="b")]
    out, _ = PostScorer(watchlist, lambda texts: [0.1] * len(texts), slide_ms=60_000,
                        window_slides=10).score_batch(raws, timestamps_ms=[60_000 * 13 + 5, 60_000 * 29])
    assert out.columns["slide_pos"] == [3, 9]
