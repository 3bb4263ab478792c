"""Configuration of `yuqing notify` (notify.yaml) and rendering of alertmanager.yml.

Secrets never need to live in the YAML: each channel's `url` and `secret` can come from
`url_env`/`secret_env`, or from `YUQING_NOTIFY_<CHANNEL>_URL` / `..._SECRET` (channel name
upper-cased, other characters turned into `_`), which win over the file.

The webhook bearer token (what Alertmanager must send) comes from `YUQING_NOTIFY_TOKEN`,
a file named by `YUQING_NOTIFY_TOKEN_FILE` or `auth.token_file`, or the local stack's
`<state folder>/secrets/notify-token` that `yuqing stack up` writes (mode 0600).
"""
from __future__ import annotations

import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.levels import LEVELS

REPO_ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER_TEMPLATE = REPO_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
NOTIFY_URL_PLACEHOLDER = "__NOTIFY_URL__"
TOKEN_FILE_PLACEHOLDER = "__NOTIFY_TOKEN_FILE__"
TOKEN_ENV = "YUQING_NOTIFY_TOKEN"
TOKEN_FILE_ENV = "YUQING_NOTIFY_TOKEN_FILE"
MIN_TOKEN_CHARS = 16

CHANNEL_KINDS = ("dingtalk", "feishu", "wecom", "slack", "webhook")
#: Routes: the Alertmanager receiver paths, plus what Kafka events map to.
ROUTES = ("critical", "ops-critical", "warning", "ops", "default")


class NotifyConfigError(ValueError):
    pass


def render_alertmanager_config(notify_url: str, token_file: str | Path, template: str | Path | None = None) -> str:
    """alertmanager.yml with `__NOTIFY_URL__` replaced by `notify_url` (no trailing slash) and
    `__NOTIFY_TOKEN_FILE__` by the path, as Alertmanager sees it, of the webhook bearer token.

    The token itself never enters the rendered file: Alertmanager reads `credentials_file`.
    """
    if not re.match(r"^https?://[^/\s]+$", notify_url.rstrip("/")):
        raise NotifyConfigError(f"notify url must look like http://host:port, got {notify_url!r}")
    token_file = str(token_file)
    if not token_file.startswith("/") or re.search(r"[\s'\"\\]", token_file):
        raise NotifyConfigError(f"token file must be an absolute path without spaces or quotes, got {token_file!r}")
    text = Path(template or ALERTMANAGER_TEMPLATE).read_text(encoding="utf-8")
    for placeholder in (NOTIFY_URL_PLACEHOLDER, TOKEN_FILE_PLACEHOLDER):
        if placeholder not in text:
            raise NotifyConfigError(f"{template or ALERTMANAGER_TEMPLATE} has no {placeholder} placeholder")
    return text.replace(NOTIFY_URL_PLACEHOLDER, notify_url.rstrip("/")).replace(TOKEN_FILE_PLACEHOLDER, token_file)


# --- the webhook bearer token -------------------------------------------------------------
def local_token_path(state_dir: Path) -> Path:
    """Where the local stack keeps the token Alertmanager sends to `yuqing notify`."""
    return Path(state_dir) / "secrets" / "notify-token"


def ensure_token_file(path: Path) -> Path:
    """Create the token file (random, 0600, folder 0700) unless it exists; tighten its mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    os.chmod(path, 0o600)
    return path


def read_token_file(path: Path) -> str:
    path = Path(path)
    try:
        info = path.stat()
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise NotifyConfigError(f"cannot read the notify token file {path}: {exc.strerror or exc}") from None
    # Our own file must be private; a mounted secret owned by root (compose, Kubernetes) is
    # the platform's business.
    if info.st_uid == os.getuid() and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise NotifyConfigError(f"notify token file {path} is readable by others: chmod 600 {path}")
    return check_token(token, str(path))


def check_token(token: str, where: str) -> str:
    if len(token) < MIN_TOKEN_CHARS or not re.fullmatch(r"[\x21-\x7e]+", token):
        raise NotifyConfigError(f"{where}: the notify token must be at least {MIN_TOKEN_CHARS} printable "
                                "ASCII characters without spaces")
    return token


def resolve_token(config: "NotifyConfig", env: dict[str, str] | None = None,
                  state_dir: Path | None = None) -> str | None:
    """The bearer token Alertmanager must present; None if none is configured anywhere."""
    env = dict(os.environ if env is None else env)
    if env.get(TOKEN_ENV):
        return check_token(env[TOKEN_ENV].strip(), TOKEN_ENV)
    if env.get(TOKEN_FILE_ENV):
        return read_token_file(Path(env[TOKEN_FILE_ENV]))
    if config.token_file is not None:
        return read_token_file(config.token_file)
    if state_dir is not None and local_token_path(state_dir).exists():
        return read_token_file(local_token_path(state_dir))
    return None


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    kind: str
    url: str
    secret: str | None = None
    routes: tuple[str, ...] = ROUTES
    brands: tuple[str, ...] = ()  # empty: every brand (and the non-brand ops alerts)
    timeout_s: float | None = None  # None: retry.timeout_s

    def wants(self, route: str, brand: str | None) -> bool:
        if route not in self.routes:
            return False
        return not self.brands or brand is None or brand in self.brands


@dataclass(frozen=True)
class RetryConfig:
    attempts: int = 3  # tries per delivery before it goes to the retry queue
    backoff_s: float = 0.5  # first pause; doubles each try
    backoff_max_s: float = 8.0
    timeout_s: float = 5.0  # per HTTP request
    queue_size: int = 1000
    queue_file: Path | None = None
    retry_every_s: float = 30.0


@dataclass(frozen=True)
class KafkaConfig:
    enabled: bool = True
    bootstrap: str | None = None  # None: settings.kafka.bootstrap
    topic: str | None = None  # None: settings.kafka.alerts_topic
    group_id: str = "yuqing-notify"
    min_level: str = "high"  # Kafka events below this level are not paged directly
    auto_offset_reset: str = "latest"
    request_timeout_s: float = 15.0


@dataclass(frozen=True)
class NotifyConfig:
    host: str = "127.0.0.1"
    port: int | None = None  # None: settings.metrics.notify_port
    dedup_window_s: float = 900.0
    channels: tuple[ChannelConfig, ...] = ()
    retry: RetryConfig = field(default_factory=RetryConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    token: str | None = None  # the webhook bearer token; None: every webhook POST is refused
    token_file: Path | None = None  # auth.token_file (read by resolve_token)


def _env_name(channel: str, what: str) -> str:
    return f"YUQING_NOTIFY_{re.sub(r'[^A-Za-z0-9]', '_', channel).upper()}_{what}"


def _str_tuple(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise NotifyConfigError(f"{where}: expected a list of strings")
    return tuple(value)


def _check_keys(data: dict, known: set[str], where: str) -> None:
    unknown = set(data) - known
    if unknown:
        raise NotifyConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")


def _number(value: Any, where: str, *, minimum: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise NotifyConfigError(f"{where}: expected a number, got {value!r}") from None
    if number < minimum:
        raise NotifyConfigError(f"{where}: must be at least {minimum}, got {number}")
    return number


def _channel(data: Any, index: int, env: dict[str, str]) -> ChannelConfig:
    where = f"channels[{index}]"
    if not isinstance(data, dict):
        raise NotifyConfigError(f"{where}: expected a mapping")
    _check_keys(data, {"name", "kind", "url", "url_env", "secret", "secret_env", "routes", "brands", "timeout_s"}, where)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise NotifyConfigError(f"{where}: needs a name")
    kind = data.get("kind")
    if kind not in CHANNEL_KINDS:
        raise NotifyConfigError(f"{where} ({name}): kind must be one of {', '.join(CHANNEL_KINDS)}, got {kind!r}")
    url = data.get("url")
    if data.get("url_env"):
        url = env.get(data["url_env"], url)
    url = env.get(_env_name(name, "URL"), url)
    if not isinstance(url, str) or not re.match(r"^https?://", url):
        raise NotifyConfigError(
            f"{where} ({name}): url must be an http(s) URL (set url, url_env or {_env_name(name, 'URL')})")
    secret = data.get("secret")
    if data.get("secret_env"):
        secret = env.get(data["secret_env"], secret)
    secret = env.get(_env_name(name, "SECRET"), secret)
    if secret is not None and not isinstance(secret, str):
        raise NotifyConfigError(f"{where} ({name}): secret must be a string")
    routes = _str_tuple(data.get("routes"), f"{where}.routes") or ROUTES
    bad = [r for r in routes if r not in ROUTES]
    if bad:
        raise NotifyConfigError(f"{where}.routes: unknown route(s) {', '.join(bad)} (known: {', '.join(ROUTES)})")
    timeout = data.get("timeout_s")
    return ChannelConfig(
        name=name, kind=kind, url=url, secret=secret or None, routes=routes,
        brands=_str_tuple(data.get("brands"), f"{where}.brands"),
        timeout_s=None if timeout is None else _number(timeout, f"{where}.timeout_s", minimum=0.1),
    )


def parse_notify_config(data: Any, env: dict[str, str] | None = None) -> NotifyConfig:
    """Validate the parsed YAML; one clear error naming the key on bad input."""
    env = dict(os.environ if env is None else env)
    data = data or {}
    if not isinstance(data, dict):
        raise NotifyConfigError("notify config: expected a mapping at the top level")
    _check_keys(data, {"listen", "dedup_window_s", "channels", "retry", "kafka", "auth"}, "notify config")
    auth = data.get("auth") or {}
    if not isinstance(auth, dict):
        raise NotifyConfigError("auth: expected a mapping")
    _check_keys(auth, {"token_file"}, "auth")
    if auth.get("token_file") is not None and not isinstance(auth["token_file"], str):
        raise NotifyConfigError("auth.token_file: expected a path")
    listen = data.get("listen") or {}
    _check_keys(listen, {"host", "port"}, "listen")
    port = listen.get("port")
    if port is not None and (not isinstance(port, int) or not 0 <= port <= 65535):
        raise NotifyConfigError(f"listen.port: expected a port number, got {port!r}")
    channels_data = data.get("channels") or []
    if not isinstance(channels_data, list):
        raise NotifyConfigError("channels: expected a list")
    channels = tuple(_channel(c, i, env) for i, c in enumerate(channels_data))
    names = [c.name for c in channels]
    if len(set(names)) != len(names):
        raise NotifyConfigError("channels: names must be unique")
    retry_data = data.get("retry") or {}
    _check_keys(retry_data, {f for f in RetryConfig.__dataclass_fields__}, "retry")
    r = RetryConfig()
    retry = RetryConfig(
        attempts=int(_number(retry_data.get("attempts", r.attempts), "retry.attempts", minimum=1)),
        backoff_s=_number(retry_data.get("backoff_s", r.backoff_s), "retry.backoff_s"),
        backoff_max_s=_number(retry_data.get("backoff_max_s", r.backoff_max_s), "retry.backoff_max_s"),
        timeout_s=_number(retry_data.get("timeout_s", r.timeout_s), "retry.timeout_s", minimum=0.1),
        queue_size=int(_number(retry_data.get("queue_size", r.queue_size), "retry.queue_size", minimum=1)),
        queue_file=Path(retry_data["queue_file"]) if retry_data.get("queue_file") else None,
        retry_every_s=_number(retry_data.get("retry_every_s", r.retry_every_s), "retry.retry_every_s", minimum=0.1),
    )
    kafka_data = data.get("kafka") or {}
    _check_keys(kafka_data, {f for f in KafkaConfig.__dataclass_fields__}, "kafka")
    k = KafkaConfig()
    min_level = kafka_data.get("min_level", k.min_level)
    if min_level not in LEVELS:
        raise NotifyConfigError(f"kafka.min_level: expected one of {', '.join(LEVELS)}, got {min_level!r}")
    reset = kafka_data.get("auto_offset_reset", k.auto_offset_reset)
    if reset not in ("latest", "earliest"):
        raise NotifyConfigError(f"kafka.auto_offset_reset: expected latest or earliest, got {reset!r}")
    kafka = KafkaConfig(
        enabled=bool(kafka_data.get("enabled", k.enabled)),
        bootstrap=kafka_data.get("bootstrap"), topic=kafka_data.get("topic"),
        group_id=str(kafka_data.get("group_id", k.group_id)), min_level=min_level,
        auto_offset_reset=reset,
        request_timeout_s=_number(kafka_data.get("request_timeout_s", k.request_timeout_s),
                                  "kafka.request_timeout_s", minimum=1),
    )
    return NotifyConfig(
        host=str(listen.get("host", "127.0.0.1")), port=port,
        dedup_window_s=_number(data.get("dedup_window_s", 900.0), "dedup_window_s"),
        channels=channels, retry=retry, kafka=kafka,
        token_file=Path(auth["token_file"]) if auth.get("token_file") else None,
    )


def load_notify_config(path: str | Path | None, env: dict[str, str] | None = None) -> NotifyConfig:
    """Read notify.yaml (no file: defaults, no channels)."""
    if path is None:
        return parse_notify_config({}, env)
    path = Path(path)
    if not path.is_file():
        raise NotifyConfigError(f"notify config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise NotifyConfigError(f"notify config {path} is not valid YAML: {exc}") from None
    return parse_notify_config(data, env)
