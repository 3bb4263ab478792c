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
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

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

_TZ = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_CN_DATE = re.compile(
    r"^(?:(\d{4})[年/.-])?(\d{1,2})[月/.-](\d{1,2})日?(?:\s*(\d{1,2}):(\d{2})(?::(\d{2}))?)?$"
)
_RELATIVE = re.compile(r"^(\d+)\s*(秒|分钟|小时|天|seconds?|minutes?|hours?|days?)\s*(前|ago)$")
_TODAY = re.compile(r"^(今天|昨天|前天)\s*(\d{1,2}):(\d{2})$")
_UNITS = {"秒": 1, "分钟": 60, "小时": 3600, "天": 86400,
          "second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_tz(value: str) -> timezone:
    """'+08:00', '+0800' or 'UTC' as a fixed offset."""
    if value.upper() in ("UTC", "Z"):
        return timezone.utc
    match = _TZ.match(value.strip())
    if not match:
        raise ValueError(f"not a UTC offset like +08:00: {value!r}")
    sign = 1 if match.group(1) == "+" else -1
    return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))


def parse_datetime(value: object, default_tz: timezone, now: datetime | None = None) -> datetime | None:
    """Any time a crawler meets -> aware datetime, or None when it cannot be read.

    Epoch seconds/ms, RFC 3339 (with or without offset; the source's zone is assumed when
    missing), RFC 2822 (RSS), 2026/11/25 10:00, 2026年11月25日 10:00, 11-25, 刚刚, 5分钟前,
    今天 10:00 / 昨天 10:00.
    """
    now = now or datetime.now(timezone.utc)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=default_tz)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, timezone.utc).astimezone(default_tz)
    text = str(value).strip()
    if not text:
        return None
    if re.fullmatch(r"\d{9,13}(\.\d+)?", text):
        return parse_datetime(float(text), default_tz, now)
    iso = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    try:
        parsed = datetime.fromisoformat(iso)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=default_tz)
    except ValueError:
        pass
    try:
        parsed = parsedate_to_datetime(text)
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=default_tz)
    except (TypeError, ValueError, IndexError):
        pass
    local_now = now.astimezone(default_tz)
    if text in ("刚刚", "just now"):
        return local_now
    match = _RELATIVE.match(text)
    if match:
        unit = match.group(2).rstrip("s")
        return local_now - timedelta(seconds=int(match.group(1)) * _UNITS[unit])
    match = _TODAY.match(text)
    if match:
        days = {"今天": 0, "昨天": 1, "前天": 2}[match.group(1)]
        day = local_now - timedelta(days=days)
        return day.replace(hour=int(match.group(2)), minute=int(match.group(3)), second=0, microsecond=0)
    match = _CN_DATE.match(text)
    if match:
        year = int(match.group(1) or local_now.year)
        try:
            return datetime(year, int(match.group(2)), int(match.group(3)), int(match.group(4) or 0),
                            int(match.group(5) or 0), int(match.group(6) or 0), tzinfo=default_tz)
        except ValueError:
            return None
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
