import pytest

from scoring.matching import Matcher
from scoring.watchlist import parse_watchlist


@pytest.mark.parametrize("text, pairs, legal, trending", [
    # aliases, and the canonical name
    ("快送APP又闪退了", [("快送", "outage")], False, False),
    ("快送外卖的骑手泄露了我的个人信息", [("快送", "privacy")], False, False),
    ("星云钱包付款失败", [("星云支付", "general")], False, False),
    # Latin aliases are case-insensitive and need word boundaries
    ("KUAISONG 崩了", [("快送", "outage")], False, False),
    ("kuaisong真好用", [("快送", "general")], False, False),
    ("kuaisongs is a different word", [], False, False),
    ("xingyunpay退款一个月没到", [("星云支付", "refund")], False, False),
    # a short alias must not match inside an unrelated word
    ("外卖小哥说快送到了", [], False, False),
    ("我家的优品质生活", [], False, False),
    ("白云盘旋在青柠树上", [], False, False),
    # brand without category counts as general; several categories give several pairs
    ("优品Pro发布会看了", [("优品手机", "general")], False, False),
    ("青柠云盘数据泄露，准备起诉", [("青柠云盘", "privacy"), ("青柠云盘", "legal")], True, False),
    # two brands in one post
    ("快送和星云支付都崩了", [("快送", "outage"), ("星云支付", "outage")], False, False),
    # per-post flags; 315 on word boundaries only, 12315 is its own legal word
    ("快送被约谈，网信办出手，已经上热搜", [("快送", "legal")], True, True),
    ("快送的单号是315号", [("快送", "general")], True, False),
    ("快送的单号是A3150", [("快送", "general")], False, False),
    ("打12315投诉快送", [("快送", "general")], True, False),
    ("求扩散！快送骑手太辛苦", [("快送", "general")], False, True),
    # watchlist `signals` extend the built-in lists
    ("快送的事我去找消协", [("快送", "general")], True, False),
    # no brand: nothing, even with category words
    ("某平台数据泄露上热搜", [], False, False),
    ("", [], False, False),
])
def test_match_table(matcher, text, pairs, legal, trending):
    result = matcher.match(text)
    assert list(result.pairs) == pairs
    if pairs:
        assert (result.legal, result.trending) == (legal, trending)


def test_title_counts(matcher):
    assert matcher.match("用户反映无法登录", title="快送故障").pairs == (("快送", "outage"),)


def test_match_many_equals_match(matcher):
    texts = ["快送又崩了", "外卖小哥说快送到了", "青柠盘泄露隐私[怒]", "优品手机真香"]
    assert matcher.match_many(texts) == [matcher.match(t) for t in texts]
    assert matcher.match_many(texts, [None, "快送", None, None])[1].pairs == (("快送", "general"),)


def test_segmentation_decides_short_words():
    wl = parse_watchlist({"brands": [{"name": "云盘"}],
                          "categories": [{"name": "outage", "severity": 0.5, "terms": ["崩了"]}]})
    m = Matcher(wl)
    assert m.backend in ("rjieba", "jieba")
    assert m.match("云盘又崩了").pairs == (("云盘", "outage"),)
    assert m.match("白云盘旋").pairs == ()


QUERY_WATCHLIST = {
    "brands": [
        {"name": "蓝莓", "aliases": ["蓝莓App", "蓝莓音乐"], "exclude": ["水果", "农药", "果园"]},
        {"name": "星云", "aliases": ["星云Pay"], "require": ["支付", "钱包", "转账"]},
        {"name": "快送", "aliases": []},
    ],
    "categories": [
        {"name": "safety", "severity": 1.0, "terms": ["中毒", "起火"], "exclude": ["消防演习"]},
        {"name": "privacy", "severity": 0.9, "terms": ["泄露"]},
    ],
}


@pytest.mark.parametrize("text, pairs", [
    # exclude: the fruit story does not count for the app, in either script
    ("蓝莓农药残留超标，多人中毒", []),
    ("藍莓農藥殘留超標", []),
    ("蓝莓App泄露用户数据", [("蓝莓", "privacy")]),
    ("蓝莓音乐和快送都泄露了", [("蓝莓", "privacy"), ("快送", "privacy")]),
    ("快送骑手在果园里摔倒, 快送回应", [("快送", "general")]),  # another brand's exclude word
    ("蓝莓果园起火，快送小哥救火", [("快送", "safety")]),
    # require: at least one of them must also appear
    ("星云今晚很美", []),
    ("星云钱包转账失败", [("星云", "general")]),
    ("星云Pay支付泄露", [("星云", "privacy")]),
    # category exclude: the post still counts for the brand, in its other categories
    ("快送仓库消防演习起火", [("快送", "general")]),
    ("快送仓库消防演习起火，数据泄露", [("快送", "privacy")]),
    ("快送仓库起火", [("快送", "safety")]),
])
def test_query_words(text, pairs):
    m = Matcher(parse_watchlist(QUERY_WATCHLIST))
    assert list(m.match(text).pairs) == pairs


def test_chinese_query_words_match_as_substrings_latin_on_word_boundaries():
    wl = parse_watchlist({"brands": [{"name": "蓝莓App", "exclude": ["果", "Go"]}]})
    m = Matcher(wl)
    assert m.match("蓝莓App的果很甜").pairs == ()
    assert m.match("蓝莓App结果崩了").pairs == ()  # 果 inside 结果: still excluded
    assert m.match("蓝莓App上线GO版本").pairs == ()
    assert m.match("蓝莓App接入google登录").pairs == (("蓝莓App", "general"),)
