"""Settings: defaults, then an optional YAML file, then `YUQING_*` environment variables.

Validated once at start; a bad value fails with one line naming the key and the fix.
Environment names are the upper-cased dotted key with `_`: `kafka.port` -> `YUQING_KAFKA_PORT`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_type_hints

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_ENV = "YUQING_CONFIG"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class KafkaSettings:
    host: str = "127.0.0.1"
    port: int = 19092
    controller_port: int = 19093
    heap_mb: int = 768
    # the local broker keeps at most this much per partition, however old (see components.py)
    retention_mb_per_partition: int = 1024
    raw_topic: str = "posts.raw"
    raw_partitions: int = 3
    dlq_topic: str = "posts.dlq"
    scored_topic: str = "posts.scored"
    assessments_topic: str = "risk.assessments"
    alerts_topic: str = "alerts"
    request_timeout_s: float = 15.0
    # Listener authentication (a Strimzi listener with SCRAM-SHA-512, say): PLAINTEXT, SSL,
    # SASL_PLAINTEXT or SASL_SSL; the SASL user and password (Strimzi's KafkaUser Secret) and
    # the CA of the broker certificates (PEM file) for SSL. Every Kafka client of Yuqing takes
    # them through the *_options() adapters below.
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""  # SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_cafile: str = ""

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def check_auth(self) -> None:
        """One-line ConfigError for an auth setting that cannot work."""
        if self.security_protocol not in KAFKA_PROTOCOLS:
            raise ConfigError(f"kafka.security_protocol: {self.security_protocol!r} is not one of {', '.join(KAFKA_PROTOCOLS)}")
        sasl = self.security_protocol.startswith("SASL_")
        if sasl:
            if self.sasl_mechanism not in KAFKA_SASL_MECHANISMS:
                raise ConfigError(f"kafka.sasl_mechanism: {self.sasl_mechanism!r} is not one of "
                                  f"{', '.join(KAFKA_SASL_MECHANISMS)} (needed with {self.security_protocol})")
            if not self.sasl_username or not self.sasl_password:
                raise ConfigError("kafka.sasl_username and kafka.sasl_password are required with "
                                  f"{self.security_protocol} (YUQING_KAFKA_SASL_USERNAME / _PASSWORD)")
        elif self.sasl_mechanism or self.sasl_username or self.sasl_password:
            raise ConfigError(f"kafka.sasl_* are set but kafka.security_protocol is {self.security_protocol}: "
                              "use SASL_SSL (or SASL_PLAINTEXT)")
        if self.ssl_cafile and not self.security_protocol.endswith("SSL"):
            raise ConfigError(f"kafka.ssl_cafile is set but kafka.security_protocol is {self.security_protocol}")
        if '"' in self.sasl_username + self.sasl_password or "\\" in self.sasl_username + self.sasl_password:
            raise ConfigError("kafka.sasl_username/sasl_password: no double quote or backslash (JAAS quoting)")

    def kafka_python_options(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's clients (KafkaProducer, KafkaConsumer, admin)."""
        out: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL_"):
            out.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                       sasl_plain_password=self.sasl_password)
        if self.ssl_cafile:
            out["ssl_cafile"] = self.ssl_cafile
        return out

    def librdkafka_options(self) -> dict[str, str]:
        """Configuration entries for confluent-kafka (librdkafka)."""
        out = {"security.protocol": self.security_protocol.lower()}
        if self.security_protocol.startswith("SASL_"):
            out.update({"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.sasl_username,
                        "sasl.password": self.sasl_password})
        if self.ssl_cafile:
            out["ssl.ca.location"] = self.ssl_cafile
        return out

    def java_client_properties(self, package_prefix: str = "") -> dict[str, str]:
        """Kafka client properties for the JVM. `package_prefix`: where a shaded client jar
        relocated Kafka's classes (Flink's SQL connector: `org.apache.flink.kafka.shaded.`),
        which the JAAS login module's class name must carry."""
        out = {"security.protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL_"):
            module = package_prefix + ("org.apache.kafka.common.security.plain.PlainLoginModule"
                                       if self.sasl_mechanism == "PLAIN"
                                       else "org.apache.kafka.common.security.scram.ScramLoginModule")
            out.update({"sasl.mechanism": self.sasl_mechanism,
                        "sasl.jaas.config": f'{module} required username="{self.sasl_username}" '
                                            f'password="{self.sasl_password}";'})
        if self.ssl_cafile:
            out.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": self.ssl_cafile})
        return out


KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


@dataclass(frozen=True)
class ClickHouseSettings:
    host: str = "127.0.0.1"
    port: int = 19000
    http_port: int = 18123
    database: str = "yuqing"
    user: str = "default"
    # Empty passwords mean "the generated one": `yuqing stack up` writes random passwords
    # for the admin and the analyst into secrets_dir (files `password`, `analyst_password`,
    # mode 0600) and every client reads them from there through these settings. Set them
    # (or mount a Secret as secrets_dir) for a server the local stack does not run.
    password: str = ""
    analyst_user: str = "analyst"
    analyst_password: str = ""
    secrets_dir: str = ""  # default: <state_dir>/secrets/clickhouse
    connect_timeout_s: float = 5.0
    send_receive_timeout_s: float = 30.0

    def secret(self, name: str) -> str:
        """`password` or `analyst_password`: the set value, else the file in secrets_dir, else ""."""
        if name not in CLICKHOUSE_SECRETS:
            raise ValueError(f"unknown ClickHouse secret {name!r}")
        value = getattr(self, name)
        if value or not self.secrets_dir:
            return value
        path = Path(self.secrets_dir) / name
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise ConfigError(f"clickhouse.{name}: cannot read {path}: {exc.strerror}") from None

    @property
    def admin_password(self) -> str:
        return self.secret("password")

    @property
    def analyst_secret(self) -> str:
        return self.secret("analyst_password")


CLICKHOUSE_SECRETS = ("password", "analyst_password")


@dataclass(frozen=True)
class PrometheusSettings:
    host: str = "127.0.0.1"
    port: int = 19090
    scrape_interval_s: int = 1

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class AlertmanagerSettings:
    host: str = "127.0.0.1"
    port: int = 19095

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class MetricsSettings:
    """Ports where Yuqing's own processes expose /metrics for Prometheus."""

    host: str = "127.0.0.1"
    job_port: int = 19101  # the job's window scorer (risk gauges, assessments, alerts): up at start
    job_udf_port: int = 19105  # the job's scoring UDF (posts processed, matched, DLQ, lag): up at first batch
    crawler_port: int = 19102
    sink_port: int = 19103
    notify_port: int = 19104
    report_server_port: int = 18080


@dataclass(frozen=True)
class FlinkSettings:
    """The optional local standalone Flink cluster (`yuqing stack up --flink-cluster`)."""

    host: str = "127.0.0.1"
    rest_port: int = 18081
    rpc_port: int = 16123
    jobmanager_memory_mb: int = 768
    taskmanager_memory_mb: int = 1024
    # heap of the JVM that `yuqing job run` starts (the local mini-cluster): without a cap the
    # JVM takes a quarter of the machine's RAM and grows towards it under load (1.9 GiB peak
    # on a 100k-post burst, 1.2 GiB with this cap, same speed)
    local_heap_mb: int = 1024
    # JIT of that JVM: "c1" (client compiler only) or "tiered" (the JVM's default, C1 then C2).
    # A local run lasts minutes, and C2 kept recompiling Flink's and Kafka's big inlined
    # methods for all of them (~1 s of CPU each; 70 us of CPU per post on a 300k-post run, a
    # fifth of the job). C1's code is slower (the source chain took 1.6x its CPU) and
    # still a third less JVM CPU per post. A cluster's TaskManagers run for weeks: there
    # the default is right (their JVM options are the cluster's, not these).
    local_jit: str = "c1"
    request_timeout_s: float = 10.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"


@dataclass(frozen=True)
class ReportSettings:
    """The public report endpoint (`yuqing report-server`); its /metrics is on
    metrics.report_server_port. Tokens come from YUQING_REPORT_TOKENS (`name:token,...`)
    or `tokens_file` (YAML), never from this file's values."""

    host: str = "127.0.0.1"
    port: int = 18088
    tokens_file: str = ""
    token_rate_per_s: float = 1.0  # sustained reports per second per token
    token_burst: int = 30
    address_rate_per_s: float = 2.0  # requests per second per client address (any answer)
    address_burst: int = 60
    address_connections: int = 64  # open connections per client address
    # reverse proxies (comma-separated CIDRs) whose X-Forwarded-For names the client; a peer in
    # them is not capped per address itself
    trusted_proxies: str = ""
    max_connections: int = 1024
    max_body_bytes: int = 65536
    request_deadline_s: float = 10.0  # the whole request (headers and body) must arrive within this
    workers: int = 8  # threads that wait for Kafka's acknowledgement
    max_future_s: int = 300  # published_at may be at most this far ahead of the server's clock
    max_age_s: int = 7 * 86400  # and at most this old


@dataclass(frozen=True)
class Settings:
    state_dir: Path = REPO_ROOT / ".yuqing"
    # downloaded jars live apart from the state so that test stacks and purges share them
    lib_dir: Path = REPO_ROOT / ".yuqing" / "lib"
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    clickhouse: ClickHouseSettings = field(default_factory=ClickHouseSettings)
    prometheus: PrometheusSettings = field(default_factory=PrometheusSettings)
    alertmanager: AlertmanagerSettings = field(default_factory=AlertmanagerSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    flink: FlinkSettings = field(default_factory=FlinkSettings)
    report: ReportSettings = field(default_factory=ReportSettings)

    @property
    def flink_connector_jar(self) -> Path:
        jars = sorted((self.lib_dir / "flink").glob("flink-sql-connector-kafka-*.jar"))
        if not jars:
            raise ConfigError(
                f"no Flink Kafka connector jar in {self.lib_dir / 'flink'}: run `make setup`"
            )
        return jars[-1]


def _coerce(value: Any, target: type, key: str) -> Any:
    if target is Path:
        return Path(os.path.expanduser(str(value))).resolve()
    if target is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if target is int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
        if key.endswith("port") and not 1 <= number <= 65535:
            raise ConfigError(f"{key}: port {number} is outside 1..65535")
        return number
    if target is float:
        try:
            return float(str(value).strip())
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    return str(value)


def _apply(obj: Any, values: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(type(obj))
    changes: dict[str, Any] = {}
    known = {f.name for f in fields(obj)}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(f"unknown setting {dotted!r} (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted}: expected a mapping")
            changes[key] = _apply(current, value, dotted + ".")
        else:
            changes[key] = _coerce(value, hints[key], dotted)
    return replace(obj, **changes) if changes else obj


def _env_overrides(obj: Any, prefix: str, env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        name = f"{prefix}_{f.name}".upper()
        current = getattr(obj, f.name)
        if is_dataclass(current):
            nested = _env_overrides(current, name, env)
            if nested:
                out[f.name] = nested
        elif name in env:
            out[f.name] = env[name]
    return out


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    settings = Settings()
    path = path or env.get(CONFIG_ENV)
    if path:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
        settings = _apply(settings, data, "")
    overrides = _env_overrides(settings, "YUQING", env)
    if overrides:
        settings = _apply(settings, overrides, "")
    if not settings.clickhouse.secrets_dir:
        settings = replace(settings, clickhouse=replace(
            settings.clickhouse, secrets_dir=str(settings.state_dir / "secrets" / "clickhouse")))
    _check_ports_distinct(settings)
    settings.kafka.check_auth()
    return settings


def _check_ports_distinct(settings: Settings) -> None:
    seen: dict[int, str] = {}
    for section in ("kafka", "clickhouse", "prometheus", "alertmanager", "metrics", "flink", "report"):
        obj = getattr(settings, section)
        for f in fields(obj):
            if f.name.endswith("port"):
                port = getattr(obj, f.name)
                key = f"{section}.{f.name}"
                if port in seen:
                    raise ConfigError(f"{key} and {seen[port]} both use port {port}: give each its own")
                seen[port] = key
