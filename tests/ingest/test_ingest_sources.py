"""Sources against a local web server (RSS/Atom, paged JSON, HTML list+detail) and JSONL replay."""
import json

import pytest

from ingest.config import CrawlConfigError, parse_crawl_config
from ingest.http import FetchError, HttpClient, HttpConfig
from ingest.sources import FetchContext, build_source
from ingest.sources.rss import parse_feed

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Example news</title>
<item><title>快送外卖被曝泄露用户信息</title><link>https://news.example/a/1.html</link>
  <guid>news-1</guid><pubDate>Wed, 25 Nov 2026 02:00:00 GMT</pubDate><dc:creator>记者甲</dc:creator>
  <description><![CDATA[<p>多名用户称&amp;收到<b>诈骗</b>电话</p>]]></description></item>
<item><title>第二条</title><link>https://news.example/a/2.html</link><guid>news-2</guid>
  <pubDate>Wed, 25 Nov 2026 03:00:00 GMT</pubDate>
  <content:encoded><![CDATA[正文二 <img alt="[怒]" src="x.png">]]></content:encoded></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Board</title>
<entry><id>tag:forum.example,2026:post-7</id><title>标题七</title>
  <link rel="alternate" href="https://forum.example/p/7"/><published>2026-11-25T10:00:00+08:00</published>
  <author><name>网友乙</name></author><content type="html">&lt;p&gt;内容七&lt;/p&gt;</content></entry>
</feed>"""


def ctx(**kw):
    config = HttpConfig(timeout_s=2, retries=1, backoff_base_s=0.01, backoff_max_s=0.02, min_interval_s=0,
                        allow_private_networks=("127.0.0.0/8",))
    return FetchContext(http=HttpClient(config), **kw)


def source(raw):
    return build_source(raw, "sources[0]")


def drain(src, cursor, context=None):
    pages = list(src.fetch(cursor, context or ctx()))
    return pages, [item.post for page in pages for item in page.items]


def test_rss_items_map_to_posts():
    entries = parse_feed(RSS.encode())
    assert [v["id"] for v, _raw in entries] == ["news-1", "news-2"]
    raw = json.loads(entries[0][1])
    assert raw["id"] == "news-1" and raw["title"] == "快送外卖被曝泄露用户信息"


def test_rss_source_with_cursor(web):
    web.add("/feed.xml", RSS, "application/rss+xml")
    src = source({"name": "news", "type": "rss", "url": web.url("/feed.xml"), "platform": "news"})
    pages, posts = drain(src, {})
    assert [p["id"] for p in posts] == ["news:news-1", "news:news-2"]
    first = posts[0]
    assert first["text"] == "多名用户称&收到诈骗电话" and first["title"] == "快送外卖被曝泄露用户信息"
    assert first["published_at"] == "2026-11-25T02:00:00+00:00"
    assert first["author"]["name"] == "记者甲" and first["source"] == "rss"
    assert posts[1]["text"] == "正文二 [怒]"
    cursor = pages[-1].cursor
    assert cursor == {"newest": "2026-11-25T03:00:00+00:00"}
    _pages, again = drain(src, cursor)
    assert [p["id"] for p in again] == ["news:news-2"]  # the older entry is skipped, the equal one left to dedup


def test_atom_feed(web):
    web.add("/atom", ATOM, "application/atom+xml")
    _pages, posts = drain(source({"name": "b", "type": "atom", "url": web.url("/atom"), "platform": "forum"}), {})
    (post,) = posts
    assert post["text"] == "内容七" and post["url"] == "https://forum.example/p/7"
    assert post["author"]["name"] == "网友乙" and post["published_at"] == "2026-11-25T10:00:00+08:00"


def test_a_page_that_is_no_feed_is_a_parse_error(web):
    web.add("/bad", "<html><body>维护中</body></html>", "application/rss+xml")
    with pytest.raises(FetchError) as info:
        drain(source({"name": "b", "type": "rss", "url": web.url("/bad")}), {})
    assert info.value.status == "parse"


def test_a_truncated_feed_is_recovered_and_its_empty_item_is_a_bad_item(web):
    web.add("/cut", "<rss><channel><item><title>半截</title>", "application/rss+xml")
    (page,) = list(source({"name": "b", "type": "rss", "url": web.url("/cut")}).fetch({}, ctx()))
    (item,) = page.items
    assert item.post is None and item.reason == "published_at: time is missing"


def weibo_item(n, minute=0):
    return {"mid": str(n), "text": f"第{n}条 快送", "created_at": f"2026-11-25 10:{minute:02d}:00",
            "user": {"id": 9, "screen_name": "u", "followers_count": 10}}


FIELDS = {"id": "mid", "text": "text", "published_at": "created_at", "author.id": "user.id",
          "author.name": "user.screen_name", "author.followers": "user.followers_count"}


def test_json_api_cursor_paging_resumes_from_the_saved_cursor(web):
    web.add("/search", json.dumps({"data": {"list": [weibo_item(1), weibo_item(2)], "next": "c2"}}), "application/json")
    web.add("/search?q=x&cursor=c2", json.dumps({"data": {"list": [weibo_item(3)], "next": "c3"}}), "application/json")
    web.add("/search?q=x&cursor=c3", json.dumps({"data": {"list": [], "next": None}}), "application/json")
    src = source({"name": "wb", "type": "json_api", "url": web.url("/search"), "params": {"q": "x"},
                  "items": "data.list", "fields": FIELDS,
                  "paging": {"mode": "cursor", "param": "cursor", "next": "data.next"}})
    pages, posts = drain(src, {})
    assert [p["id"] for p in posts] == ["weibo:1", "weibo:2", "weibo:3"]
    assert [pg.cursor["cursor"] for pg in pages] == ["c2", "c3", "c3"]
    assert posts[0]["published_at"] == "2026-11-25T10:00:00+08:00"
    web.add("/search?q=x&cursor=c3", json.dumps({"data": {"list": [weibo_item(4)], "next": "c4"}}), "application/json")
    web.add("/search?q=x&cursor=c4", json.dumps({"data": {"list": [], "next": None}}), "application/json")
    _pages, later = drain(src, pages[-1].cursor)
    assert [p["id"] for p in later] == ["weibo:4"]
    assert web.hits("/search") == 5  # 3 + 2: the second poll starts at the saved cursor


def test_json_api_page_mode_stops_at_known_ids_or_old_posts(web):
    reviews = [{"rid": i, "body": f"review {i}", "at": f"2026-11-25T1{9 - i}:00:00+08:00", "stars": 1}
               for i in range(6)]
    for page in range(3):
        web.add(f"/reviews?page={page + 1}&size=2",
                json.dumps({"reviews": reviews[page * 2:page * 2 + 2]}), "application/json")
    web.add("/reviews?page=4&size=2", json.dumps({"reviews": []}), "application/json")
    src = source({"name": "store", "type": "json_api", "url": web.url("/reviews"), "platform": "appstore",
                  "items": "reviews", "fields": {"id": "rid", "text": "body", "published_at": "at"},
                  "paging": {"mode": "page", "param": "page", "size_param": "size", "size": 2, "max_pages": 10}})
    pages, posts = drain(src, {})
    assert [p["id"] for p in posts] == [f"appstore:{i}" for i in range(6)]
    assert len(pages) == 3 and pages[-1].cursor["newest"] == "2026-11-25T19:00:00+08:00"
    # second poll: first page only holds posts not newer than the watermark except the newest one
    before = web.hits("/reviews")
    _pages, again = drain(src, pages[-1].cursor, ctx(known_id=lambda pid: True))
    assert web.hits("/reviews") - before == 1 and [p["id"] for p in again] == ["appstore:0"]


def test_json_api_non_object_items_are_bad_items(web):
    web.add("/a", json.dumps([{"mid": 1, "text": "x", "created_at": "2026-11-25 10:00"}, 7]), "application/json")
    src = source({"name": "a", "type": "json_api", "url": web.url("/a"), "fields": FIELDS})
    (page,) = list(src.fetch({}, ctx()))
    assert page.items[1].post is None and page.items[1].raw == b"7" and "not a JSON object" in page.items[1].reason


LIST = """<html><body><ul>
<li class="thread"><a class="t" href="/p/101">快送又崩了</a><span class="au">楼主A</span>
  <span class="n">1.2万</span><time datetime="2026-11-25T10:00:00+08:00">10:00</time></li>
<li class="thread"><a class="t" href="/p/102">骑手态度差</a><span class="au">楼主B</span>
  <span class="n">3</span><time datetime="2026-11-25T11:00:00+08:00">11:00</time></li>
<li class="thread"><a class="t" href="/private/p/103">内部</a><time datetime="2026-11-25T12:00:00+08:00">12</time></li>
</ul><a class="next" href="/board?pn=2">下一页</a></body></html>"""
LIST2 = """<html><body><ul><li class="thread"><a class="t" href="/p/104">第二页帖子</a>
<time datetime="2026-11-25T09:00:00+08:00">9</time></li></ul></body></html>"""
DETAIL = """<html><body><div class="content">{body}<br>第二行<img alt="[泪]" src="e.png"></div>
<div class="meta">浏览 {views}</div></body></html>"""


def html_source(web, **extra):
    raw = {"name": "tieba", "type": "html", "url": web.url("/board"), "platform": "tieba",
           "list": {"item": "li.thread", "next": "a.next", "max_pages": 3,
                    "fields": {"id": {"selector": "a.t", "attr": "href", "regex": r"/p/(\d+)"},
                               "title": "a.t", "url": {"selector": "a.t", "attr": "href"},
                               "author.name": ".au", "metrics.comments": ".n",
                               "published_at": {"selector": "time", "attr": "datetime"}}},
           "detail": {"fields": {"text": "div.content",
                                 "metrics.views": {"selector": "div.meta", "regex": r"(\d+)"}}}}
    raw.update(extra)
    return source(raw)


def test_html_list_and_detail_with_robots_and_paging(web):
    web.add("/robots.txt", "User-agent: *\nDisallow: /private\n", "text/plain")
    web.add("/board", LIST)
    web.add("/board?pn=2", LIST2)
    for n, body in ((101, "快送&nbsp;APP 闪退"), (102, "差评"), (104, "二页正文")):
        web.add(f"/p/{n}", DETAIL.format(body=body, views=n * 10))
    web.add("/private/p/103", DETAIL.format(body="secret", views=1))
    pages, posts = drain(html_source(web), {})
    assert [p["id"] for p in posts] == ["tieba:101", "tieba:102", "tieba:104"]
    first = posts[0]
    assert first["text"] == "快送 APP 闪退\n第二行[泪]" and first["title"] == "快送又崩了"
    assert first["url"] == web.url("/p/101") and first["author"]["name"] == "楼主A"
    assert first["metrics"] == {"reposts": 0, "comments": 12000, "likes": 0, "views": 1010}
    assert web.hits("/private/p/103") == 0  # robots.txt said no
    assert len(pages) == 2 and pages[-1].cursor["newest"] == "2026-11-25T11:00:00+08:00"


def test_html_detail_pages_are_not_fetched_for_known_ids(web):
    web.add("/board", LIST.replace("/private/p/103", "/p/103"))
    for n in (101, 102, 103):
        web.add(f"/p/{n}", DETAIL.format(body="b", views=1))
    src = html_source(web, list={"item": "li.thread", "fields": {
        "id": {"selector": "a.t", "attr": "href", "regex": r"/p/(\d+)"}, "url": {"selector": "a.t", "attr": "href"},
        "published_at": {"selector": "time", "attr": "datetime"}}})
    _pages, posts = drain(src, {}, ctx(known_id=lambda pid: pid in ("tieba:101", "tieba:103")))
    assert [p["id"] for p in posts] == ["tieba:102"]
    assert web.hits("/p/101") == 0 and web.hits("/p/103") == 0


def test_html_config_errors_are_clear():
    with pytest.raises(CrawlConfigError, match=r"sources\[0\] \(h\) list: field title: bad CSS selector"):
        parse_crawl_config({"sources": [{"name": "h", "type": "html", "url": "http://x",
                                         "list": {"item": "li", "fields": {"id": "a", "title": "a[["}}}]})


def write_jsonl(path, times, bad_line=None):
    lines = [json.dumps({"id": f"r:{i}", "platform": "weibo", "text": f"t{i}",
                         "published_at": f"2026-11-25T10:{m:02d}:{s:02d}+08:00"}, ensure_ascii=False)
             for i, (m, s) in enumerate(times)]
    if bad_line is not None:
        lines.insert(1, bad_line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_jsonl_replay_resumes_from_offset(tmp_path):
    path = tmp_path / "p.jsonl"
    write_jsonl(path, [(0, 0), (0, 1), (0, 2)], bad_line='{"id": "r:x", "text": 5}')
    src = source({"name": "rp", "type": "jsonl", "path": str(path)})
    pages, _ = drain(src, {})
    items = [i for p in pages for i in p.items]
    assert [i.post["id"] if i.post else None for i in items] == ["r:0", None, "r:1", "r:2"]
    assert items[1].raw == b'{"id": "r:x", "text": 5}' and "missing required" in items[1].reason
    assert items[0].post["source"] == "replay"
    cursor = pages[-1].cursor
    assert cursor == {"offset": path.stat().st_size, "line": 4}
    with path.open("a") as handle:
        handle.write(json.dumps({"id": "r:9", "platform": "weibo", "text": "new",
                                 "published_at": "2026-11-25T11:00:00+08:00"}) + "\n")
    pages, posts = drain(src, cursor)
    assert [p["id"] for p in posts] == ["r:9"]


class FakeClock:
    """Monotonic time that moves only when the source pauses; `stop_at` asks it to stop then."""

    def __init__(self, stop_at=None):
        self.now = 1000.0
        self.pauses = []
        self.stop_at = stop_at

    def monotonic(self):
        return self.now

    def wait(self, seconds):
        self.pauses.append(round(seconds, 6))
        if self.stop_at is not None and self.now + seconds >= self.stop_at:
            self.now = self.stop_at
            return True
        self.now += seconds
        return False


def test_jsonl_speedup_keeps_relative_timing_and_reports_progress(tmp_path):
    path = tmp_path / "p.jsonl"
    write_jsonl(path, [(0, 0), (0, 30), (1, 0)])  # 0 s, 30 s, 60 s of event time
    src = source({"name": "rp", "type": "jsonl", "path": str(path), "speedup": 100})
    talk = []
    clock = FakeClock()
    context = ctx(progress=talk.append, monotonic=clock.monotonic, wait=clock.wait)
    seen = []
    for page in src.fetch({}, context):
        seen.extend((round(clock.now - 1000.0, 6), i.post["id"]) for i in page.items)
    # 30 s of posts at 100x = 0.3 s apart
    assert [pid for _t, pid in seen] == ["r:0", "r:1", "r:2"]
    assert clock.pauses == [0.3, 0.3]
    assert [t for t, _pid in seen] == [0.0, 0.3, 0.6]
    assert talk and "end of file" in talk[-1] and "line 3" in talk[-1]


def test_jsonl_replay_stops_promptly(tmp_path):
    path = tmp_path / "p.jsonl"
    write_jsonl(path, [(0, 0), (59, 0)])
    src = source({"name": "rp", "type": "jsonl", "path": str(path), "speedup": 1})
    clock = FakeClock(stop_at=1000.2)  # asked to stop 0.2 s into a 59-minute pause
    pages = list(src.fetch({}, ctx(monotonic=clock.monotonic, wait=clock.wait)))
    assert clock.pauses == [59 * 60.0] and clock.now == 1000.2
    assert [i.post["id"] for p in pages for i in p.items] == ["r:0"]
    assert pages[-1].cursor["line"] == 1  # the unsent line is sent after a restart


@pytest.mark.parametrize("data,message", [
    ({"sources": []}, "sources must be a non-empty list"),
    ({"sources": [{"name": "a", "type": "ftp"}]}, "type must be one of"),
    ({"sources": [{"type": "rss", "url": "http://x"}]}, "missing required key 'name'"),
    ({"sources": [{"name": "a", "type": "rss", "url": "http://x", "colour": 1}]}, "unknown key"),
    ({"sources": [{"name": "a", "type": "rss", "url": "http://x"}] * 2}, "must be unique"),
    ({"sources": [{"name": "a", "type": "json_api", "url": "http://x", "fields": {"id": "x"},
                   "paging": {"mode": "cursor"}}]}, "needs paging.next"),
    ({"sources": [{"name": "a", "type": "rss", "url": "http://x", "interval_s": -1}]}, "interval_s must be"),
    ({"http": {"timeout": 3}, "sources": [{"name": "a", "type": "rss", "url": "http://x"}]}, "http: unknown key"),
    ({"nonsense": 1}, "unknown key"),
])
def test_crawl_config_errors(data, message):
    with pytest.raises(CrawlConfigError, match=message):
        parse_crawl_config(data)


def test_defaults_apply_to_sources():
    config = parse_crawl_config({"defaults": {"interval_s": 42, "timezone": "+00:00"},
                                 "http": {"min_interval_s": 0.5, "host_intervals": {"a.example": 2}},
                                 "sources": [{"name": "a", "type": "rss", "url": "http://x"},
                                             {"name": "b", "type": "rss", "url": "http://y", "enabled": False}]})
    assert [s.name for s in config.sources] == ["a"] and config.sources[0].interval_s == 42
    assert config.http.host_intervals == {"a.example": 2.0}


def test_jsonl_last_line_without_newline_is_read_unless_tailing(tmp_path):
    path = tmp_path / "p.jsonl"
    write_jsonl(path, [(0, 0), (0, 1)])
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    _pages, posts = drain(source({"name": "rp", "type": "jsonl", "path": str(path)}), {})
    assert [p["id"] for p in posts] == ["r:0", "r:1"]
    _pages, posts = drain(source({"name": "rp", "type": "jsonl", "path": str(path), "tail": True}), {})
    assert [p["id"] for p in posts] == ["r:0"]  # the unfinished line waits for its newline
