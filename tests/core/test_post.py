"""The post contract's parser: the orjson fast path must accept, reject and build exactly
what the json-module path does (which names every problem), so that the speed-up never
changes a post or a dead-letter reason."""
from __future__ import annotations

import json

import pytest

from core.post import PostError, _parse_post_slow, parse_post_strict

BASE = {"id": "weibo:1", "platform": "Weibo", "text": "快送 泄露 [怒]", "published_at": "2026-11-25T09:00:00+08:00"}


def _raw(**changes) -> bytes:
    post = dict(BASE)
    post.update(changes)
    return json.dumps(post, ensure_ascii=False).encode("utf-8")


def _outcome(parse, raw: bytes):
    try:
        return ("ok", parse(raw))
    except PostError as exc:
        return ("error", str(exc))


CASES = [
    ("plain", _raw()),
    ("all fields", _raw(title="标题", url="https://t.cn/x", lang="zh", repost_of="weibo:0", source="rss",
                        fetched_at="2026-11-25T01:00:01Z", author={"id": 7, "name": "名", "followers": 12,
                                                                  "verified": True, "kind": "kol"},
                        metrics={"reposts": 1, "comments": 2, "likes": 3, "views": 4})),
    ("unknown fields kept", _raw(extra={"nested": [1, {"a": None}]}, score=1.5)),
    ("escaped surrogate pair", json.dumps({**BASE, "text": "快送 😡 泄露"}).encode("ascii")),
    ("lone surrogate escape", _raw()[:-1] + b', "x": "\\ud800"}'),
    ("duplicate key: the last wins", b'{"id": "a", "id": "b", "platform": "news", "text": "t", '
                                      b'"published_at": "2026-01-01T00:00:00Z"}'),
    ("NaN count", _raw()[:-1] + b', "metrics": {"likes": NaN}}'),
    ("Infinity count", _raw()[:-1] + b', "metrics": {"likes": Infinity}}'),
    ("count beyond 64 bits", _raw(author={"followers": 10 ** 30})),
    ("unknown field beyond 64 bits", _raw(big=-(10 ** 25), small=2 ** 63 - 1)),
    ("a long digit run in text", _raw(text="快送 订单 123456789012345678901234 泄露")),
    ("count beyond the cap", _raw(metrics={"views": 10 ** 15 + 1})),
    ("float count", _raw(metrics={"views": 1.0})),
    ("bool count", _raw(metrics={"views": True})),
    ("invalid UTF-8", b'{"id": "a", "text": "\xff"}'),
    ("UTF-8 BOM", b"\xef\xbb\xbf" + _raw()),
    ("truncated", _raw()[:-5]),
    ("empty", b""),
    ("not an object", b"[1, 2]"),
    ("nested too deeply", b"[" * 5000 + b"]" * 5000),
    ("trailing garbage", _raw() + b" x"),
    ("whitespace around", b"  \n" + _raw() + b"\n "),
    ("missing text", json.dumps({k: v for k, v in BASE.items() if k != "text"}).encode()),
    ("control characters", _raw(text="快送\x00\x1d\x1e\x1f泄露")),
]


@pytest.mark.parametrize("label,raw", CASES, ids=[c[0] for c in CASES])
def test_fast_path_agrees_with_the_json_module_path(label, raw):
    assert _outcome(parse_post_strict, raw) == _outcome(_parse_post_slow, raw)


def test_fast_path_takes_str_input_like_bytes():
    raw = _raw()
    assert parse_post_strict(raw.decode("utf-8")) == parse_post_strict(raw)


@pytest.mark.parametrize("raw,reason", [
    (b'{"id": "a", "text": "\xff"}', "invalid UTF-8 at byte 21"),
    (_raw()[:-1] + b', "x": "\\ud800"}', "lone surrogate"),
    (_raw(author={"followers": 10 ** 30}), "author.followers: larger than"),
    (_raw()[:-1] + b', "metrics": {"likes": NaN}}', "metrics.likes: expected a non-negative integer"),
    (b"[" * 5000 + b"]" * 5000, "invalid JSON: nested too deeply"),
])
def test_rejections_keep_their_reasons(raw, reason):
    with pytest.raises(PostError, match=reason.replace("(", r"\(")):
        parse_post_strict(raw)
