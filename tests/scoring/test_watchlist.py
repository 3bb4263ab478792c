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
    ({"brands": [{"name": "快送", "aliases": []}]}, "aliases is empty"),
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
