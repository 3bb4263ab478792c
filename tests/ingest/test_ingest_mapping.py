"""Field mapping: dotted paths, templates and the assembled contract shape."""
from datetime import datetime, timedelta, timezone

import pytest

from ingest.mapping import MappingError, PostDefaults, assemble_post, check_field_map, get_path, map_fields, qualify_id
from core.post import post_from_dict

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
WEIBO = PostDefaults(platform="weibo", source="api", default_tz=CST)


def test_get_path_walks_dicts_and_lists():
    obj = {"data": {"items": [{"user": {"name": "a"}}, {"user": {"name": "b"}}]}}
    assert get_path(obj, "data.items.1.user.name") == "b"
    assert get_path(obj, "data.items.-1.user.name") == "b"
    assert get_path(obj, "data.items.5.user") is None
    assert get_path(obj, "data.nope.x", "d") == "d"
    assert get_path({"a": 0}, "a") == 0


def test_templates_and_constants():
    item = {"user": {"idstr": "17"}, "bid": "Nx9"}
    fields = {"url": "https://weibo.example/{user.idstr}/{bid}", "lang": {"const": "zh"}, "title": "{missing}"}
    assert map_fields(item, fields) == {"url": "https://weibo.example/17/Nx9", "lang": "zh", "title": None}


def test_unknown_target_fields_are_refused():
    with pytest.raises(MappingError, match="unknown Post field 'txt'"):
        check_field_map({"txt": "text"}, "sources[0]")


def test_qualify_id():
    assert qualify_id(4890123, "weibo") == "weibo:4890123"
    assert qualify_id("weibo:1", "weibo") == "weibo:1"
    long = qualify_id("https://news.example/a/very/long/path.html", "news")
    assert long.startswith("news:") and len(long) == 25
    assert qualify_id("  ", "x") is None and qualify_id(None, "x") is None


def test_weibo_like_item_becomes_a_valid_post():
    item = {
        "mid": 4890123, "text": "快送ＡＰＰ又崩了<br/>[怒]&amp;", "created_at": "Wed Nov 25 10:00:00 +0800 2026",
        "user": {"idstr": "u1", "screen_name": "某媒体", "followers_count": "120万", "verified": True,
                 "verified_type": 3},
        "reposts_count": 5, "comments_count": "1.1万", "attitudes_count": None,
        "retweeted_status": {"mid": "4890000"},
    }
    fields = {
        "id": "mid", "text": "text", "published_at": "created_at",
        "author.id": "user.idstr", "author.name": "user.screen_name", "author.followers": "user.followers_count",
        "author.verified": "user.verified", "author.verified_type": "user.verified_type",
        "metrics.reposts": "reposts_count", "metrics.comments": "comments_count", "metrics.likes": "attitudes_count",
        "repost_of": "retweeted_status.mid",
    }
    post = assemble_post(map_fields(item, fields), WEIBO, NOW)
    assert post["id"] == "weibo:4890123"
    assert post["text"] == "快送APP又崩了\n[怒]&"
    assert post["published_at"] == "2026-11-25T10:00:00+08:00"
    assert post["author"] == {"id": "u1", "name": "某媒体", "followers": 1_200_000, "verified": True, "kind": "media"}
    assert post["metrics"] == {"reposts": 5, "comments": 11000, "likes": 0, "views": 0}
    assert post["repost_of"] == "weibo:4890000"
    assert post["source"] == "api" and post["fetched_at"] == "2026-11-25T11:00:00+08:00"
    parsed = post_from_dict(post)
    assert parsed.author.kind == "media" and parsed.published_ms == 1795572000000


def test_title_stands_in_for_missing_text_and_bad_time_is_kept_for_the_validator():
    post = assemble_post({"id": "1", "title": "标题&amp;", "published_at": "sometime"}, WEIBO, NOW)
    assert post["text"] == "标题&" and post["title"] == "标题&"
    assert post["published_at"] == "sometime"  # core.post rejects it with its own reason


def test_missing_id_stays_missing():
    post = assemble_post({"text": "x", "published_at": "2026-11-25T10:00:00+08:00"}, WEIBO, NOW)
    assert post["id"] is None
