"""Crawler sources: one class per kind, chosen by `type:` in crawl.yaml."""
from __future__ import annotations

from typing import Any, Mapping

from ingest.sources.base import FetchContext, Item, Page, Source, SourceConfigError
from ingest.sources.html import HtmlSource
from ingest.sources.jsonapi import JsonApiSource
from ingest.sources.jsonl import JsonlSource
from ingest.sources.rss import RssSource

SOURCE_TYPES: dict[str, type[Source]] = {
    "rss": RssSource,
    "atom": RssSource,
    "json_api": JsonApiSource,
    "html": HtmlSource,
    "jsonl": JsonlSource,
}


def build_source(raw: Mapping[str, Any], where: str, defaults: Mapping[str, Any] | None = None) -> Source:
    if not isinstance(raw, Mapping):
        raise SourceConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    kind = raw.get("type")
    if kind not in SOURCE_TYPES:
        raise SourceConfigError(f"{where}: type must be one of {', '.join(SOURCE_TYPES)}, got {kind!r}")
    return SOURCE_TYPES[kind](raw, where, defaults)


__all__ = ["FetchContext", "Item", "Page", "Source", "SourceConfigError", "SOURCE_TYPES", "build_source",
           "HtmlSource", "JsonApiSource", "JsonlSource", "RssSource"]
