"""Crawl phase: items/s parsed per core for feeds, boards and JSON pages served on loopback.

    python -m bench --only crawl

Pages are generated here (Chinese text, GB2312/GBK/Big5 labels as real sites send them),
served once by a loopback HTTP server and fetched through the crawler's own HttpClient;
then each source's parse path runs over the fetched responses for at least `min_cpu_s` of
CPU on this thread (items / thread CPU seconds = items/s on one core). Beside the new
parsers runs the pre-change one ("before": stdlib ElementTree feeds via defusedxml,
BeautifulSoup guessing from the header label, json.loads of a body decoded with the
header's label), kept here only so the cost of the change is measured, not guessed.
The old feed parser refuses gb2312/big5 feeds outright: that figure is "refused".
"""
from __future__ import annotations

import json
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from bench.harness import say

FETCHED = datetime(2026, 12, 6, 2, 30, tzinfo=timezone.utc)
WORDS = ("快送外卖被曝泄露用户信息", "骑手态度太差了", "朱镕基讲话", "多名用户称收到诈骗电话", "客服一直不回复",
         "订单莫名被取消", "APP又崩了[怒]", "退款三天还没到账")
TRAD = ("飛鳥出行數據洩露", "用戶資料外洩", "客服一直不回覆", "訂單莫名被取消")


def _text(i: int, words: tuple[str, ...] = WORDS) -> str:
    return "，".join(words[(i + k) % len(words)] for k in range(4))


def _stamp(i: int) -> datetime:
    return FETCHED - timedelta(minutes=i + 1)


def make_feed(n: int, encoding: str) -> bytes:
    big5 = encoding.startswith("big5")
    words, reporter, channel = (TRAD, "記者", "新聞") if big5 else (WORDS, "记者", "新闻")
    items = "".join(
        f"<item><title>{_text(i, words)[:12]}</title><link>https://news.example/a/{i}.html</link><guid>n{i}</guid>"
        f"<pubDate>{_stamp(i).strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate><dc:creator>{reporter}{i % 7}</dc:creator>"
        f"<description><![CDATA[<p>{_text(i, words)}</p>]]></description></item>" for i in range(n))
    doc = (f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0" '
           f'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>{channel}</title>{items}</channel></rss>')
    return doc.encode("gb18030" if encoding in ("gb2312", "gbk") else "big5hkscs" if encoding == "big5" else "utf-8")


def make_board(n: int, encoding: str) -> bytes:
    rows = "".join(
        f'<li class="thread"><a class="t" href="/p/{i}">{_text(i)}</a><span class="au">楼主{i % 9}</span>'
        f'<span class="n">{i % 5}.{i % 10}万</span><span class="time">{_stamp(i).astimezone(timezone(timedelta(hours=8))):%Y-%m-%d %H:%M}</span></li>'
        for i in range(n))
    page = (f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={encoding}">'
            f"<title>论坛</title></head><body><ul>{rows}</ul></body></html>")
    return page.encode("gb18030" if encoding in ("gb2312", "gbk") else "utf-8")


def make_json(n: int) -> bytes:
    items = [{"mid": str(10_000 + i), "text": _text(i), "created_at": int(_stamp(i).timestamp() * 1000),
              "user": {"id": i % 50, "screen_name": f"用户{i % 50}", "followers_count": i * 37}} for i in range(n)]
    return json.dumps({"data": {"list": items}}, ensure_ascii=False).encode("gbk")


@dataclass
class Served:
    path: str
    content_type: str
    body: bytes


def serve_and_fetch(pages: list[Served]) -> dict[str, Any]:
    """Serve the pages on 127.0.0.1 and fetch each once with the crawler's HttpClient."""
    from ingest.http import HttpClient, HttpConfig

    by_path = {p.path: p for p in pages}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_GET(self) -> None:  # noqa: N802
            page = by_path.get(self.path.split("?")[0])
            body = page.body if page else b"User-agent: *\nAllow: /\n"
            self.send_response(200 if page or self.path == "/robots.txt" else 404)
            self.send_header("Content-Type", page.content_type if page else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        try:
            client = HttpClient(HttpConfig(min_interval_s=0, retries=0, allow_private_networks=("127.0.0.0/8",)))
        except TypeError:  # a checkout from before the address guard
            client = HttpClient(HttpConfig(min_interval_s=0, retries=0))
        return {p.path: client.get(base + p.path) for p in pages}
    finally:
        server.shutdown()
        server.server_close()


class CannedHttp:
    """Hands a source the responses fetched above, so only parsing is timed."""

    def __init__(self, response: Any):
        self.response = response

    def get(self, url: str, **_kw: Any) -> Any:
        return self.response


def per_core(run: Callable[[], int], min_cpu_s: float) -> float:
    """Items per second of this thread's CPU, repeating `run` (which returns its item count)."""
    run()  # warm-up
    items, started = 0, time.thread_time()
    while True:
        items += run()
        spent = time.thread_time() - started
        if spent >= min_cpu_s:
            return items / spent


# ------------------------------------------------------------------ before the change

def _old_local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _old_child_text(element: ET.Element, *names: str) -> str | None:
    for name in names:
        for child in element:
            if _old_local(child.tag) == name:
                text = "".join(child.itertext()).strip()
                if text:
                    return text
    return None


def old_parse_feed(body: bytes) -> list[dict[str, Any]]:
    """The feed reader as it was: defusedxml ElementTree (refuses multi-byte encodings and &nbsp;)."""
    import defusedxml.ElementTree as SafeET

    root = SafeET.fromstring(body)
    out = []
    for entry in (e for e in root.iter() if _old_local(e.tag) in ("item", "entry")):
        out.append({"id": _old_child_text(entry, "guid", "id"), "title": _old_child_text(entry, "title"),
                    "text": _old_child_text(entry, "encoded", "content", "description", "summary"),
                    "url": _old_child_text(entry, "link"),
                    "published_at": _old_child_text(entry, "pubDate", "published", "date", "updated"),
                    "author.name": _old_child_text(entry, "creator")})
        ET.tostring(entry, encoding="utf-8")
    return out


# ------------------------------------------------------------------ the phase

def run(items_per_page: int = 200, min_cpu_s: float = 1.0) -> dict[str, Any]:
    from bs4 import BeautifulSoup

    from ingest.mapping import PostDefaults, assemble_post, map_fields
    from ingest.sources import FetchContext, build_source
    from ingest.times import parse_zone

    n = items_per_page
    pages = [Served("/feed-utf8.xml", "application/rss+xml", make_feed(n, "utf-8")),
             Served("/feed-gb2312.xml", "application/rss+xml", make_feed(n, "gb2312")),
             Served("/feed-big5.xml", "text/xml; charset=big5", make_feed(n, "big5")),
             Served("/board-utf8", "text/html; charset=utf-8", make_board(n, "utf-8")),
             Served("/board-gb2312", "text/html; charset=gb2312", make_board(n, "gb2312")),
             Served("/api", "application/json; charset=gbk", make_json(n))]
    say(f"crawl: serving {len(pages)} pages of {n} items on loopback")
    responses = serve_and_fetch(pages)

    def new_path(raw: dict[str, Any], path: str) -> Callable[[], int]:
        source = build_source({"url": "http://127.0.0.1/x", **raw}, "bench")
        ctx = FetchContext(http=CannedHttp(responses[path]), clock=lambda: FETCHED)  # type: ignore[arg-type]

        def once() -> int:
            count = sum(1 for page in source.fetch({}, ctx) for item in page.items if item.post is not None)
            if count != n:
                raise RuntimeError(f"{path}: parsed {count} of {n} items")
            return count
        return once

    defaults = PostDefaults(platform="news", source="rss", default_tz=parse_zone("+08:00"))
    fields = {"id": "mid", "text": "text", "published_at": "created_at", "author.id": "user.id",
              "author.name": "user.screen_name", "author.followers": "user.followers_count"}
    board_fields = {"id": {"selector": "a.t", "attr": "href", "regex": r"/p/(\d+)"}, "title": "a.t",
                    "url": {"selector": "a.t", "attr": "href"}, "author.name": ".au", "metrics.comments": ".n",
                    "published_at": ".time"}
    board_raw = {"name": "board", "type": "html", "platform": "forum",
                 "list": {"item": "li.thread", "fields": board_fields}}

    def old_feed(path: str) -> Callable[[], int]:
        body = responses[path].body

        def once() -> int:
            return len([assemble_post(v, defaults, FETCHED) for v in old_parse_feed(body)])
        return once

    def old_board(path: str) -> Callable[[], int]:
        response = responses[path]
        source = build_source({"url": "http://127.0.0.1/x", **board_raw}, "bench")

        def once() -> int:
            soup = BeautifulSoup(response.body, "html.parser", from_encoding=response.headers.get_content_charset())
            return len([(str(el).encode("utf-8"),
                         assemble_post({s.target: s.extract(el, response.url) for s in source.list_fields},
                                       source.post_defaults, FETCHED)) for el in soup.select("li.thread")])
        return once

    def old_json(path: str) -> Callable[[], int]:
        response = responses[path]
        api_defaults = PostDefaults(platform="weibo", source="api", default_tz=parse_zone("+08:00"))

        def once() -> int:
            answer = json.loads(response.body.decode(response.headers.get_content_charset() or "utf-8"))
            return len([(json.dumps(item, ensure_ascii=False).encode("utf-8"),
                         assemble_post(map_fields(item, fields), api_defaults, FETCHED))
                        for item in answer["data"]["list"]])
        return once

    cases: list[tuple[str, Callable[[], int], Callable[[], int] | None]] = [
        ("feed (RSS 2.0, UTF-8)", new_path({"name": "f", "type": "rss"}, "/feed-utf8.xml"), old_feed("/feed-utf8.xml")),
        ("feed (RSS 2.0, gb2312 label)", new_path({"name": "g", "type": "rss"}, "/feed-gb2312.xml"),
         old_feed("/feed-gb2312.xml")),
        ("feed (RSS 2.0, big5 label)", new_path({"name": "b", "type": "rss"}, "/feed-big5.xml"),
         old_feed("/feed-big5.xml")),
        ("board (HTML list, UTF-8)", new_path(board_raw, "/board-utf8"), old_board("/board-utf8")),
        ("board (HTML list, gb2312 label)", new_path(board_raw, "/board-gb2312"), old_board("/board-gb2312")),
        ("JSON API (gbk)", new_path({"name": "j", "type": "json_api", "items": "data.list", "fields": fields}, "/api"),
         old_json("/api")),
    ]
    rows = []
    for label, new, old in cases:
        say(f"crawl: {label}")
        new_rate = per_core(new, min_cpu_s)
        old_rate: float | str
        try:
            old_rate = per_core(old, min_cpu_s) if old else "-"
        except Exception as exc:  # noqa: BLE001 - the old parser refusing a feed is the finding
            old_rate = f"refused ({type(exc).__name__})"
        ratio = round(new_rate / old_rate, 2) if isinstance(old_rate, float) else None
        rows.append({"what": label, "new_items_per_s": round(new_rate, 1),
                     "before_items_per_s": round(old_rate, 1) if isinstance(old_rate, float) else old_rate,
                     "new_over_before": ratio})
    return {"crawl_items_per_page": n, "crawl_parse": rows}


def render(results: dict[str, Any]) -> str:
    """The crawl phase's own table (items/s per core, new parser beside the pre-change one)."""
    from bench.report import fmt, table

    rows = results.get("crawl_parse")
    if not rows:
        return ""
    body = [[r["what"], fmt(r["new_items_per_s"], "items/s"),
             fmt(r["before_items_per_s"], "items/s") if isinstance(r["before_items_per_s"], float)
             else r["before_items_per_s"], "-" if r["new_over_before"] is None else f"{r['new_over_before']:.2f}x"]
            for r in rows]
    return table(body, ["crawl parse, one core (pages served on loopback)", "new", "before", "new/before"])
