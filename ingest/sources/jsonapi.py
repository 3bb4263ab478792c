"""JSON HTTP APIs with paging and a field map (Weibo-like search APIs, app-store reviews).

paging.mode:
  cursor  the answer holds the next cursor at `paging.next`; it is persisted after each
          page and sent as `paging.param` on the next request, so a restart resumes there.
          When the answer has no next cursor the last one is kept and asked again next poll.
  page    page numbers from `paging.start`; each poll walks from the first page until a
          page is empty, holds only posts older than the newest already seen, holds only
          known ids, or `paging.max_pages` is reached (newest-first search results).
  none    one request per poll.
"""
from __future__ import annotations

import json
from datetime import timezone
from typing import Any, Iterator

from ingest.http import FetchError
from ingest.charset import decode
from ingest.mapping import MappingError, check_field_map, get_path, map_fields
from ingest.normalize import parse_datetime
from ingest.sources.base import FetchContext, Item, Options, Page, Source, SourceConfigError, build_item, newest_of

PAGING_MODES = ("none", "cursor", "page")


class JsonApiSource(Source):
    kind = "api"
    default_interval_s = 120.0

    def default_platform(self) -> str:
        return "weibo"

    def configure(self, opts: Options) -> None:
        self.url: str = opts.get("url", required=True, kind=str)
        self.params: dict[str, Any] = dict(opts.get("params", {}, kind=dict))
        self.items_path: str = opts.get("items", "", kind=str)
        self.fields: dict[str, Any] = dict(opts.get("fields", required=True, kind=dict))
        try:
            check_field_map(self.fields, self.where)
        except MappingError as exc:
            raise SourceConfigError(str(exc)) from None
        if "id" not in self.fields:
            raise SourceConfigError(f"{self.where}: fields must map 'id'")
        paging = Options(opts.get("paging", {"mode": "none"}, kind=dict), f"{self.where} paging")
        self.mode: str = paging.get("mode", "none", kind=str)
        if self.mode not in PAGING_MODES:
            raise SourceConfigError(f"{self.where}: paging.mode must be one of {', '.join(PAGING_MODES)}")
        self.page_param: str = paging.get("param", "cursor" if self.mode == "cursor" else "page", kind=str)
        self.next_path: str | None = paging.get("next", None, kind=str)
        self.has_more_path: str | None = paging.get("has_more", None, kind=str)
        self.initial_cursor: Any = paging.get("initial", None)
        self.start_page = int(paging.number("start", 1))
        self.max_pages = int(paging.number("max_pages", 5, minimum=1))
        self.size_param: str | None = paging.get("size_param", None, kind=str)
        self.size = int(paging.number("size", 20, minimum=1))
        paging.check_unknown()
        if self.mode == "cursor" and not self.next_path:
            raise SourceConfigError(f"{self.where}: paging.mode cursor needs paging.next (path of the next cursor)")

    def _request(self, ctx: FetchContext, extra: dict[str, Any]) -> Any:
        params = {**self.params, **extra}
        if self.size_param:
            params[self.size_param] = self.size
        response = ctx.get(self.url, params=params, headers={"Accept": "application/json", **self.headers},
                           timeout_s=self.timeout_s)
        text = decode(response.body, response.headers.get_content_charset(), "json").text
        try:
            return json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise FetchError(self.url, "parse", f"answer is not JSON: {exc}") from None

    def _items(self, answer: Any, ctx: FetchContext) -> list[Item]:
        raw_items = get_path(answer, self.items_path) if self.items_path else answer
        if raw_items is None:
            return []
        if not isinstance(raw_items, list):
            raise FetchError(self.url, "parse", f"{self.items_path or 'answer'} is not a list")
        now = ctx.clock()
        out = []
        for raw_item in raw_items:
            raw = json.dumps(raw_item, ensure_ascii=False).encode("utf-8")
            if not isinstance(raw_item, dict):
                out.append(Item(None, raw, f"item is not a JSON object: {type(raw_item).__name__}"))
                continue
            try:
                values = map_fields(raw_item, self.fields)
            except Exception as exc:  # noqa: BLE001 - one odd item must not stop its page
                out.append(Item(None, raw, f"item could not be mapped: {type(exc).__name__}: {exc}"))
                continue
            out.append(build_item(values, self.post_defaults, now, raw))
        return out

    def fetch(self, cursor: dict[str, Any], ctx: FetchContext) -> Iterator[Page]:
        if self.mode == "cursor":
            yield from self._fetch_cursor(cursor, ctx)
        elif self.mode == "page":
            yield from self._fetch_pages(cursor, ctx)
        else:
            items = self._items(self._request(ctx, {}), ctx)
            posts = [i.post for i in items if i.post]
            yield Page(items, {"newest": newest_of(posts, cursor.get("newest"))})

    def _fetch_cursor(self, cursor: dict[str, Any], ctx: FetchContext) -> Iterator[Page]:
        position = cursor.get("cursor", self.initial_cursor)
        newest = cursor.get("newest")
        for _ in range(self.max_pages):
            if ctx.stop.is_set():
                return
            answer = self._request(ctx, {} if position is None else {self.page_param: position})
            items = self._items(answer, ctx)
            newest = newest_of([i.post for i in items if i.post], newest)
            following = get_path(answer, self.next_path) if self.next_path else None
            more = get_path(answer, self.has_more_path) if self.has_more_path else None
            ended = following in (None, "", position) or more is False or more == 0
            if following not in (None, ""):
                position = following
            yield Page(items, {"cursor": position, "newest": newest})
            if ended or not items:
                return

    def _fetch_pages(self, cursor: dict[str, Any], ctx: FetchContext) -> Iterator[Page]:
        watermark_text = cursor.get("newest")
        watermark = parse_datetime(watermark_text, timezone.utc) if watermark_text else None
        newest = watermark_text
        for number in range(self.start_page, self.start_page + self.max_pages):
            if ctx.stop.is_set():
                return
            items = self._items(self._request(ctx, {self.page_param: number}), ctx)
            if not items:
                return
            posts = [i.post for i in items if i.post]
            newest = newest_of(posts, newest)
            times = [parse_datetime(p.get("published_at"), timezone.utc) for p in posts]
            all_old = watermark is not None and bool(times) and all(t is not None and t < watermark for t in times)
            all_known = bool(posts) and all(p.get("id") and ctx.known_id(p["id"]) for p in posts)
            fresh = [i for i, t in zip_items_times(items, watermark) if t]
            yield Page(fresh, {"newest": newest})
            if all_old or all_known:
                return


def zip_items_times(items: list[Item], watermark: Any) -> list[tuple[Item, bool]]:
    """(item, keep): items older than the watermark are dropped; bad items are always kept."""
    out = []
    for item in items:
        if item.post is None or watermark is None:
            out.append((item, True))
            continue
        when = parse_datetime(item.post.get("published_at"), timezone.utc)
        out.append((item, when is None or when >= watermark))
    return out
