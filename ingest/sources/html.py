"""HTML list (+ optional detail) pages read with CSS selectors (forums, Tieba-like boards).

A field spec is a CSS selector (text of the first match, relative to the list item or the
detail page), or a mapping {selector, attr, regex, const}. `text` keeps the element's
inner HTML so that <br> and emoticon images (<img alt="[怒]">) survive cleaning. Links are
made absolute. Detail pages are fetched only for ids not already delivered.
Cursor: the newest published_at seen (older list items are skipped on later polls).
"""
from __future__ import annotations

import re
import warnings
from datetime import timezone
from typing import Any, Iterator, Mapping
from urllib.parse import urljoin

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, Tag
from soupsieve import SelectorSyntaxError

from ingest.charset import decode
from ingest.http import AddressBlocked, FetchError, RobotsDisallowed
from ingest.mapping import MappingError, POST_PATHS, qualify_id
from ingest.netguard import redact_url, same_site
from ingest.normalize import parse_datetime
from ingest.sources.base import FetchContext, Item, Options, Page, Source, SourceConfigError, build_item, newest_of

_URL_FIELDS = ("url",)
_URL_ATTRS = ("href", "src")
warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)


class FieldSpec:
    def __init__(self, target: str, spec: Any, where: str):
        if target not in POST_PATHS:
            raise SourceConfigError(f"{where}: unknown Post field {target!r}")
        self.target = target
        self.const = None
        self.attr: str | None = None
        self.regex: re.Pattern[str] | None = None
        if isinstance(spec, str):
            self.selector: str | None = spec or None
        elif isinstance(spec, Mapping):
            unknown = set(spec) - {"selector", "attr", "regex", "const"}
            if unknown:
                raise SourceConfigError(f"{where}: field {target}: unknown key(s) {', '.join(sorted(unknown))}")
            self.selector = spec.get("selector") or None
            self.attr = spec.get("attr")
            self.const = spec.get("const")
            if spec.get("regex"):
                try:
                    self.regex = re.compile(spec["regex"])
                except re.error as exc:
                    raise SourceConfigError(f"{where}: field {target}: bad regex: {exc}") from None
        else:
            raise SourceConfigError(f"{where}: field {target}: expected a selector or a mapping")
        if self.selector:
            try:
                BeautifulSoup("<p></p>", "html.parser").select_one(self.selector)
            except SelectorSyntaxError as exc:
                raise SourceConfigError(f"{where}: field {target}: bad CSS selector: {exc}") from None

    def extract(self, scope: Tag, base_url: str) -> Any:
        if self.const is not None:
            return self.const
        element = scope.select_one(self.selector) if self.selector else scope
        if element is None:
            return None
        if self.attr:
            value = element.get(self.attr)
            if isinstance(value, list):
                value = " ".join(value)
        elif self.target == "text" and self.regex is None:
            value = element.decode_contents()
        else:
            value = element.get_text(" ", strip=True)
        if value is None:
            return None
        value = str(value).strip()
        if self.regex is not None:
            match = self.regex.search(value)
            if not match:
                return None
            value = match.group(1) if match.groups() else match.group(0)
        if self.target in _URL_FIELDS or (self.attr in _URL_ATTRS and self.target != "id" and self.regex is None):
            value = urljoin(base_url, value)
        return value


def _specs(raw: Any, where: str) -> list[FieldSpec]:
    if not isinstance(raw, Mapping) or not raw:
        raise SourceConfigError(f"{where}: fields must be a non-empty mapping of Post field -> selector")
    return [FieldSpec(str(k), v, where) for k, v in raw.items()]


def _soup(body: bytes, charset: str | None) -> BeautifulSoup:
    """The page decoded by ingest.charset (header, BOM, <meta>, GB18030/Big5-HKSCS, detection)."""
    return BeautifulSoup(decode(body, charset, "html").text, "html.parser")


class HtmlSource(Source):
    kind = "html"
    default_interval_s = 300.0

    def default_platform(self) -> str:
        return "forum"

    def configure(self, opts: Options) -> None:
        self.url: str = opts.get("url", required=True, kind=str)
        # hosts besides the source's own whose detail/next links may be followed ("*.example.com" too)
        self.follow_hosts: list[str] = [str(h) for h in opts.get("follow_hosts", [], kind=list)]
        listing = Options(opts.get("list", required=True, kind=dict), f"{self.where} list")
        self.item_selector: str = listing.get("item", required=True, kind=str)
        self.list_fields = _specs(listing.get("fields", required=True, kind=dict), f"{self.where} list")
        self.next_selector: str | None = listing.get("next", None, kind=str)
        self.max_pages = int(listing.number("max_pages", 1, minimum=1))
        listing.check_unknown()
        detail_raw = opts.get("detail", None, kind=dict)
        self.detail_fields: list[FieldSpec] = []
        self.detail_url_from = "url"
        if detail_raw is not None:
            detail = Options(detail_raw, f"{self.where} detail")
            self.detail_url_from = detail.get("url_from", "url", kind=str)
            self.detail_fields = _specs(detail.get("fields", required=True, kind=dict), f"{self.where} detail")
            detail.check_unknown()
        targets = {f.target for f in self.list_fields}
        if "id" not in targets and "url" not in targets:
            raise SourceConfigError(f"{self.where}: list.fields must give 'id' or 'url' (the id falls back to the url)")
        try:
            BeautifulSoup("<p></p>", "html.parser").select(self.item_selector)
        except SelectorSyntaxError as exc:
            raise SourceConfigError(f"{self.where}: list.item: bad CSS selector: {exc}") from None

    def _detail(self, values: dict[str, Any], ctx: FetchContext) -> bool:
        """Merge the detail page into `values`; False when the item must be skipped."""
        link = values.get(self.detail_url_from)
        if not link or not same_site(str(link), self.url, self.follow_hosts):
            return True   # no detail page, or one on another host: the list values stand alone
        try:
            response = ctx.get(link, headers=self.headers, timeout_s=self.timeout_s)
        except (RobotsDisallowed, AddressBlocked):
            return False
        except FetchError as exc:
            if exc.status.isdigit() and 400 <= int(exc.status) < 500:
                return False  # gone or forbidden: skip it, the list moves on
            raise
        page = _soup(response.body, response.headers.get_content_charset())
        for spec in self.detail_fields:
            value = spec.extract(page, response.url)
            if value not in (None, ""):
                values[spec.target] = value
        return True

    def _list_item(self, element: Tag, base_url: str, watermark: Any, now: Any, raw: bytes,
                   ctx: FetchContext) -> Item | None:
        """One list entry as an Item, or None when it is old, already delivered or gone."""
        values = {spec.target: spec.extract(element, base_url) for spec in self.list_fields}
        if values.get("id") in (None, "") and values.get("url"):
            values["id"] = values["url"]
        prefix = self.post_defaults.id_prefix or self.platform
        post_id = qualify_id(values.get("id"), prefix)
        when = parse_datetime(values.get("published_at"), self.post_defaults.default_tz, now)
        if watermark is not None and when is not None and when < watermark:
            return None
        if post_id is not None and ctx.known_id(post_id):
            return None
        if self.detail_fields and not self._detail(values, ctx):
            return None
        return build_item(values, self.post_defaults, now, raw)

    def fetch(self, cursor: dict[str, Any], ctx: FetchContext) -> Iterator[Page]:
        watermark = parse_datetime(cursor.get("newest"), timezone.utc) if cursor.get("newest") else None
        newest = cursor.get("newest")
        url: str | None = self.url
        visited: set[str] = set()
        for _ in range(self.max_pages):
            if url is None or url in visited or ctx.stop.is_set():
                return
            visited.add(url)
            response = ctx.get(url, headers=self.headers, timeout_s=self.timeout_s)
            page = _soup(response.body, response.headers.get_content_charset())
            items: list[Item] = []
            now = ctx.clock()
            for element in page.select(self.item_selector):
                raw = str(element).encode("utf-8")
                try:
                    item = self._list_item(element, response.url, watermark, now, raw, ctx)
                except FetchError:
                    raise
                except Exception as exc:  # noqa: BLE001 - one odd item must not stop its page
                    item = Item(None, raw, f"item could not be read: {type(exc).__name__}: {exc}")
                if item is not None:
                    items.append(item)
            newest = newest_of([i.post for i in items if i.post], newest)
            yield Page(items, {"newest": newest})
            link = page.select_one(self.next_selector) if self.next_selector else None
            url = urljoin(response.url, link["href"]) if link is not None and link.get("href") else None
            if url is not None and not same_site(url, self.url, self.follow_hosts):
                ctx.progress(f"{self.name}: next link to another host not followed: {redact_url(url)}")
                url = None


__all__ = ["HtmlSource", "FieldSpec", "MappingError"]
