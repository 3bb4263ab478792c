"""Field mapping: dotted paths in a source's item -> the Post contract's fields.

Every source reduces an item to a flat dict keyed by Post field paths ("text",
"author.name", "metrics.likes", ...); `assemble_post` turns that into the contract's
JSON shape with text, times, counts and the author tier normalised. Validation is left
to core.post, so a bad item is rejected with the contract's own reason.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from ingest.normalize import (
    author_kind,
    clean_text,
    parse_bool,
    parse_count,
    parse_datetime,
    rfc3339,
)

POST_PATHS = (
    "id", "platform", "text", "published_at", "title", "url", "lang", "repost_of",
    "author.id", "author.name", "author.followers", "author.verified", "author.kind",
    "author.verified_type",
    "metrics.reposts", "metrics.comments", "metrics.likes", "metrics.views",
)
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_MISSING = object()


class MappingError(ValueError):
    """A field map that cannot work (unknown target field, bad path)."""


def get_path(obj: Any, path: str, default: Any = None) -> Any:
    """`a.b.0.c` into nested dicts/lists; a missing step gives `default`."""
    current = obj
    for step in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(step, _MISSING)
        elif isinstance(current, (list, tuple)) and re.fullmatch(r"-?\d+", step):
            index = int(step)
            current = current[index] if -len(current) <= index < len(current) else _MISSING
        else:
            current = _MISSING
        if current is _MISSING:
            return default
    return current


def render(spec: Any, item: Any) -> Any:
    """A mapping value: a dotted path, a '{path}' template, or {'const': value}."""
    if isinstance(spec, Mapping):
        if "const" in spec:
            return spec["const"]
        raise MappingError(f"mapping value must be a path, a template or {{const: ...}}, got {dict(spec)!r}")
    if not isinstance(spec, str):
        raise MappingError(f"mapping value must be a string, got {type(spec).__name__}")
    if "{" in spec:
        values = []
        for match in _PLACEHOLDER.finditer(spec):
            value = get_path(item, match.group(1).strip())
            if value is None:
                return None  # a template with a hole is no value at all
            values.append(str(value))
        it = iter(values)
        return _PLACEHOLDER.sub(lambda _m: next(it), spec)
    return get_path(item, spec)


def check_field_map(fields: Mapping[str, Any], where: str) -> None:
    for target in fields:
        if target not in POST_PATHS:
            raise MappingError(f"{where}: unknown Post field {target!r} (known: {', '.join(POST_PATHS)})")


def map_fields(item: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {target: render(spec, item) for target, spec in fields.items()}


@dataclass(frozen=True)
class PostDefaults:
    """Per-source facts that items do not carry."""

    platform: str
    source: str
    id_prefix: str | None = None
    default_tz: timezone = timezone.utc
    kol_followers: int = 100_000
    lang: str | None = None
    clean: bool = True


def qualify_id(raw: Any, prefix: str) -> str | None:
    """'4890123' -> 'weibo:4890123'; long ids (URLs, GUIDs) are hashed to stay short and stable."""
    if raw is None or isinstance(raw, bool):
        return None
    text = str(raw).strip()
    if not text:
        return None
    if len(text) > 64 or "/" in text:
        text = hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]
    return text if text.startswith(prefix + ":") else f"{prefix}:{text}"


def assemble_post(values: Mapping[str, Any], defaults: PostDefaults,
                  now: datetime | None = None, published: datetime | None = None) -> dict[str, Any]:
    """Flat {Post path: raw value} -> contract-shaped dict (unvalidated: values may be bad).

    `published` is the item's time when the caller has already read it (saves a second parse).
    """
    now = now or datetime.now(timezone.utc)
    prefix = defaults.id_prefix or defaults.platform
    post: dict[str, Any] = {
        "id": qualify_id(values.get("id"), prefix),
        "platform": values.get("platform") or defaults.platform,
        "source": defaults.source,
        "fetched_at": rfc3339(now.astimezone(defaults.default_tz).replace(microsecond=0)),
    }
    text = values.get("text")
    title = values.get("title")
    if defaults.clean:
        text = clean_text(text) if isinstance(text, str) else text
        title = clean_text(title) if isinstance(title, str) else title
    if (text is None or text == "") and isinstance(title, str) and title:
        text = title  # headline-only items (many feeds) still carry their words
    post["text"] = text
    if title:
        post["title"] = title
    raw_time = values.get("published_at")
    parsed = published or parse_datetime(raw_time, defaults.default_tz, now)
    post["published_at"] = rfc3339(parsed) if parsed else raw_time
    for name in ("url", "lang"):
        if values.get(name) not in (None, ""):
            post[name] = str(values[name]).strip()
    if "lang" not in post and defaults.lang:
        post["lang"] = defaults.lang
    if values.get("repost_of") not in (None, ""):
        post["repost_of"] = qualify_id(values["repost_of"], prefix)

    followers = parse_count(values.get("author.followers"))
    verified = parse_bool(values.get("author.verified")) if values.get("author.verified") is not None else False
    author_id = values.get("author.id")
    author_name = values.get("author.name")
    if any(values.get(k) is not None for k in ("author.id", "author.name", "author.kind", "author.followers",
                                                 "author.verified", "author.verified_type")):
        post["author"] = {
            "id": None if author_id in (None, "") else str(author_id).strip(),
            "name": clean_text(str(author_name)) if author_name not in (None, "") else None,
            "followers": followers,
            "verified": verified,
            "kind": author_kind(values.get("author.kind"), verified, values.get("author.verified_type"),
                                followers, defaults.kol_followers),
        }
    metrics = {name: parse_count(values.get(f"metrics.{name}"))
               for name in ("reposts", "comments", "likes", "views")}
    if any(values.get(f"metrics.{name}") is not None for name in metrics):
        post["metrics"] = metrics
    return post
