"""Dedup by id and text fingerprint (persisted), and atomic cursor files."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from ingest.dedup import DedupConfig, Deduper
from ingest.state import CursorStore, StateError, write_json_atomic
from core.post import Post

T0 = datetime(2026, 11, 25, 10, tzinfo=timezone(timedelta(hours=8)))
LONG = "快送APP泄露了我的个人信息，客服一直不回复，太过分了"


def post(pid, text=LONG, minutes=0, repost_of=None, title=None):
    return Post(id=pid, platform="weibo", text=text, published_at=T0 + timedelta(minutes=minutes),
                repost_of=repost_of, title=title)


def test_same_id_is_a_duplicate():
    d = Deduper()
    assert d.check(post("weibo:1")) is None
    d.add(post("weibo:1"))
    assert d.check(post("weibo:1", text="other words entirely here")) == "id"


def test_same_text_under_another_id_within_the_window_is_a_duplicate():
    d = Deduper(DedupConfig(window_s=3600))
    d.add(post("news:a"))
    assert d.check(post("forum:b", text=LONG.replace("，", " , ") + " https://x.cn/1", minutes=30)) == "text"
    assert d.check(post("forum:c", minutes=61)) is None  # outside the window


def test_reposts_and_short_texts_are_not_text_deduplicated():
    d = Deduper(DedupConfig(min_text_chars=12))
    d.add(post("weibo:1"))
    d.add(post("weibo:s1", text="崩了"))
    assert d.check(post("weibo:2", repost_of="weibo:1")) is None
    assert d.check(post("weibo:s2", text="崩了！")) is None


def test_forget_undoes_add():
    d = Deduper()
    d.add(post("weibo:1"))
    d.forget(post("weibo:1"))
    assert d.check(post("weibo:1")) is None and d.check(post("weibo:2")) is None


def test_state_survives_a_restart(tmp_path):
    path = tmp_path / "dedup.json"
    d = Deduper(path=path)
    d.add(post("weibo:1"))
    d.save()
    again = Deduper(path=path)
    assert again.check(post("weibo:1")) == "id"
    assert again.check(post("weibo:9")) == "text"


def test_prune_bounds_the_state():
    d = Deduper(DedupConfig(window_s=100, id_retention_s=1000, max_ids=2))
    for i in range(4):
        d.add(post(f"w:{i}", text=f"{LONG}{i}"), now_s=10_000 + i)
    d.prune(10_050)
    assert sorted(d.ids) == ["w:2", "w:3"]
    d.prune(20_000)
    assert not d.ids and not d.texts


def test_cursor_store_round_trip_and_atomic_write(tmp_path):
    store = CursorStore(tmp_path)
    assert store.load("weibo search/1") == {}
    store.save("weibo search/1", {"cursor": "abc", "newest": "2026-11-25T10:00:00+08:00"})
    assert store.load("weibo search/1")["cursor"] == "abc"
    assert store.path("weibo search/1").parent == tmp_path / "cursors"
    assert [p.name for p in (tmp_path / "cursors").iterdir()] == ["weibo_search_1.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "c.json"
    write_json_atomic(path, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"v": object()})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_corrupt_cursor_is_a_clear_error(tmp_path):
    store = CursorStore(tmp_path)
    store.path("s").parent.mkdir(parents=True)
    store.path("s").write_text("{nope")
    with pytest.raises(StateError, match="corrupt"):
        store.load("s")
