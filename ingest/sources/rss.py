"""RSS 2.0 and Atom feeds (news sites, blogs, many forums' "latest threads" feeds).

Parsed with defusedxml (no entity-expansion bombs). Cursor: the newest published_at seen;
older entries are skipped on later polls, equal ones are left to the id dedup.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timezone
from typing import Any, Iterator

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ingest.http import FetchError
from ingest.mapping import assemble_post
from ingest.normalize import parse_datetime
from ingest.sources.base import FetchContext, Item, Options, Page, Source, newest_of


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child_text(element: ET.Element, *names: str) -> str | None:
    for name in names:
        for child in element:
            if _local(child.tag) == name:
                text = "".join(child.itertext()).strip()
                if text:
                    return text
    return None


def _atom_link(entry: ET.Element) -> str | None:
    fallback = None
    for child in entry:
        if _local(child.tag) == "link":
            rel = child.get("rel", "alternate")
            href = child.get("href") or (child.text or "").strip() or None
            if rel == "alternate" and href:
                return href
            fallback = fallback or href
    return fallback


def _author(entry: ET.Element) -> str | None:
    for child in entry:
        if _local(child.tag) == "author":
            name = _child_text(child, "name")
            return name or "".join(child.itertext()).strip() or None
    return _child_text(entry, "creator")


def parse_feed(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """Feed bytes -> [(flat Post values, raw entry XML)]; raises ValueError on a broken feed."""
    try:
        root = SafeET.fromstring(body)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise ValueError(f"not a readable RSS/Atom feed: {exc}") from None
    entries = [e for e in root.iter() if _local(e.tag) in ("item", "entry")]
    out = []
    for entry in entries:
        link = _child_text(entry, "link") if _local(entry.tag) == "item" else _atom_link(entry)
        values = {
            "id": _child_text(entry, "guid", "id") or link,
            "title": _child_text(entry, "title"),
            "text": _child_text(entry, "encoded", "content", "description", "summary"),
            "url": link,
            "published_at": _child_text(entry, "pubDate", "published", "date", "updated"),
            "author.name": _author(entry),
        }
        out.append((values, ET.tostring(entry, encoding="utf-8")))
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
            entries = parse_feed(response.body)
        except ValueError as exc:
            raise FetchError(self.url, "parse", str(exc)) from None
        watermark = parse_datetime(cursor.get("newest"), timezone.utc) if cursor.get("newest") else None
        now = ctx.clock()
        items: list[Item] = []
        posts: list[dict[str, Any]] = []
        for values, raw in entries:
            if self.author_kind and values.get("author.name"):
                values["author.kind"] = self.author_kind
            post = assemble_post(values, self.post_defaults, now)
            when = parse_datetime(post.get("published_at"), timezone.utc)
            if watermark is not None and when is not None and when < watermark:
                continue
            items.append(Item(post, raw))
            posts.append(post)
        yield Page(items, {"newest": newest_of(posts, cursor.get("newest"))})
