"""Text, time, author-tier and count normalisation for crawled posts.

Pure functions: crawlers see HTML fragments, double-width Latin, relative Chinese times
("5分钟前") and counts like "1.2万"; the scoring job should see one clean form, so that
aliases such as 快送APP match whether the page wrote 快送ＡＰＰ or 快送APP.
"""
from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from datetime import datetime, timezone, tzinfo
from html.parser import HTMLParser

from ingest.times import TimeError, parse_time, parse_zone

# Full-width forms that are ordinary Chinese punctuation: folding them to ASCII would turn
# "你好，世界！" into "你好,世界!", which reads wrong and changes nothing for matching.
CJK_PUNCT_KEEP = frozenset("，！？：；（）～＂＇")
_BLOCK_TAGS = frozenset(
    "p div br li ul ol tr table h1 h2 h3 h4 h5 h6 blockquote section article header footer pre".split()
)
_SKIP_TAGS = frozenset(("script", "style", "noscript", "template"))
_EMOTICON_ALT = re.compile(r"^\[[^\[\]\s]{1,8}\]$")
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u2060\ufeff\u00ad"), None)  # keep ZWJ U+200D
_HTML_HINT = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>")
_SPACES = re.compile(r"[^\S\n]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_URL = re.compile(r"https?://\S+")


class _TextExtractor(HTMLParser):
    """Collects visible text; keeps <img alt="[怒]"> emoticons and emoji alts as text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            if alt and (_EMOTICON_ALT.match(alt) or all(_is_symbol(c) for c in alt)):
                self.parts.append(alt)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            return
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _is_symbol(ch: str) -> bool:
    return unicodedata.category(ch) in ("So", "Sk", "Mn", "Cf") or ch in "\u200d\ufe0f"


def strip_html(text: str) -> str:
    """Visible text of an HTML fragment with entities decoded; block tags become newlines."""
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def fold_width(text: str) -> str:
    """Full-width Latin/digits to ASCII, half-width katakana to full; CJK punctuation kept."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\u3000":
            out.append(" ")
        elif 0xFF01 <= code <= 0xFF5E:
            out.append(ch if ch in CJK_PUNCT_KEEP else chr(code - 0xFEE0))
        elif 0xFF5F <= code <= 0xFFEF:
            out.append(unicodedata.normalize("NFKC", ch))
        else:
            out.append(ch)
    return "".join(out)


def clean_text(text: str | None) -> str:
    """One clean form of a post body: no tags, entities decoded, widths folded, spaces tidied."""
    if not text:
        return ""
    text = strip_html(text) if _HTML_HINT.search(text) else html.unescape(text)
    text = unicodedata.normalize("NFC", text).translate(_ZERO_WIDTH)
    text = fold_width(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(c for c in text if c == "\n" or c == "\t" or unicodedata.category(c) != "Cc")
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _MANY_NEWLINES.sub("\n\n", text).strip()


def text_fingerprint(text: str) -> str:
    """Hash of the text with URLs, whitespace, punctuation and case removed (near-copies collide)."""
    folded = fold_width(unicodedata.normalize("NFKC", text)).lower()
    folded = _URL.sub("", folded)
    kept = "".join(c for c in folded if not (c.isspace() or unicodedata.category(c).startswith("P")))
    return hashlib.sha1(kept.encode("utf-8")).hexdigest()[:24]


def fingerprint_length(text: str) -> int:
    """Characters that count for the fingerprint; very short texts are not text-deduplicated."""
    folded = _URL.sub("", text)
    return sum(1 for c in folded if not (c.isspace() or unicodedata.category(c).startswith("P")))


# ---------------------------------------------------------------- time

def parse_tz(value: str) -> tzinfo:
    """'Asia/Shanghai', '+08:00', '+0800' or 'UTC' (see ingest.times.parse_zone)."""
    return parse_zone(value)


def parse_datetime(value: object, default_tz: tzinfo, now: datetime | None = None) -> datetime | None:
    """Any time a crawler meets -> aware datetime, or None when it cannot be read.

    The forms and the checks are ingest.times.parse_time's; use that where the reason matters.
    """
    try:
        return parse_time(value, default_tz, now or datetime.now(timezone.utc))
    except TimeError:
        return None


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds") if moment.microsecond == 0 else moment.isoformat()


# ---------------------------------------------------------------- counts and author tier

_COUNT = re.compile(r"^([0-9][0-9,]*(?:\.[0-9]+)?)\s*(万|w|W|亿|千|k|K|m|M)?\+?$")
_MULT = {"万": 10_000, "w": 10_000, "W": 10_000, "亿": 100_000_000, "千": 1_000,
         "k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}


def parse_count(value: object) -> int:
    """'1.2万' -> 12000, '3k' -> 3000, '1,234' -> 1234; button labels ('转发') and junk -> 0."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, (int, float)):
        return max(0, int(value))
    match = _COUNT.match(str(value).strip())
    if not match:
        return 0
    number = float(match.group(1).replace(",", ""))
    return max(0, int(round(number * _MULT.get(match.group(2) or "", 1))))


_KIND_SYNONYMS = {
    "media": "media", "news": "media", "press": "media", "publisher": "media", "媒体": "media",
    "kol": "kol", "bigv": "kol", "big-v": "kol", "influencer": "kol", "大v": "kol", "达人": "kol",
    "official": "official", "gov": "official", "government": "official", "brand": "official",
    "enterprise": "official", "organization": "official", "政务": "official", "官方": "official",
    "user": "user", "personal": "user", "normal": "user", "普通用户": "user",
}
# Weibo's verified_type: 0 personal (yellow V), 1 government, 2 enterprise, 3 media,
# 4 campus, 5 website, 6 app, 7 organisation; -1 not verified.
_WEIBO_VERIFIED_TYPE = {0: "kol", 1: "official", 2: "official", 3: "media", 4: "official",
                        5: "media", 6: "official", 7: "official"}


def author_kind(kind: object = None, verified: bool = False, verified_type: object = None,
                followers: int = 0, kol_followers: int = 100_000) -> str:
    """The contract's author tier from whatever a platform gives: explicit kind, verified type, reach."""
    if isinstance(kind, str) and kind.strip().lower() in _KIND_SYNONYMS:
        return _KIND_SYNONYMS[kind.strip().lower()]
    try:
        vtype = int(verified_type) if verified_type is not None and verified_type != "" else None
    except (TypeError, ValueError):
        vtype = None
    if vtype in _WEIBO_VERIFIED_TYPE:
        return _WEIBO_VERIFIED_TYPE[vtype]
    if followers >= kol_followers:
        return "kol"
    return "user"


def parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return str(value).strip().lower() in ("1", "true", "yes", "y", "on", "是")
