import pytest

from scoring.watchlist import WatchlistError, load_watchlist, parse_watchlist

OK_BRAND = {"name": "快送", "aliases": ["快送APP"]}
OK_CAT = {"name": "privacy", "severity": 0.9, "terms": ["隐私"]}


def test_sample_watchlist_loads(watchlist):
    names = [b.name for b in watchlist.brands]
    assert 3 <= len(names) <= 5 and "快送" in names
    assert {c.name for c in watchlist.categories} >= {"privacy", "outage", "refund", "legal", "safety", "rumour"}
    assert all(0 <= c.severity <= 1 for c in watchlist.categories)
    assert watchlist.brand("快送").words[0] == "快送"


@pytest.mark.parametrize("data, message", [
    ({"categories": [OK_CAT]}, "'brands' must be a non-empty list"),
    ({"brands": [{"aliases": ["x"]}]}, "missing 'name'"),
    ({"brands": [{"name": "  "}]}, "'name' must be a non-empty string"),
    ({"brands": [OK_BRAND, {"name": "快送"}]}, "duplicate brand name"),
    ({"brands": [{"name": "快送", "aliases": "快送APP"}]}, "aliases must be a list"),
    ({"brands": [{"name": "A", "aliases": ["同名"]}, {"name": "B", "aliases": ["同名"]}]}, "also used by brand 'A'"),
    ({"brands": [{"name": "快送", "alias": ["x"]}]}, "unknown key(s) alias"),
    ({"brands": [OK_BRAND], "categories": [{"name": "privacy", "severity": 1.5, "terms": ["隐私"]}]}, "outside 0..1"),
    ({"brands": [OK_BRAND], "categories": [{"name": "privacy", "severity": "high", "terms": ["隐私"]}]}, "severity must be a number"),
    ({"brands": [OK_BRAND], "categories": [{"name": "privacy", "severity": 0.5, "terms": "隐私"}]}, "terms must be a list"),
    ({"brands": [OK_BRAND], "categories": [{"name": "privacy", "severity": 0.5}]}, "missing 'terms'"),
    ({"brands": [OK_BRAND], "categories": [{"name": "privacy", "severity": 0.5, "terms": []}]}, "terms is empty"),
    ({"brands": [OK_BRAND], "categories": [OK_CAT, OK_CAT]}, "duplicate category name"),
    ({"brands": [OK_BRAND], "categories": [{"name": "general", "severity": 0.5, "terms": ["x"]}]}, "reserved"),
    ({"brands": [OK_BRAND], "categories": [{**OK_CAT, "kind": "weird"}]}, "kind must be one of"),
    ({"brands": [OK_BRAND], "signals": {"rumour": ["x"]}}, "unknown key(s) rumour"),
    (["not", "a", "mapping"], "expected a mapping"),
    # query words
    ({"brands": [{"name": "蓝莓", "exclude": "水果"}]}, "brand '蓝莓': exclude must be a list"),
    ({"brands": [{"name": "蓝莓", "require": ["音乐", ""]}]}, "brand '蓝莓': require[1] is empty"),
    ({"brands": [{"name": "蓝莓", "exclude": [{"w": 1}]}]}, "exclude[0] must be a string"),
    ({"brands": [{"name": "蓝莓", "aliases": ["蓝莓App"], "exclude": ["蓝莓APP"]}]},
     "exclude word '蓝莓APP' is also one of the brand's own names"),
    ({"brands": [{"name": "蓝莓", "exclude": ["水果"], "require": ["水果"]}]}, "'水果' is in both exclude and require"),
    ({"brands": [OK_BRAND], "categories": [{**OK_CAT, "exclude": ["隱私"]}]},
     "category 'privacy': exclude word '隱私' is also one of its terms"),
    ({"brands": [OK_BRAND], "categories": [{**OK_CAT, "require": ["x"]}]}, "unknown key(s) require"),
    # duplicates are found in folded form: traditional, full-width and case
    ({"brands": [{"name": "飞鸟出行"}, {"name": "B", "aliases": ["飛鳥出行"]}]}, "'飛鳥出行' is also used by brand '飞鸟出行'"),
    ({"brands": [{"name": "A", "aliases": ["KuaiSong"]}, {"name": "B", "aliases": ["ＫＵＡＩＳＯＮＧ"]}]},
     "also used by brand 'A'"),
])
def test_invalid_watchlists_fail_with_one_line(data, message):
    with pytest.raises(WatchlistError) as err:
        parse_watchlist(data, source="w.yaml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_file_errors(tmp_path):
    with pytest.raises(WatchlistError, match="does not exist"):
        load_watchlist(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("brands: [\n", encoding="utf-8")
    with pytest.raises(WatchlistError, match="not valid YAML"):
        load_watchlist(bad)


def test_empty_and_null_aliases_are_accepted():
    wl = parse_watchlist({"brands": [{"name": "快送", "aliases": []}, {"name": "优品", "aliases": None}]})
    assert [b.words for b in wl.brands] == [("快送",), ("优品",)]


def test_query_words_are_parsed():
    wl = parse_watchlist({
        "brands": [{"name": "蓝莓", "aliases": ["蓝莓App"], "exclude": ["水果", "农药", "水果"], "require": []},
                   {"name": "快送", "require": ["外卖", "骑手"]}],
        "categories": [{"name": "safety", "severity": 1, "terms": ["中毒"], "exclude": ["演习"]}]})
    assert wl.brand("蓝莓").exclude == ("水果", "农药") and wl.brand("蓝莓").require == ()
    assert wl.brand("快送").require == ("外卖", "骑手") and wl.brand("快送").exclude == ()
    assert wl.category("safety").exclude == ("演习",)
    assert wl.brand("nobody") is None and wl.category("nothing") is None


def test_sample_watchlist_has_a_query_word_example(watchlist):
    assert any(b.exclude for b in watchlist.brands)


def test_large_watchlist_validates_in_linear_time():
    """Duplicate checks are lookups, not scans: 10,000 brands parse in well under the time a
    quadratic check would take (50M comparisons); a duplicate late in the list is named."""
    import time

    brands = [{"name": f"品牌{i:05d}", "aliases": [f"Brand{i:05d}", f"牌子{i:05d}号"],
               "exclude": [f"无关{i:05d}"]} for i in range(10_000)]
    cats = [{"name": "privacy", "severity": 0.9, "terms": ["泄露"]}]
    start = time.process_time()
    wl = parse_watchlist({"brands": brands, "categories": cats})
    elapsed = time.process_time() - start
    assert len(wl.brands) == 10_000 and wl.brand("品牌09999").aliases == ("Brand09999", "牌子09999号")
    assert elapsed < 5.0, elapsed
    dup = brands + [{"name": "迟到", "aliases": ["BRAND00007"]}]
    with pytest.raises(WatchlistError, match="alias 'BRAND00007' is also used by brand '品牌00007'"):
        parse_watchlist({"brands": dup, "categories": cats})
