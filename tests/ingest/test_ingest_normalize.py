"""Normalisation: HTML, entities, widths, whitespace, emoticons, times, counts, author tiers."""
from datetime import datetime, timedelta, timezone

import pytest

from ingest.normalize import (
    author_kind,
    clean_text,
    fingerprint_length,
    fold_width,
    parse_count,
    parse_datetime,
    parse_tz,
    text_fingerprint,
)

CST = timezone(timedelta(hours=8))


def test_html_is_stripped_with_entities_decoded_and_blocks_as_lines():
    raw = "<div><p>快送&amp;外卖 <b>又</b>崩了</p><p>第二段&lt;3</p><script>var x=1;</script></div>"
    assert clean_text(raw) == "快送&外卖 又崩了\n\n第二段<3"


def test_plain_text_entities_are_decoded_once():
    assert clean_text("Tom &amp; Jerry &quot;hi&quot;") == 'Tom & Jerry "hi"'


def test_weibo_emoticon_images_and_codes_and_emoji_are_kept():
    raw = '太慢了<img alt="[怒]" src="face.png">😡<img alt="logo" src="l.png"> [泪]'
    assert clean_text(raw) == "太慢了[怒]😡 [泪]"


def test_emoji_zwj_sequences_survive():
    family = "👨\u200d👩\u200d👧"
    assert clean_text(f"家{family}人\u200b") == f"家{family}人"


def test_full_width_latin_folds_but_chinese_punctuation_stays():
    assert fold_width("快送ＡＰＰ１２３，真的！？（哭）") == "快送APP123，真的！？（哭）"
    assert clean_text("［怒］ｈｅｌｌｏ　ｗｏｒｌｄ。") == "[怒]hello world。"


def test_half_width_katakana_becomes_full_width():
    assert fold_width("ｶﾀｶﾅ") == "カタカナ"


def test_whitespace_is_collapsed_and_controls_removed():
    assert clean_text("  a \t\u00a0 b\r\n\r\n\r\n\r\nc\x07  ") == "a b\n\nc"


def test_empty_and_none_give_empty_text():
    assert clean_text(None) == "" and clean_text("   ") == ""


def test_fingerprint_ignores_punctuation_space_case_width_and_urls():
    a = text_fingerprint("快送APP 泄露了我的 个人信息！！ https://t.cn/abc")
    b = text_fingerprint("快送ａｐｐ泄露了我的个人信息! http://x.cn/zz")
    assert a == b
    assert a != text_fingerprint("快送APP 没有泄露我的个人信息")
    assert fingerprint_length("崩了！！ https://t.cn/x") == 2


@pytest.mark.parametrize("value,expected", [
    ("2026-11-25T10:00:00+08:00", datetime(2026, 11, 25, 10, tzinfo=CST)),
    ("2026-11-25T02:00:00Z", datetime(2026, 11, 25, 10, tzinfo=CST)),
    ("2026-11-25 10:00", datetime(2026, 11, 25, 10, tzinfo=CST)),
    ("2026/11/25 10:00:30", datetime(2026, 11, 25, 10, 0, 30, tzinfo=CST)),
    ("2026年11月25日 10:00", datetime(2026, 11, 25, 10, tzinfo=CST)),
    ("Wed, 25 Nov 2026 02:00:00 GMT", datetime(2026, 11, 25, 10, tzinfo=CST)),
    (1795572000, datetime(2026, 11, 25, 10, tzinfo=CST)),
    ("1795572000000", datetime(2026, 11, 25, 10, tzinfo=CST)),
])
def test_absolute_times(value, expected):
    parsed = parse_datetime(value, CST)
    assert parsed == expected and parsed.utcoffset() is not None


def test_relative_chinese_times_use_now_in_the_source_zone():
    now = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)  # 10:00 in +08:00
    assert parse_datetime("5分钟前", CST, now) == now - timedelta(minutes=5)
    assert parse_datetime("3 hours ago", CST, now) == now - timedelta(hours=3)
    assert parse_datetime("刚刚", CST, now) == now
    assert parse_datetime("昨天 09:30", CST, now) == datetime(2026, 11, 24, 9, 30, tzinfo=CST)
    assert parse_datetime("11-20 08:00", CST, now) == datetime(2026, 11, 20, 8, 0, tzinfo=CST)


@pytest.mark.parametrize("value", ["garbage", "", None, True, "13月45日"])
def test_unreadable_times_give_none(value):
    assert parse_datetime(value, CST) is None


def test_parse_tz():
    assert parse_tz("+0800") == CST and parse_tz("UTC") == timezone.utc
    assert parse_tz("Asia/Shanghai").utcoffset(datetime(2026, 12, 6)) == timedelta(hours=8)
    for bad in ("Mars/Olympus", "+25:00", "eight"):
        with pytest.raises(ValueError):
            parse_tz(bad)


@pytest.mark.parametrize("value,expected", [
    ("1.2万", 12000), ("10万+", 100000), ("3k", 3000), ("1,234", 1234), ("2亿", 200000000),
    (42, 42), (-5, 0), ("转发", 0), (None, 0), (True, 0), ("7.5", 8),
])
def test_counts(value, expected):
    assert parse_count(value) == expected


def test_author_tiers():
    assert author_kind("Media") == "media"
    assert author_kind("大V") == "kol"
    assert author_kind(None, True, 3) == "media"       # Weibo media blue V
    assert author_kind(None, True, "1") == "official"  # government
    assert author_kind(None, True, 0) == "kol"         # personal yellow V
    assert author_kind(None, False, -1, followers=250_000) == "kol"
    assert author_kind(None, False, None, followers=99) == "user"
    assert author_kind("nonsense", followers=5) == "user"
