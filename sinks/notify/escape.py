"""Making outside text harmless in each chat robot's message format, and keeping secrets out of logs.

Everything a page shows that came from outside (post text, titles, author names, URLs,
label values) goes through `Dialect.text`: mentions are neutralised, markdown/HTML-ish
syntax is turned into look-alike full-width characters (Chinese readers see the same
text; no renderer treats them as syntax), and bare URLs are defanged (`hxxps://`) so no
robot turns them into links. The only links a page carries are the ones `safe_link`
accepts: http(s), well formed, and from a crawled source (never from a report).
"""
from __future__ import annotations

import logging
import re
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Iterable

# --- outside text -------------------------------------------------------------------------
_SCHEME = re.compile(r"(?i)\b(h)(t)(t)(p)(s?)(:)(//)")
_OTHER_SCHEMES = re.compile(r"(?i)\b(javascript|data|vbscript|file|ftp|mailto|tel|dingtalk|lark|weixin|slack):")
_WWW = re.compile(r"(?i)\bwww\.")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")

#: Markdown (DingTalk, WeCom) and HTML-ish mention syntax -> full-width look-alikes.
_MARKDOWN_SWAP = str.maketrans({
    "[": "［", "]": "］", "(": "（", ")": "）", "<": "＜", ">": "＞", "*": "＊", "_": "＿",
    "`": "｀", "#": "＃", "!": "！", "|": "｜", "~": "～", "@": "＠", "\\": "＼", "&": "＆",
})
#: Plain-text robots (Feishu text, generic webhooks): only tags and mentions matter.
_PLAIN_SWAP = str.maketrans({"<": "＜", ">": "＞", "@": "＠", "&": "＆"})


def defang(text: str) -> str:
    """No bare link survives: http(s):// -> hxxp(s)://, www. -> www[.], other schemes broken."""
    text = _SCHEME.sub(lambda m: f"hxxp{m.group(5)}://", text)
    text = _OTHER_SCHEMES.sub(lambda m: f"{m.group(1)}：", text)
    return _WWW.sub("www[.]", text)


def _one_line(text: str, max_chars: int | None) -> str:
    text = _CONTROL.sub("", str(text)).replace("\r", " ").replace("\n", " ").replace("\t", " ")
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars] + "…"
    return text


def escape_markdown(text: str, max_chars: int | None = None) -> str:
    return defang(_one_line(text, max_chars)).translate(_MARKDOWN_SWAP)


def escape_plain(text: str, max_chars: int | None = None) -> str:
    return defang(_one_line(text, max_chars)).translate(_PLAIN_SWAP)


def escape_slack(text: str, max_chars: int | None = None) -> str:
    """Slack's own rule (&, <, > as entities) kills <!channel>, <@U…>, <url|text>; the mrkdwn
    markers and a bare @here/@channel become look-alikes."""
    text = defang(_one_line(text, max_chars))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.translate(str.maketrans({"*": "＊", "_": "＿", "~": "～", "`": "｀", "@": "＠", "|": "｜"}))


# --- links ----------------------------------------------------------------------------------
_URL_SAFE = "/?&=%#:;,.+-_~!$'*@"  # kept as is; everything else (spaces, ()[]<>|"{}) is %-encoded


def safe_link(url: object, *, from_crawler: bool) -> str | None:
    """The URL to show as a link, or None: only http(s) with a host, only from crawled posts."""
    if not from_crawler or not isinstance(url, str) or len(url) > 2048:
        return None
    if _CONTROL.search(url) or any(ch.isspace() for ch in url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return urllib.parse.quote(url, safe=_URL_SAFE.replace("'", "").replace("*", "").replace("!", ""))


# --- dialects -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dialect:
    """How one robot's message format shows bold text, links and outside text."""

    name: str
    markdown: bool
    escape: Callable[[str, int | None], str]
    bold: Callable[[str], str]
    heading: Callable[[str], str]
    link: Callable[[str, str], str]  # (safe url, our own label) -> text
    joiner: str

    def text(self, value: object, max_chars: int | None = None) -> str:
        """Outside text, made harmless for this format."""
        return self.escape("" if value is None else str(value), max_chars)


MARKDOWN = Dialect("markdown", True, escape_markdown, lambda s: f"**{s}**", lambda s: f"### {s}",
                   lambda url, label: f"[{label}]({url})", "\n\n")
PLAIN = Dialect("plain", False, escape_plain, lambda s: s, lambda s: s, lambda url, label: f"{label} {url}", "\n")
SLACK = Dialect("slack", False, escape_slack, lambda s: f"*{s}*", lambda s: f"*{s}*",
                lambda url, label: f"<{url}|{label}>", "\n")
DIALECTS = {"dingtalk": MARKDOWN, "wecom": MARKDOWN, "feishu": PLAIN, "slack": SLACK, "webhook": PLAIN}


# --- secrets in logs ------------------------------------------------------------------------
REDACTED = "REDACTED"
_URL_IN_TEXT = re.compile(r"(?i)\b(https?://[^/\s'\"<>?#]+)([^\s'\"<>]*)")
_SECRET_PARAM = re.compile(r"(?i)\b(access_token|token|key|sign|secret|password|signature|credentials)=[^&\s'\"<>]+")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s'\"]+")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secrets, URL paths and queries, token parameters or bearer tokens."""
    for secret in sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _URL_IN_TEXT.sub(lambda m: m.group(1) + ("/" + REDACTED if m.group(2) not in ("", "/") else m.group(2)), text)
    text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def url_secrets(url: str) -> list[str]:
    """The parts of a robot URL that grant access: query values and long path segments."""
    out = [url]
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return out
    out += [v for _, v in urllib.parse.parse_qsl(parts.query)]
    out += [seg for seg in parts.path.split("/") if len(seg) >= 12]
    if parts.path or parts.query:
        out.append(url.split("//", 1)[-1].split("/", 1)[-1])  # path+query as http.client quotes it
    return out


class RedactingFilter(logging.Filter):
    """Rewrites every record of the notify logger (message and traceback) without secrets."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        self.secrets |= {s for s in secrets if s}

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = ()
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info), self.secrets)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


#: The one filter on the `yuqing.notify` logger (installed by sinks.notify.channels, which every
#: sender imports); services add their channels' secrets and the webhook token to it.
REDACTOR = RedactingFilter()
