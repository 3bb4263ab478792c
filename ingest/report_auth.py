"""Who may file reports, and how fast: bearer tokens and token-bucket rate limits.

A token names a channel (the OA desk, the in-app feedback form, ...). The channel, not the
caller, decides what the pipeline believes about a report: its platform and its author.
Tokens come from `YUQING_REPORT_TOKENS` (`name:token,name:token`) or a YAML tokens file:

    - name: oa                  # [A-Za-z0-9_-], 1..32: goes into post ids and the author id
      token: "..."              # at least 16 characters; keep the file mode 0600
      platform: internal        # optional, default internal
      author_name: 内部OA        # optional, default the name
      author_kind: user         # user | media | kol | official
      followers: 0
      verified: false
      distinct_reporters: false # true: the caller's reporter_id separates authors
      rate_per_s: 1.0           # optional, else report.token_rate_per_s
      burst: 30                 # optional, else report.token_burst

Token values never appear in an error message or a log line.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

TOKENS_ENV = "YUQING_REPORT_TOKENS"
MIN_TOKEN_CHARS = 16
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_AUTHOR_KINDS = ("user", "media", "kol", "official")
_OPTIONS = {"name", "token", "platform", "author_name", "author_kind", "followers", "verified",
            "distinct_reporters", "rate_per_s", "burst"}


class TokenError(ValueError):
    """A bad token definition; the message names the entry, never the secret."""


@dataclass(frozen=True)
class Channel:
    """What one token's reports are: the server stamps these on every post it files."""

    name: str
    platform: str = "internal"
    author_name: str | None = None
    author_kind: str = "user"
    followers: int = 0
    verified: bool = False
    distinct_reporters: bool = False
    rate_per_s: float | None = None
    burst: int | None = None

    def author(self, reporter_id: str | None) -> dict[str, Any]:
        """One author per channel (so a flood of reports counts once), unless the channel
        separates its reporters; followers and verification come from the channel only."""
        author_id = f"report:{self.name}"
        if self.distinct_reporters and reporter_id:
            author_id = f"{author_id}:{reporter_id}"
        return {"id": author_id, "name": self.author_name or self.name, "kind": self.author_kind,
                "followers": self.followers, "verified": self.verified}


@dataclass(frozen=True)
class _Entry:
    channel: Channel
    digest: bytes


class TokenRegistry:
    """Bearer token -> Channel, compared in constant time against every known token."""

    def __init__(self, entries: Iterable[tuple[Channel, str]]):
        self._entries: list[_Entry] = []
        names: set[str] = set()
        digests: set[bytes] = set()
        for channel, token in entries:
            if channel.name in names:
                raise TokenError(f"report token {channel.name!r} is defined twice")
            digest = _digest(token)
            if digest in digests:
                raise TokenError(f"report token {channel.name!r} reuses another channel's token")
            names.add(channel.name)
            digests.add(digest)
            self._entries.append(_Entry(channel, digest))

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def names(self) -> list[str]:
        return [e.channel.name for e in self._entries]

    def authenticate(self, authorization: str | None) -> Channel | None:
        """The channel of a valid `Bearer TOKEN` header, else None."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        presented = _digest(token.strip())
        found = None
        for entry in self._entries:  # no early exit: the time taken does not tell which matched
            if hmac.compare_digest(presented, entry.digest):
                found = entry.channel
        return found


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _channel(raw: Any, where: str) -> tuple[Channel, str]:
    if not isinstance(raw, dict):
        raise TokenError(f"{where}: expected a mapping with name and token")
    unknown = sorted(set(raw) - _OPTIONS)
    if unknown:
        raise TokenError(f"{where}: unknown option(s) {', '.join(map(str, unknown))} "
                         f"(known: {', '.join(sorted(_OPTIONS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise TokenError(f"{where}: name must be 1..32 of A-Z a-z 0-9 _ -, got {name!r}")
    where = f"report token {name!r}"
    token = raw.get("token")
    if not isinstance(token, str) or len(token.strip()) < MIN_TOKEN_CHARS:
        raise TokenError(f"{where}: the token must be a string of at least {MIN_TOKEN_CHARS} characters")
    kind = raw.get("author_kind", "user")
    if kind not in _AUTHOR_KINDS:
        raise TokenError(f"{where}: author_kind must be one of {', '.join(_AUTHOR_KINDS)}, got {kind!r}")
    followers = raw.get("followers", 0)
    if isinstance(followers, bool) or not isinstance(followers, int) or followers < 0:
        raise TokenError(f"{where}: followers must be a non-negative integer")
    for flag in ("verified", "distinct_reporters"):
        if not isinstance(raw.get(flag, False), bool):
            raise TokenError(f"{where}: {flag} must be true or false")
    platform = raw.get("platform", "internal")
    if not isinstance(platform, str) or not platform.strip():
        raise TokenError(f"{where}: platform must be a non-empty string")
    rate, burst = raw.get("rate_per_s"), raw.get("burst")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0):
        raise TokenError(f"{where}: rate_per_s must be a positive number")
    if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int) or burst < 1):
        raise TokenError(f"{where}: burst must be a positive integer")
    author_name = raw.get("author_name")
    if author_name is not None and not isinstance(author_name, str):
        raise TokenError(f"{where}: author_name must be a string")
    return Channel(name, platform.strip().lower(), author_name, kind, followers, raw.get("verified", False),
                   raw.get("distinct_reporters", False), None if rate is None else float(rate), burst), token.strip()


def parse_tokens_env(value: str) -> list[tuple[Channel, str]]:
    """`name:token,name:token` -> channels with default options."""
    out = []
    for index, item in enumerate(p for p in value.split(",") if p.strip()):
        name, sep, token = item.strip().partition(":")
        if not sep:
            raise TokenError(f"{TOKENS_ENV} entry {index + 1}: expected name:token")
        out.append(_channel({"name": name.strip(), "token": token}, f"{TOKENS_ENV} entry {index + 1}"))
    return out


def load_tokens_file(path: str | Path) -> list[tuple[Channel, str]]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TokenError(f"report tokens file {path}: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError):
        raise TokenError(f"report tokens file {path} is not valid UTF-8 YAML") from None  # no excerpt: it holds secrets
    if isinstance(data, dict) and set(data) == {"tokens"}:
        data = data["tokens"]
    if not isinstance(data, list):
        raise TokenError(f"report tokens file {path}: expected a list of tokens (or tokens: [...])")
    return [_channel(item, f"report tokens file {path} entry {i + 1}") for i, item in enumerate(data)]


def load_registry(tokens_file: str = "", env: dict[str, str] | None = None) -> TokenRegistry:
    """Tokens from the environment variable and the file together; at least one is required."""
    env = os.environ if env is None else env
    entries = parse_tokens_env(env.get(TOKENS_ENV, ""))
    if tokens_file:
        entries += load_tokens_file(tokens_file)
    if not entries:
        raise TokenError(f"no report tokens: set {TOKENS_ENV}=name:token,... or report.tokens_file "
                         "(the endpoint refuses every report without one)")
    return TokenRegistry(entries)


class RateLimiter:
    """Token buckets by key (a channel, a client address): `rate` per second, up to `burst`.

    Holds at most `max_keys` buckets (least recently used dropped: a dropped key starts
    full again, which only errs towards letting a long-idle client in). Thread-safe."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000):
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate = float(rate_per_s)
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float, rate: float | None = None, burst: float | None = None) -> float:
        """0.0 if the request may go (one token used), else the seconds until it may."""
        rate = self.rate if rate is None else rate
        burst = self.burst if burst is None else float(burst)
        with self._lock:
            tokens, last = self._buckets.pop(key, (burst, now))
            tokens = min(burst, tokens + max(0.0, now - last) * rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait
