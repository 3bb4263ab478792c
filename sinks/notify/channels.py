"""Delivery to chat robots: request building (with signatures), response checks, retries.

A request is built fresh for every attempt: DingTalk and Feishu reject signatures whose
timestamp is more than an hour old, so a message retried from the queue is re-signed.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from .config import ChannelConfig, RetryConfig
from .escape import DIALECTS, MARKDOWN, PLAIN, REDACTOR, SLACK, redact, url_secrets
from .notice import Notice
from .render import render, title

log = logging.getLogger("yuqing.notify")
if REDACTOR not in log.filters:
    log.addFilter(REDACTOR)  # no secret in any log line, whoever logs through this logger


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk: base64(HMAC-SHA256(key=secret, msg="timestamp\\nsecret")), before url-encoding."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu/Lark: base64(HMAC-SHA256(key="timestamp\\nsecret", msg=b""))."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit(parts._replace(query=query))


def build_request(channel: ChannelConfig, notice: Notice, now: datetime) -> Request:
    """The HTTP POST for one channel; `now` drives countdowns and signature timestamps."""
    headers = {"Content-Type": "application/json; charset=utf-8"}
    url = channel.url
    heading = title(notice, PLAIN)
    dialect = DIALECTS[channel.kind]
    if channel.kind == "dingtalk":
        body = {"msgtype": "markdown", "markdown": {"title": heading, "text": render(notice, now, dialect=dialect)}}
        if channel.secret:
            ts = int(now.timestamp() * 1000)
            url = _with_query(url, {"timestamp": str(ts), "sign": dingtalk_sign(channel.secret, ts)})
    elif channel.kind == "feishu":
        body = {"msg_type": "text", "content": {"text": render(notice, now, dialect=dialect)}}
        if channel.secret:
            ts = int(now.timestamp())
            body = {"timestamp": str(ts), "sign": feishu_sign(channel.secret, ts), **body}
    elif channel.kind == "wecom":
        body = {"msgtype": "markdown", "markdown": {"content": render(notice, now, dialect=dialect)}}
    elif channel.kind == "slack":
        text = render(notice, now, dialect=SLACK)
        body = {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}],
                "link_names": False, "unfurl_links": False, "unfurl_media": False}
    else:  # generic webhook: the structured notice (raw data: the receiver must escape it) plus safe texts
        body = {"title": heading, "text": render(notice, now, dialect=PLAIN),
                "markdown": render(notice, now, dialect=MARKDOWN), "notice": notice.to_dict()}
        if channel.secret:  # sign the body like many webhook receivers expect
            raw = json.dumps(body, ensure_ascii=False, sort_keys=True).encode()
            headers["X-Yuqing-Signature"] = "sha256=" + hmac.new(channel.secret.encode(), raw, hashlib.sha256).hexdigest()
            return Request(url, raw, headers)
    return Request(url, json.dumps(body, ensure_ascii=False).encode(), headers)


def response_error(kind: str, status: int, body: bytes) -> str | None:
    """None if the robot accepted the message, else a one-line reason.

    Robots answer HTTP 200 with an error code in the body on bad signatures or payloads.
    """
    if not 200 <= status < 300:
        return f"HTTP {status}: {body[:200].decode(errors='replace')}"
    if kind in ("dingtalk", "wecom", "feishu"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return f"unreadable response: {body[:200].decode(errors='replace')}"
        code = data.get("errcode", data.get("code", data.get("StatusCode", 0)))
        if code not in (0, None):
            return f"error {code}: {data.get('errmsg') or data.get('msg') or data.get('StatusMessage') or ''}"
    return None


class DeliveryError(Exception):
    """All tries failed; the message is already free of the channel's secrets."""


def channel_secrets(channel: ChannelConfig) -> list[str]:
    return url_secrets(channel.url) + ([channel.secret] if channel.secret else [])


def post_once(request: Request, timeout_s: float) -> tuple[int, bytes]:
    req = urllib.request.Request(request.url, data=request.body, headers=request.headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, resp.read(65536)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(65536) if exc.fp else b""


def deliver(channel: ChannelConfig, notice: Notice, retry: RetryConfig, *,
            clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
            on_failure: Callable[[str], None] | None = None) -> None:
    """Send with up to `retry.attempts` tries and exponential backoff; DeliveryError if all fail."""
    timeout = channel.timeout_s or retry.timeout_s
    pause = retry.backoff_s
    last = "no attempt"
    for attempt in range(1, retry.attempts + 1):
        request = build_request(channel, notice, datetime.fromtimestamp(clock(), tz=timezone.utc))
        try:
            status, body = post_once(request, timeout)
            error = response_error(channel.kind, status, body)
        except (OSError, urllib.error.URLError) as exc:  # refused, reset, timed out
            error = f"{type(exc).__name__}: {exc}"
        except (ValueError, http.client.HTTPException) as exc:  # malformed URL (InvalidURL quotes it, token and all)
            error = f"bad webhook URL or response ({type(exc).__name__}: {exc})"
        if error is None:
            return
        error = redact(error, channel_secrets(channel) + [request.url])
        last = error
        if on_failure:
            on_failure(error)
        log.warning("notify: channel %s attempt %d/%d failed: %s", channel.name, attempt, retry.attempts, error)
        if attempt < retry.attempts:
            sleep(pause)
            pause = min(pause * 2, retry.backoff_max_s)
    raise DeliveryError(f"channel {channel.name}: {last}")
