"""`yuqing baselines export` against a real ClickHouse: the stored posts of the last hours,
read as the read-only analyst, become the same baselines as folding the same hours in Python."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from scoring.warmstart import HistoryRow, baseline_from_history, load_baselines
from sinks.clickhouse.rows import post_row
from sinks.clickhouse.writer import ClickHouseWriter

from ch_helpers import migrate_db, run_yuqing

CST = timezone(timedelta(hours=8))
PLATFORMS = ("weibo", "douyin", "zhihu")


def stored_posts(start: datetime, hours: int) -> list[dict]:
    """Five posts a minute about one brand's privacy, four of them negative; one media post
    an hour with a big audience; a second brand's general chatter in one hour only."""
    out = []
    for minute in range(hours * 60):
        for j in range(5):
            media = j == 0 and minute % 60 == 7
            out.append({
                "id": f"hist:{minute}:{j}", "platform": PLATFORMS[(minute + j) % 3],
                "text": "青柠云盘又泄露个人信息了[怒]" if j else "青柠云盘的隐私设置", "lang": "zh",
                "published_at": (start + timedelta(minutes=minute, seconds=j * 10)).isoformat(),
                "ingested_at": (start + timedelta(minutes=minute, seconds=59)).isoformat(),
                "author_id": "m-1" if media else f"u{minute}-{j}", "author_name": "晨报快讯" if media else "网友",
                "author_kind": "media" if media else "user", "followers": 3_000_000 if media else 50 + j,
                "verified": media, "reposts": 3, "comments": 1, "likes": j, "views": 0,
                "sentiment": 0.1 if j else 0.8, "negative": bool(j),
                "brands": ["青柠云盘"], "categories": ["privacy"],
                "matches": [{"brand": "青柠云盘", "category": "privacy"}],
            })
    for i in range(30):
        out.append({"id": f"hist:other:{i}", "platform": "weibo", "text": "星云支付还行", "lang": "zh",
                    "published_at": (start + timedelta(minutes=i)).isoformat(),
                    "ingested_at": (start + timedelta(minutes=i)).isoformat(), "author_id": f"o{i}",
                    "author_name": "n", "author_kind": "user", "followers": 10, "verified": False,
                    "reposts": 0, "comments": 0, "likes": 0, "views": 0, "sentiment": 0.9, "negative": False,
                    "brands": ["星云支付"], "categories": [], "matches": [{"brand": "星云支付", "category": "general"}]})
    return out


def expected_history(posts: list[dict]) -> dict[tuple[str, str], list[HistoryRow]]:
    hours: dict = defaultdict(lambda: defaultdict(lambda: {"posts": 0, "neg": 0, "core": 0.0, "eng": 0, "reach": 0,
                                                           "platforms": Counter()}))
    for p in posts:
        m = p["matches"][0]
        start = int(datetime.fromisoformat(p["published_at"]).timestamp()) // 3600 * 3600 * 1000
        h = hours[(m["brand"], m["category"])][start]
        h["posts"] += 1
        h["neg"] += int(p["negative"])
        h["core"] += 2.0 if p["author_kind"] == "media" else 0.0
        h["eng"] += p["reposts"] + p["comments"] + p["likes"]
        h["reach"] = max(h["reach"], p["followers"], p["views"])
        h["platforms"][p["platform"]] += 1
    return {key: [HistoryRow(s, 60.0, h["posts"], h["neg"], h["core"], h["eng"], 0, h["reach"],
                             tuple(sorted(h["platforms"].values()))) for s, h in sorted(by.items())]
            for key, by in hours.items()}


@pytest.mark.services
def test_export_folds_the_stored_hours_into_the_same_baselines(own_clickhouse, tmp_path):
    settings = own_clickhouse.settings
    migrate_db(settings)
    start = (datetime.now(CST) - timedelta(hours=4)).replace(minute=0, second=0, microsecond=0)
    posts = stored_posts(start, hours=3)
    writer = ClickHouseWriter(settings.clickhouse).connect()
    writer.insert("posts", [post_row(p) for p in posts])
    writer.close()

    out = run_yuqing(["baselines", "export", "--hours", "6", "--output", str(tmp_path / "b.json")], settings)
    assert out.returncode == 0, out.stderr
    assert "2 keys" in out.stderr
    got = load_baselines(tmp_path / "b.json")
    want = {key: baseline_from_history(rows) for key, rows in expected_history(posts).items()}
    assert set(got) == set(want) == {("青柠云盘", "privacy"), ("星云支付", "general")}
    for key, b in want.items():
        for name in ("norm_posts", "norm_negative", "norm_core", "norm_engagement", "norm_platforms",
                     "norm_reach_log", "mean"):
            assert getattr(got[key], name) == pytest.approx(getattr(b, name), rel=1e-6), (key, name)
        assert got[key].norm_windows == b.norm_windows
    assert got[("青柠云盘", "privacy")].norm_posts > 2.0  # most of three hours at 5/min: a loud key

    only = run_yuqing(["baselines", "export", "--hours", "6", "--watchlist", "data/watchlist.sample.yaml"], settings)
    assert only.returncode == 0, only.stderr
    assert "2 keys" in only.stderr  # both brands and categories are in the sample watchlist
    bad = run_yuqing(["baselines", "export", "--hours", "0"], settings)
    assert bad.returncode == 1 and "--hours" in bad.stderr and "Traceback" not in bad.stderr
