"""crawl.yaml: HTTP manners, dedup windows, per-source defaults and the sources themselves.

See data/crawl.sample.yaml for every key. Errors are one line naming the key.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ingest.dedup import DedupConfig
from ingest.http import HttpConfig
from ingest.netguard import IPNetwork, parse_networks
from ingest.sources import Source, SourceConfigError, build_source
from ingest.sources.base import Options

TOP_KEYS = ("http", "dedup", "defaults", "sources")
DEFAULT_KEYS = ("interval_s", "timezone", "kol_followers", "headers", "timeout_s", "lang")


class CrawlConfigError(ValueError):
    pass


@dataclass(frozen=True)
class CrawlConfig:
    http: HttpConfig
    dedup: DedupConfig
    sources: list[Source]


def _http(raw: Any) -> HttpConfig:
    opts = Options(raw or {}, "http")
    hosts = opts.get("host_intervals", {}, kind=dict)
    config = HttpConfig(
        user_agent=opts.get("user_agent", HttpConfig.user_agent, kind=str),
        timeout_s=opts.number("timeout_s", HttpConfig.timeout_s, minimum=0.001),
        retries=int(opts.number("retries", HttpConfig.retries)),
        backoff_base_s=opts.number("backoff_base_s", HttpConfig.backoff_base_s),
        backoff_max_s=opts.number("backoff_max_s", HttpConfig.backoff_max_s),
        respect_robots=opts.get("respect_robots", True, kind=bool),
        robots_ttl_s=opts.number("robots_ttl_s", HttpConfig.robots_ttl_s),
        min_interval_s=opts.number("min_interval_s", HttpConfig.min_interval_s),
        host_intervals={str(k): float(v) for k, v in hosts.items()},
        max_body_bytes=int(opts.number("max_body_bytes", HttpConfig.max_body_bytes, minimum=1)),
        max_redirects=int(opts.number("max_redirects", HttpConfig.max_redirects)),
        allow_private_networks=_networks(opts.get("allow_private_networks", [], kind=list)),
    )
    opts.check_unknown()
    if config.max_redirects > 20:
        raise SourceConfigError(f"http: max_redirects must be at most 20, got {config.max_redirects}")
    return config


def _networks(values: list[Any]) -> tuple[IPNetwork, ...]:
    try:
        return parse_networks(values, "http: allow_private_networks")
    except ValueError as exc:
        raise SourceConfigError(str(exc)) from None


def _dedup(raw: Any) -> DedupConfig:
    opts = Options(raw or {}, "dedup")
    config = DedupConfig(
        window_s=opts.number("window_hours", DedupConfig.window_s / 3600) * 3600,
        id_retention_s=opts.number("id_retention_days", DedupConfig.id_retention_s / 86400) * 86400,
        min_text_chars=int(opts.number("min_text_chars", DedupConfig.min_text_chars)),
        max_ids=int(opts.number("max_ids", DedupConfig.max_ids, minimum=1)),
    )
    opts.check_unknown()
    return config


def parse_crawl_config(data: Any, where: str = "crawl config") -> CrawlConfig:
    if not isinstance(data, dict):
        raise CrawlConfigError(f"{where}: expected a mapping at the top level")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise CrawlConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(TOP_KEYS)})")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict) or set(defaults) - set(DEFAULT_KEYS):
        raise CrawlConfigError(f"{where}: defaults may only set {', '.join(DEFAULT_KEYS)}")
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise CrawlConfigError(f"{where}: sources must be a non-empty list")
    try:
        http = _http(data.get("http"))
        dedup = _dedup(data.get("dedup"))
        sources = [build_source(raw, f"sources[{i}]", defaults) for i, raw in enumerate(raw_sources)]
    except SourceConfigError as exc:
        raise CrawlConfigError(f"{where}: {exc}") from None
    names = [s.name for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CrawlConfigError(f"{where}: source names must be unique (cursors are kept by name): {', '.join(duplicates)}")
    return CrawlConfig(http, dedup, [s for s in sources if s.enabled])


def load_crawl_config(path: Path) -> CrawlConfig:
    if not path.is_file():
        raise CrawlConfigError(f"crawl config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise CrawlConfigError(f"crawl config {path} is not valid YAML: {problem}") from None
    return parse_crawl_config(data, str(path))
