"""Sources shaped like real Chinese sites, served on loopback: GB2312/GBK/Big5 feeds and boards,
entity-broken feeds, entity attacks, JSON with unknown charsets, every time form, a future item
beside good ones, isolation between sources and the preview (`--out`) without Kafka."""
import json
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from ingest.crawler import Crawler
from ingest.http import FetchError, HttpClient, HttpConfig
from ingest.metrics import IngestMetrics
from ingest.preview import PreviewSink
from ingest.sources import FetchContext, build_source
from ingest.sources.base import Page, Source
from ingest.sources.rss import UnsafeFeed, parse_feed
from ingest.state import CursorStore
from yuqing.cli import main

GBK_ONLY = "朱镕基"                 # 镕: a GBK character that GB2312 lacks
TRADITIONAL = "飛鳥出行數據洩露"
HKSCS = "搭𨋢"                      # 𨋢: Big5-HKSCS only
FETCHED = datetime(2026, 12, 6, 2, 30, tzinfo=timezone.utc)   # 10:30 in Shanghai
LOOPBACK = ("127.0.0.0/8",)


def ctx(**kw):
    config = HttpConfig(timeout_s=2, retries=0, min_interval_s=0, allow_private_networks=LOOPBACK)
    return FetchContext(http=HttpClient(config), clock=lambda: FETCHED, **kw)


def fetch_all(raw):
    pages = list(build_source(raw, "sources[0]").fetch({}, ctx()))
    return [item for page in pages for item in page.items]


def posts_of(items):
    return [i.post for i in items if i.post is not None]


GB_FEED = f"""<?xml version="1.0" encoding="gb2312"?>
<rss version="2.0"><channel><title>新闻</title>
<item><title>{GBK_ONLY}&nbsp;谈快送 & 骑手</title><link>https://news.example/1</link><guid>g1</guid>
<pubDate>Sun, 06 Dec 2026 01:00:00 GMT</pubDate><description>快送外卖被曝泄露用户信息&nbsp;&copy;新华</description></item>
<item><title>第二条</title><link>https://news.example/2?a=1&b=2</link><guid>g2</guid>
<pubDate>2026-12-06 09:00</pubDate><description>骑手 &amp; 用户</description></item>
</channel></rss>"""


def test_gb2312_feed_with_a_gbk_character_and_broken_entities(web):
    web.add("/gb.xml", GB_FEED.encode("gbk"), "application/rss+xml")   # no charset in the header
    items = fetch_all({"name": "gb", "type": "rss", "url": web.url("/gb.xml")})
    first, second = posts_of(items)
    assert first["title"] == f"{GBK_ONLY} 谈快送 & 骑手"
    assert first["text"] == "快送外卖被曝泄露用户信息 ©新华"
    assert second["url"] == "https://news.example/2?a=1&b=2" and second["text"] == "骑手 & 用户"
    assert second["published_at"] == "2026-12-06T09:00:00+08:00"   # no zone: the source's (Asia/Shanghai)


def test_big5_feed_with_hkscs_characters(web):
    feed = f"""<?xml version="1.0" encoding="big5"?><rss version="2.0"><channel><title>港聞</title>
<item><title>{TRADITIONAL}</title><guid>b1</guid><pubDate>Sun, 06 Dec 2026 09:00:00 +0800</pubDate>
<description>{HKSCS}：{TRADITIONAL}，用戶資料外洩</description></item></channel></rss>"""
    web.add("/big5.xml", feed.encode("big5hkscs"), "text/xml; charset=big5")
    (post,) = posts_of(fetch_all({"name": "hk", "type": "rss", "url": web.url("/big5.xml")}))
    assert post["title"] == TRADITIONAL and post["text"] == f"{HKSCS}：{TRADITIONAL}，用戶資料外洩"


def test_atom_in_gb18030_labelled_gbk_in_the_header(web):
    feed = f"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>论坛</title>
<entry><id>tag:bbs,2026:1</id><title>{GBK_ONLY}</title><updated>2026-12-06T10:00:00+08:00</updated>
<author><name>网友</name></author><content type="html">&lt;p&gt;内容&lt;/p&gt;</content></entry></feed>"""
    web.add("/atom", feed.encode("gb18030"), "application/atom+xml; charset=gbk")
    (post,) = posts_of(fetch_all({"name": "a", "type": "atom", "url": web.url("/atom")}))
    assert post["title"] == GBK_ONLY and post["text"] == "内容" and post["author"]["name"] == "网友"


def test_rss_091_and_rss_10(web):
    rss091 = f"""<?xml version="1.0" encoding="gb2312"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "{web.url('/rss-0.91.dtd')}">
<rss version="0.91"><channel><title>旧站</title><item><title>{GBK_ONLY}旧闻</title>
<link>https://old.example/1</link><description>正文</description></item></channel></rss>"""
    web.add("/091", rss091.encode("gbk"), "text/xml")
    web.add("/rss-0.91.dtd", "<!ENTITY leak 'x'>", "application/xml-dtd")
    (item,) = fetch_all({"name": "old", "type": "rss", "url": web.url("/091")})
    assert item.post is None and item.reason == "published_at: time is missing"   # 0.91 items carry no date
    assert GBK_ONLY in json.loads(item.raw)["title"]
    assert web.hits("/rss-0.91.dtd") == 0                                         # the external DTD is never fetched
    rdf = """<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/"><channel rdf:about="https://x.example/"><title>x</title></channel>
<item rdf:about="https://x.example/1"><title>快送</title><link>https://x.example/1</link>
<dc:date>2026-12-06T09:30:00+08:00</dc:date><dc:creator>记者</dc:creator><description>泄露</description></item>
</rdf:RDF>"""
    web.add("/rdf", rdf, "application/rdf+xml")
    (post,) = posts_of(fetch_all({"name": "rdf", "type": "rss", "url": web.url("/rdf")}))
    assert post["published_at"] == "2026-12-06T09:30:00+08:00" and post["author"]["name"] == "记者"


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title><guid>1</guid>
<pubDate>Sun, 06 Dec 2026 01:00:00 GMT</pubDate></item></channel></rss>"""


def test_entity_expansion_is_refused(web):
    web.add("/bomb", BILLION_LAUGHS, "application/rss+xml")
    with pytest.raises(FetchError) as info:
        fetch_all({"name": "bomb", "type": "rss", "url": web.url("/bomb")})
    assert info.value.status == "parse" and "declares XML entities" in str(info.value)
    with pytest.raises(UnsafeFeed):   # refused before any parser runs, not after an expansion
        parse_feed(BILLION_LAUGHS.encode())


@pytest.mark.parametrize("target", ["file:///etc/passwd", "/secret"])
def test_external_entities_are_refused_and_never_fetched(web, target):
    web.add("/secret", "TOP-SECRET", "text/plain")
    url = web.url(target) if target.startswith("/") else target
    feed = f"""<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{url}">]>
<rss version="2.0"><channel><title>t</title><item><title>&xxe;</title><guid>1</guid>
<pubDate>Sun, 06 Dec 2026 01:00:00 GMT</pubDate></item></channel></rss>"""
    web.add("/xxe", feed, "application/rss+xml")
    with pytest.raises(FetchError, match="declares XML entities"):
        fetch_all({"name": "xxe", "type": "rss", "url": web.url("/xxe")})
    assert web.hits("/secret") == 0


BOARD = """<html><head>{meta}<title>论坛</title></head><body><ul>
<li class="t"><a href="/p/1">{title}</a><span class="time">{when}</span></li>
<li class="t"><a href="/p/2">骑手态度差</a><span class="time">5分钟前</span></li>
</ul></body></html>"""
BOARD_SOURCE = {"type": "html", "platform": "forum",
                "list": {"item": "li.t", "fields": {"id": {"selector": "a", "attr": "href", "regex": r"/p/(\d+)"},
                                                    "title": "a", "text": "a", "published_at": ".time"}}}


def test_board_labelled_gb2312_in_meta_with_a_gbk_character(web):
    page = BOARD.format(meta='<meta http-equiv="Content-Type" content="text/html; charset=gb2312">',
                        title=f"{GBK_ONLY}说快送泄露", when="2026年12月06日 10:00")
    web.add("/board", page.encode("gbk"), "text/html")
    first, second = posts_of(fetch_all({"name": "bbs", "url": web.url("/board"), **BOARD_SOURCE}))
    assert first["text"] == f"{GBK_ONLY}说快送泄露" and first["published_at"] == "2026-12-06T10:00:00+08:00"
    assert second["published_at"] == "2026-12-06T10:25:00+08:00"   # 5 minutes before the fetch


def test_big5_board_by_header_and_a_gbk_board_with_no_label_at_all(web):
    page = BOARD.format(meta="", title=f"{TRADITIONAL}{HKSCS}", when="昨天 21:15")
    page = page.replace("论坛", "論壇").replace("骑手态度差", "騎手態度差")
    web.add("/hk", page.encode("big5hkscs"), "text/html; charset=big5")
    first, _ = posts_of(fetch_all({"name": "hk", "url": web.url("/hk"), **BOARD_SOURCE}))
    assert first["text"] == f"{TRADITIONAL}{HKSCS}" and first["published_at"] == "2026-12-05T21:15:00+08:00"
    page = BOARD.format(meta="", title="快送外卖被曝泄露用户信息，多名用户收到诈骗电话", when="12-06 08:00")
    web.add("/nolabel", page.encode("gbk"), "text/html")
    first, _ = posts_of(fetch_all({"name": "nl", "url": web.url("/nolabel"), **BOARD_SOURCE}))
    assert first["text"] == "快送外卖被曝泄露用户信息，多名用户收到诈骗电话"


FIELDS = {"id": "mid", "text": "text", "published_at": "t"}


def test_json_api_with_an_unknown_charset_label(web):
    body = json.dumps({"list": [{"mid": 1, "text": f"{GBK_ONLY}：快送泄露", "t": "3小时前"}]}, ensure_ascii=False)
    web.add("/api", body.encode("gbk"), "application/json; charset=x-weird-label")
    (post,) = posts_of(fetch_all({"name": "api", "type": "json_api", "url": web.url("/api"), "items": "list",
                                  "fields": FIELDS}))
    assert post["text"] == f"{GBK_ONLY}：快送泄露" and post["published_at"] == "2026-12-06T07:30:00+08:00"


TIME_ITEMS = [
    ("rfc822", "Sun, 06 Dec 2026 01:00:00 GMT", "2026-12-06T09:00:00+08:00"),
    ("iso", "2026-12-06T09:00:00+08:00", "2026-12-06T09:00:00+08:00"),
    ("plain", "2026-12-06 09:00", "2026-12-06T09:00:00+08:00"),
    ("plain_s", "2026-12-06 09:00:05", "2026-12-06T09:00:05+08:00"),
    ("cn", "2026年12月06日 09:00", "2026-12-06T09:00:00+08:00"),
    ("yearless", "12-06 09:00", "2026-12-06T09:00:00+08:00"),
    ("yesterday", "昨天 10:00", "2026-12-05T10:00:00+08:00"),
    ("before_yesterday", "前天 10:00", "2026-12-04T10:00:00+08:00"),
    ("just_now", "刚刚", "2026-12-06T10:30:00+08:00"),
    ("minutes", "5分钟前", "2026-12-06T10:25:00+08:00"),
    ("hours", "3小时前", "2026-12-06T07:30:00+08:00"),
    ("days", "2天前", "2026-12-04T10:30:00+08:00"),
    ("epoch_s", 1796520600, "2026-12-06T09:30:00+08:00"),
    ("epoch_ms", 1796520600000, "2026-12-06T09:30:00+08:00"),
    ("epoch_us", 1796520600000000, "2026-12-06T09:30:00+08:00"),
]
BAD_TIMES = [("nan", "NaN", "not a finite number"), ("negative", -1796520600, "negative epoch"),
             ("garbage", "上周某天", "unreadable time"), ("future", "2026-12-06 12:00", "ahead of the fetch time")]


def serve_times(web, future="2026-12-06 12:00"):
    items = [{"mid": name, "text": f"快送 {name}", "t": value} for name, value, _ in TIME_ITEMS]
    items += [{"mid": name, "text": f"快送 {name}", "t": future if name == "future" else value}
              for name, value, _ in BAD_TIMES]
    body = json.dumps({"list": items}, ensure_ascii=False).replace('"NaN"', "NaN")
    web.add("/times", body, "application/json")
    return {"name": "times", "type": "json_api", "url": web.url("/times"), "items": "list", "fields": FIELDS}


def times_crawler(web, tmp_path):
    """A crawler over the times page alone, previewing into tmp_path (posts and rejects), its clock at FETCHED."""
    sink = PreviewSink(tmp_path / "posts.jsonl", tmp_path / "rejects.jsonl")
    crawler = Crawler([build_source(serve_times(web), "sources[0]")], sink,
                      HttpClient(HttpConfig(retries=0, min_interval_s=0, allow_private_networks=LOOPBACK)),
                      tmp_path / "state", clock=lambda: FETCHED, log=lambda _m: None)
    return crawler, sink


def test_every_time_form_and_bad_times_beside_good_ones_through_the_crawler(web, tmp_path):
    crawler, sink = times_crawler(web, tmp_path)
    (result,) = crawler.run_once()
    sink.close()
    assert result.error is None and result.produced == len(TIME_ITEMS) and result.rejected == len(BAD_TIMES)
    posts = {json.loads(line)["id"]: json.loads(line) for line in (tmp_path / "posts.jsonl").read_text().splitlines()}
    got = {pid: datetime.fromisoformat(p["published_at"]) for pid, p in posts.items()}
    assert got == {f"weibo:{n}": datetime.fromisoformat(want) for n, _v, want in TIME_ITEMS}
    assert posts["weibo:plain"]["published_at"] == "2026-12-06T09:00:00+08:00"   # the source's zone, written
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    by_item = {json.loads(r["raw"])["mid"]: r["reason"] for r in rejects}
    for name, _value, reason in BAD_TIMES:
        assert reason in by_item[name], (name, by_item[name])
    assert all(r["source"] == "times" and r["stage"] == "ingest" for r in rejects)
    # the cursor moved to the newest good post, not to the future one
    assert CursorStore(tmp_path / "state").load("times") == {"newest": "2026-12-06T10:30:00+08:00"}


class Exploding(Source):
    """A source with a bug: every fetch raises."""

    kind = "exploding"

    def configure(self, opts):
        pass

    def fetch(self, cursor, ctx):
        raise ZeroDivisionError("division by zero in a parser")
        yield Page([], {})


def test_a_failing_source_does_not_stop_the_others_and_reports_its_health(web, tmp_path):
    raw = serve_times(web)
    broken = Exploding({"name": "broken"}, "sources[0]")
    good = build_source(raw, "sources[1]")
    sink = PreviewSink(tmp_path / "posts.jsonl")
    metrics = IngestMetrics()
    moments = iter([FETCHED + timedelta(minutes=m) for m in range(100)])
    crawler = Crawler([broken, good], sink,
                      HttpClient(HttpConfig(retries=0, min_interval_s=0, allow_private_networks=LOOPBACK)),
                      tmp_path / "state", metrics, clock=lambda: next(moments), log=lambda _m: None)
    first = crawler.run_once()
    second = crawler.run_once()
    assert [r.error is None for r in first] == [False, True]
    assert first[1].produced == len(TIME_ITEMS) and second[1].duplicates == len(TIME_ITEMS) + len(BAD_TIMES)
    assert "ZeroDivisionError: division by zero in a parser" in second[0].error
    health = crawler.health["broken"]
    assert health.consecutive_failures == 2 and health.last_success is None
    assert crawler.health["times"].consecutive_failures == 0 and crawler.health["times"].last_success is not None
    assert "2 consecutive failure(s)" in second[0].summary() and "last success never" in second[0].summary()
    value = metrics.registry.get_sample_value
    assert value("yuqing_crawler_consecutive_failures", {"source": "broken"}) == 2
    assert value("yuqing_crawler_last_error_info", {"source": "broken", "status": "internal"}) == 1
    assert value("yuqing_crawler_consecutive_failures", {"source": "times"}) == 0
    assert value("yuqing_crawler_last_success_timestamp_seconds", {"source": "times"}) > 0


def test_preview_command_writes_posts_and_rejects_without_kafka(web, tmp_path, capsys):
    shanghai_now = datetime.now(timezone(timedelta(hours=8)))
    serve_times(web, future=(shanghai_now + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M"))
    web.add("/gb.xml", GB_FEED.encode("gbk"), "application/rss+xml")
    config = {"http": {"retries": 0, "min_interval_s": 0, "allow_private_networks": list(LOOPBACK)},
              "sources": [{"name": "times", "type": "json_api", "url": web.url("/times"), "items": "list",
                           "fields": FIELDS},
                          {"name": "gb", "type": "rss", "url": web.url("/gb.xml")}]}
    path = tmp_path / "crawl.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    out, rejects = tmp_path / "posts.jsonl", tmp_path / "rejects.jsonl"
    # an unreachable broker proves no Kafka is involved
    code = main(["crawl", "--config", str(path), "--once", "--out", str(out), "--dlq-out", str(rejects),
                 "--bootstrap", "127.0.0.1:1"])
    assert code == 0
    posts = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(posts) >= len(TIME_ITEMS) + 2 and any(GBK_ONLY in p.get("title", "") for p in posts)
    assert all({"id", "platform", "text", "published_at"} <= set(p) for p in posts)
    dead = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert len(dead) == len(BAD_TIMES) and all(d["reason"] and d["raw"] for d in dead)
    talk = capsys.readouterr().err
    assert "crawl times:" in talk and "consecutive failure(s)" in talk and "crawl preview:" in talk


def test_preview_flags_are_checked(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sources: [{name: a, type: rss, url: 'http://x'}]\n", encoding="utf-8")
    assert main(["crawl", "--config", str(path), "--out", str(tmp_path / "o.jsonl")]) == 1
    assert main(["crawl", "--config", str(path), "--once", "--dlq-out", str(tmp_path / "r.jsonl")]) == 1


def test_a_guid_that_is_no_address_is_not_taken_for_the_url(web):
    feed = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>
<item><title>快送</title><guid>12345</guid><pubDate>Sun, 06 Dec 2026 01:00:00 GMT</pubDate></item></channel></rss>"""
    web.add("/g", feed, "application/rss+xml")
    (post,) = posts_of(fetch_all({"name": "g", "type": "rss", "url": web.url("/g")}))
    assert post["id"] == "news:12345" and "url" not in post


def test_a_reject_seen_on_every_poll_is_dead_lettered_once(web, tmp_path):
    crawler, sink = times_crawler(web, tmp_path)
    (first,) = crawler.run_once()
    (second,) = crawler.run_once()
    sink.close()
    assert first.rejected == len(BAD_TIMES) and second.rejected == 0
    assert second.duplicates == len(TIME_ITEMS) + len(BAD_TIMES)
    assert len((tmp_path / "rejects.jsonl").read_text().splitlines()) == len(BAD_TIMES)
