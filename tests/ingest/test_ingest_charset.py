"""ingest.charset: labels, BOMs, declarations and detection; never raises."""
import codecs

import pytest

from ingest.charset import codec_for, decode, declared_charset, to_utf8_xml

GBK_ONLY = "朱镕基视察"          # 镕 is in GBK, not in GB2312
TRADITIONAL = "飛鳥出行數據洩露，用戶資料外洩"
HKSCS = "搭𨋢去九龍"               # 𨋢 (lift) is an HKSCS character, not plain Big5


@pytest.mark.parametrize("label,codec", [
    ("gb2312", "gb18030"), ("GBK", "gb18030"), ("x-gbk", "gb18030"), ("cp936", "gb18030"), ("EUC-CN", "gb18030"),
    ("big5", "big5hkscs"), ("Big5-HKSCS", "big5hkscs"), ("cp950", "big5hkscs"),
    ("utf8", "utf-8"), ("UTF-8", "utf-8"), ("shift_jis", "shift_jis"),
    ("x-unknown-charset", None), ("", None), (None, None), ('"gbk"', "gb18030"),
])
def test_labels(label, codec):
    assert codec_for(label) == codec


def test_gb2312_label_with_a_gbk_only_character_is_not_mojibake():
    body = GBK_ONLY.encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        body.decode("gb2312")
    assert decode(body, "gb2312").text == GBK_ONLY


def test_big5_label_reads_hkscs_characters():
    body = HKSCS.encode("big5hkscs")
    assert decode(body, "big5").text == HKSCS


@pytest.mark.parametrize("html", [
    '<html><head><meta charset="gb2312"></head><body>{}</body></html>',
    '<html><head><meta http-equiv="Content-Type" content="text/html; charset=GB2312"></head><body>{}</body></html>',
])
def test_meta_charset_when_the_header_has_none(html):
    body = html.format(GBK_ONLY).encode("gbk")
    decoded = decode(body, None, "html")
    assert GBK_ONLY in decoded.text and decoded.how == "declared"


def test_header_beats_meta_unless_the_bytes_say_otherwise():
    body = f'<meta charset="utf-8"><p>{TRADITIONAL}</p>'.encode("big5")
    assert TRADITIONAL in decode(body, "big5", "html").text           # header right, meta wrong
    body = f'<meta charset="gbk"><p>{GBK_ONLY}</p>'.encode("gbk")
    assert GBK_ONLY in decode(body, "utf-8", "html").text             # header wrong: the meta is tried next


def test_xml_declaration():
    body = f'<?xml version="1.0" encoding="big5"?><rss><t>{TRADITIONAL}</t></rss>'.encode("big5")
    assert declared_charset(body, "xml") == "big5"
    utf8, decoded = to_utf8_xml(body)
    assert decoded.encoding == "big5hkscs"
    assert utf8.startswith(b'<?xml version="1.0" encoding="utf-8"?>') and TRADITIONAL.encode() in utf8


@pytest.mark.parametrize("bom,codec", [(codecs.BOM_UTF8, "utf-8"), (b"", "utf-16-le"), (b"", "utf-16-be")])
def test_boms_win(bom, codec):
    text = "快送外卖"
    body = bom + text.encode(codec) if bom else (codecs.BOM_UTF16_LE + text.encode(codec) if codec.endswith("le")
                                                  else codecs.BOM_UTF16_BE + text.encode(codec))
    decoded = decode(body, "gbk")
    assert decoded.text == text and decoded.how == "bom"


@pytest.mark.parametrize("text,codec", [
    ('{"text": "快送外卖被曝泄露用户信息"}', "gbk"),
    ('{"text": "快送"}', "gbk"),
    (f'{{"text": "{TRADITIONAL}"}}', "big5"),
    (f'{{"text": "{GBK_ONLY}"}}', "gb18030"),
    ('{"text": "快送APP 又崩了 😡"}', "utf-8"),
])
def test_unknown_or_missing_labels_fall_back_to_detection(text, codec):
    for label in ("x-unknown-charset", None, "iso-8859-1"):
        assert decode(text.encode(codec), label, "json").text == text


def test_undecodable_bytes_never_raise():
    for body in (b"\xff\xfe\xfd\x80\x81", b"\x81", bytes(range(256)), b""):
        decoded = decode(body, "utf-8", "json")
        assert isinstance(decoded.text, str)
