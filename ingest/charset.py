"""Bytes from the web -> text, whatever the page claims; never raises.

Chinese sites label their bytes loosely: `gb2312` pages hold GBK-only characters (镕),
`big5` pages hold HKSCS characters, JSON APIs send labels no codec knows, and headers
disagree with the page. The order tried: byte-order mark, HTTP Content-Type charset, the
document's own declaration (<meta charset>, http-equiv, XML declaration), UTF-8, then
a Chinese reading (GB18030 or Big5, whichever gives common characters), then
detection with charset-normalizer. Each candidate must decode strictly; the first that
does wins. The GB family decodes as GB18030 (a superset of GB2312 and GBK) and Big5 as
Big5-HKSCS (a superset of Big5), so a narrow label never garbles a wider character.
"""
from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

from charset_normalizer import from_bytes

# Labels whose bytes are really the wider encoding in practice.
_WIDER = {
    "gb2312": "gb18030", "gbk": "gb18030", "gb18030": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
    "ms936": "gb18030", "windows-936": "gb18030", "euc-cn": "gb18030", "euccn": "gb18030",
    "csgb2312": "gb18030", "gb_2312-80": "gb18030", "gb_2312": "gb18030", "chinese": "gb18030",
    "iso-ir-58": "gb18030", "hz-gb-2312": "hz",
    "big5": "big5hkscs", "big5-hkscs": "big5hkscs", "big5hkscs": "big5hkscs", "cn-big5": "big5hkscs",
    "x-x-big5": "big5hkscs", "csbig5": "big5hkscs", "cp950": "big5hkscs", "ms950": "big5hkscs",
    "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8",
}
# Single-byte Western labels: every byte string "decodes", so a wrong one would never be
# noticed. They are only believed after UTF-8 and detection have had their say.
_WEAK = frozenset(("ascii", "us-ascii", "latin-1", "latin1", "iso-8859-1", "iso8859-1", "l1",
                   "windows-1252", "cp1252", "iso-8859-15", "iso8859-15"))
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_META = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_:.+-]{1,40})""", re.IGNORECASE)
_XML_DECL = re.compile(rb"""^\s*<\?xml\b[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9_:.+-]{1,40})["']""")
_SNIFF_BYTES = 4096
_DETECT_BYTES = 64 * 1024


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str   # the Python codec that decoded it
    how: str        # "bom", "header", "declared", "utf-8", "detected", "replaced"


def codec_for(label: str | None) -> str | None:
    """A charset label (any case, any alias) -> the Python codec to use, or None if unknown."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if not name:
        return None
    if name in _WIDER:
        return _WIDER[name]
    try:
        canonical = codecs.lookup(name).name
    except (LookupError, ValueError):
        return None
    return _WIDER.get(canonical, canonical)


def declared_charset(body: bytes, kind: str = "html") -> str | None:
    """The label a document declares about itself (XML declaration or HTML <meta>)."""
    head = body[:_SNIFF_BYTES]
    if kind in ("xml", "html"):
        match = _XML_DECL.match(head)
        if match:
            return match.group(1).decode("ascii")
    if kind == "html":
        match = _META.search(head)
        if match:
            return match.group(1).decode("ascii")
    return None


def _bom(body: bytes) -> str | None:
    for mark, codec in _BOMS:
        if body.startswith(mark):
            return codec
    return None


def _try(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError, ValueError):
        return None


def _common_chars(codec: str, leads: range, trails: tuple[range, ...]) -> frozenset[str]:
    chars = set()
    for lead in leads:
        for trail_range in trails:
            for trail in trail_range:
                try:
                    chars.add(bytes((lead, trail)).decode(codec))
                except UnicodeDecodeError:
                    pass
    return frozenset(chars)


# The most used characters of each script, read off the codecs themselves: GB2312 level 1
# (3,755 characters, lead bytes B0-D7) and Big5's frequent set (5,401, lead bytes A4-C6).
# Text in the right encoding is nearly all common characters; the other reading is not.
_COMMON = {
    "gb18030": _common_chars("gb2312", range(0xB0, 0xD8), (range(0xA1, 0xFF),)),
    "big5hkscs": _common_chars("big5", range(0xA4, 0xC7), (range(0x40, 0x7F), range(0xA1, 0xFF))),
}
_CJK_SHARE = 0.6


def _chinese_reading(body: bytes) -> tuple[str, str] | None:
    """GB18030 or Big5-HKSCS, whichever reads `body` as mostly common Chinese characters."""
    best: tuple[float, str, str] | None = None
    for codec, common in _COMMON.items():
        text = _try(body, codec)
        if text is None:
            continue
        wide = [c for c in text if ord(c) > 0x7F and not unicodedata.category(c).startswith(("P", "Z"))]
        if not wide:
            continue
        share = sum(1 for c in wide if c in common) / len(wide)
        if share >= _CJK_SHARE and (best is None or share > best[0]):
            best = (share, codec, text)
    return (best[1], best[2]) if best else None


def _detect(body: bytes) -> str | None:
    try:
        best = from_bytes(body[:_DETECT_BYTES]).best()
    except Exception:  # noqa: BLE001 - detection is a best effort, never a crash
        return None
    return codec_for(best.encoding) if best is not None else None


def decode(body: bytes, header_charset: str | None = None, kind: str = "html") -> Decoded:
    """Text of a response body. `kind` is "html", "xml", "json" or "text" (what may declare a charset)."""
    bom = _bom(body)
    if bom:
        text = _try(body, bom)
        if text is not None:
            return Decoded(text.lstrip("\ufeff"), bom, "bom")
    declared = declared_charset(body, kind) if kind in ("html", "xml") else None
    weak: list[str] = []
    for label, how in ((header_charset, "header"), (declared, "declared")):
        codec = codec_for(label)
        if codec is None:
            continue
        if label and label.strip().lower() in _WEAK or codec in _WEAK:
            weak.append(codec)
            continue
        text = _try(body, codec)
        if text is not None:
            return Decoded(text, codec, how)
    text = _try(body, "utf-8")
    if text is not None:
        return Decoded(text, "utf-8", "utf-8")
    chinese = _chinese_reading(body)
    if chinese is not None:
        return Decoded(chinese[1], chinese[0], "detected")
    detected = _detect(body)
    if detected is not None:
        text = _try(body, detected)
        if text is not None:
            return Decoded(text, detected, "detected")
    for codec in weak:
        text = _try(body, codec)
        if text is not None:
            return Decoded(text, codec, "declared")
    for codec in ("gb18030", "big5hkscs"):
        text = _try(body, codec)
        if text is not None:
            return Decoded(text, codec, "detected")
    return Decoded(body.decode("utf-8", errors="replace"), "utf-8", "replaced")


def to_utf8_xml(body: bytes, header_charset: str | None = None) -> tuple[bytes, Decoded]:
    """An XML document re-encoded as UTF-8 with its declaration saying so (for feed parsers)."""
    decoded = decode(body, header_charset, "xml")
    text = decoded.text
    match = re.match(r"""\s*<\?xml\b[^>]*\?>""", text)
    if match:
        text = '<?xml version="1.0" encoding="utf-8"?>' + text[match.end():]
    return text.encode("utf-8"), decoded
