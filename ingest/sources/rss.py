"""RSS 0.9x/1.0/2.0 and Atom feeds (news sites, blogs, many forums' "latest threads" feeds).

Read with feedparser, which recovers ill-formed feeds (`&nbsp;`, a bare `&` in a title)
with its loose parser. The bytes are decoded first by ingest.charset (so a feed declaring
gb2312 that holds GBK-only characters, or big5 with HKSCS ones, reads right) and handed
over as UTF-8. Entity attacks are refused before any parser runs: a feed that declares
entities (<!ENTITY ...>: billion laughs, external entities / XXE) is not read at all, and
any DOCTYPE is removed, so no external DTD is ever fetched.
Cursor: the newest published_at seen; older entries are skipped on later polls, equal ones
are left to the id dedup.
"""
from __future__ import annotations

import calendar
import io
import json
import re
from datetime import timezone
from typing import Any, Iterator

import feedparser

from ingest.charset import to_utf8_xml
from ingest.http import FetchError
from ingest.normalize import parse_datetime
from ingest.sources.base import FetchContext, Item, Options, Page, Source, build_item, newest_of

_ENTITY_DECL = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)
_DOCTYPE = re.compile(r"<!DOCTYPE\b(?:[^<>\[\]]|\[[^\]]*\])*>", re.IGNORECASE)
_FIRST_ELEMENT = re.compile(r"<[A-Za-z_]")


class UnsafeFeed(ValueError):
    """A feed that tries an XML entity attack; it is refused whole."""


def _screen(body: bytes) -> None:
    if _ENTITY_DECL.search(body):
        raise UnsafeFeed("feed declares XML entities (<!ENTITY>): refused, it could expand without bound "
                         "or read external resources")


def _drop_doctype(text: str) -> str:
    start = _FIRST_ELEMENT.search(text)
    head_end = start.start() if start else len(text)
    return _DOCTYPE.sub("", text[:head_end]) + text[head_end:]


def _entry_time(entry: Any) -> Any:
    """The entry's own time text; feedparser's parsed form (UTC) when the text is missing."""
    for key in ("published", "updated", "created", "dc_date"):
        value = entry.get(key)
        if value:
            return value
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            return calendar.timegm(parsed)
    return None


def _entry_text(entry: Any) -> str | None:
    for block in entry.get("content") or ():
        value = block.get("value")
        if value and value.strip():
            return value
    for key in ("summary", "description", "subtitle"):
        value = entry.get(key)
        if value and value.strip():
            return value
    return None


def _entry_link(entry: Any) -> str | None:
    """The entry's web address; feedparser's guess from a non-URL <guid> ("12345") is not one."""
    candidates = [entry.get("link")] + [c.get("href") for c in entry.get("links") or ()]
    for link in candidates:
        if isinstance(link, str) and link.strip().lower().startswith(("http://", "https://")):
            return link.strip()
    return None


def _entry_author(entry: Any) -> str | None:
    detail = entry.get("author_detail") or {}
    return detail.get("name") or entry.get("author") or None


def parse_feed(body: bytes, header_charset: str | None = None) -> list[tuple[dict[str, Any], bytes]]:
    """Feed bytes -> [(flat Post values, the entry as JSON bytes)]; ValueError for what cannot be read."""
    _screen(body)
    utf8, _decoded = to_utf8_xml(body, header_charset)
    text = _drop_doctype(utf8.decode("utf-8"))
    result = feedparser.parse(io.BytesIO(text.encode("utf-8")),
                              response_headers={"content-type": "application/xml; charset=utf-8"},
                              sanitize_html=False, resolve_relative_uris=False)
    if not result.get("version") and not result.entries:
        problem = result.get("bozo_exception")
        raise ValueError(f"not a readable RSS/Atom feed: {problem or 'no feed element'}")
    out = []
    for entry in result.entries:
        link = _entry_link(entry)
        values = {
            "id": entry.get("id") or link,
            "title": entry.get("title"),
            "text": _entry_text(entry),
            "url": link,
            "published_at": _entry_time(entry),
            "author.name": _entry_author(entry),
        }
        raw = json.dumps({k: v for k, v in values.items() if v is not None}, ensure_ascii=False, default=str)
        out.append((values, raw.encode("utf-8")))
    return out


class RssSource(Source):
    kind = "rss"
    default_interval_s = 600.0

    def configure(self, opts: Options) -> None:
        self.url: str = opts.get("url", required=True, kind=str)
        self.author_kind: str | None = opts.get("author_kind", None, kind=str)

    def fetch(self, cursor: dict[str, Any], ctx: FetchContext) -> Iterator[Page]:
        response = ctx.get(self.url, headers=self.headers, timeout_s=self.timeout_s)
        try:
            entries = parse_feed(response.body, response.headers.get_content_charset())
        except ValueError as exc:
            raise FetchError(self.url, "parse", str(exc)) from None
        watermark = parse_datetime(cursor.get("newest"), timezone.utc) if cursor.get("newest") else None
        now = ctx.clock()
        items: list[Item] = []
        for values, raw in entries:
            if self.author_kind and values.get("author.name"):
                values["author.kind"] = self.author_kind
            item = build_item(values, self.post_defaults, now, raw)
            if item.post is not None and watermark is not None:
                when = parse_datetime(item.post.get("published_at"), timezone.utc)
                if when is not None and when < watermark:
                    continue
            items.append(item)
        yield Page(items, {"newest": newest_of([i.post for i in items if i.post], cursor.get("newest"))})
