"""Kafka listener auth (SCRAM-SHA-512) against a REAL broker of this test's own.

The Kubernetes manifests put every client behind a SCRAM listener; this checks, with the
same Kafka release the local stack runs, that the settings Yuqing's clients take
(YUQING_KAFKA_SECURITY_PROTOCOL / _SASL_* through KafkaSettings' adapters) really
authenticate: kafka-python (ingest producer, admin) and librdkafka (the ClickHouse sink's
consumer), and that a wrong password or no auth is refused.
"""
from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from core.config import load_settings

USERS = {"admin": "admin-secret-1", "yuqing-crawler": "crawler-秘密-2"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory):
    jars = load_settings().lib_dir / "kafka"
    if not any(jars.glob("kafka_2.13-*.jar")):
        pytest.fail(f"no Kafka jars in {jars}: `make setup` fetches them")
    if shutil.which("java") is None:
        pytest.fail("java is missing: `make setup` installs it")
    root = tmp_path_factory.mktemp("scram-kafka")
    port, cport = _free_port(), _free_port()
    props = root / "server.properties"
    props.write_text("\n".join([
        "process.roles=broker,controller", "node.id=1", f"controller.quorum.voters=1@127.0.0.1:{cport}",
        f"listeners=SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=SASL_PLAINTEXT",
        "sasl.enabled.mechanisms=SCRAM-SHA-512", "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
        f"org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"{USERS['admin']}\";",
        f"log.dirs={root / 'data'}", "num.partitions=1", "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1", "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1", "group.initial.rebalance.delay.ms=0", "auto.create.topics.enable=true", ""]),
        encoding="utf-8")
    env = dict(os.environ, TMPDIR=str(root))
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    scram = [a for name, pw in USERS.items() for a in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={pw}]")]
    fmt = subprocess.run(["java", "-cp", f"{jars}/*", "kafka.tools.StorageTool", "format", "-t", cluster_id,
                          "-c", str(props), *scram], capture_output=True, text=True, timeout=120, env=env)
    assert fmt.returncode == 0, fmt.stderr[-2000:] or fmt.stdout[-2000:]
    log = open(root / "kafka.log", "wb")
    proc = subprocess.Popen(["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", f"-Djava.io.tmpdir={root}",
                             "-cp", f"{jars}/*", "kafka.Kafka", str(props)], stdout=log, stderr=log, env=env)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"SCRAM broker did not start: {(root / 'kafka.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _settings(bootstrap: str, user: str | None, password: str | None):
    host, port = bootstrap.split(":")
    env = {"YUQING_KAFKA_HOST": host, "YUQING_KAFKA_PORT": port, "YUQING_KAFKA_REQUEST_TIMEOUT_S": "10"}
    if user is not None:
        env.update(YUQING_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", YUQING_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
                   YUQING_KAFKA_SASL_USERNAME=user, YUQING_KAFKA_SASL_PASSWORD=password)
    return load_settings(env=env)


def test_clients_authenticate_with_scram_and_wrong_credentials_are_refused(scram_broker):
    from confluent_kafka import Consumer
    from kafka import KafkaProducer

    from ingest.producer import DeliveryError, PostProducer

    topic = f"scram-{uuid.uuid4().hex[:8]}"
    good = _settings(scram_broker, "yuqing-crawler", USERS["yuqing-crawler"])
    producer = KafkaProducer(bootstrap_servers=good.kafka.bootstrap, acks="all", request_timeout_ms=10_000,
                             max_block_ms=30_000, **good.kafka.kafka_python_options())
    producer.send(topic, "舆情 SCRAM 帖子".encode()).get(timeout=30)
    producer.close(timeout=5)

    consumer = Consumer({"bootstrap.servers": good.kafka.bootstrap, "group.id": f"g-{topic}",
                         "auto.offset.reset": "earliest", **good.kafka.librdkafka_options()})
    consumer.subscribe([topic])
    got = None
    deadline = time.monotonic() + 30
    while got is None and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            got = msg.value().decode()
    consumer.close()
    assert got == "舆情 SCRAM 帖子"

    # the ingest producer (as `yuqing crawl` builds it) with a wrong password, and without auth
    PostProducer(good.kafka.bootstrap, topic, topic + ".dlq", timeout_s=10,
                 client_options=good.kafka.kafka_python_options()).close()
    for bad in (_settings(scram_broker, "yuqing-crawler", "wrong-password"), _settings(scram_broker, None, None)):
        with pytest.raises(DeliveryError):
            PostProducer(bad.kafka.bootstrap, topic, topic + ".dlq", timeout_s=5,
                         client_options=bad.kafka.kafka_python_options())


def test_settings_refuse_half_configured_auth():
    from core.config import ConfigError

    with pytest.raises(ConfigError, match="sasl_username and kafka.sasl_password are required"):
        load_settings(env={"YUQING_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "YUQING_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"})
    with pytest.raises(ConfigError, match="security_protocol is PLAINTEXT"):
        load_settings(env={"YUQING_KAFKA_SASL_USERNAME": "u"})
    with pytest.raises(ConfigError, match="not one of"):
        load_settings(env={"YUQING_KAFKA_SECURITY_PROTOCOL": "SASL"})
    k = load_settings(env={"YUQING_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "YUQING_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                           "YUQING_KAFKA_SASL_USERNAME": "yuqing-job", "YUQING_KAFKA_SASL_PASSWORD": "pw",
                           "YUQING_KAFKA_SSL_CAFILE": "/etc/kafka-ca/ca.crt"}).kafka
    jaas = k.java_client_properties("org.apache.flink.kafka.shaded.")["sasl.jaas.config"]
    assert jaas == ('org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required '
                    'username="yuqing-job" password="pw";')
    assert k.librdkafka_options()["ssl.ca.location"] == "/etc/kafka-ca/ca.crt"


def test_the_flink_job_passes_the_auth_to_its_kafka_source_and_sinks():
    from scoring import job

    root = Path(__file__).resolve().parents[2]
    env = {"YUQING_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "YUQING_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
           "YUQING_KAFKA_SASL_USERNAME": "yuqing-job", "YUQING_KAFKA_SASL_PASSWORD": "pw-1",
           "YUQING_KAFKA_SSL_CAFILE": "/etc/kafka-ca/ca.crt"}
    secured, plain = load_settings(env=env), load_settings(env={})
    cfg = job.JobConfig.build(secured, root / "data" / "watchlist.sample.yaml", metrics_port=0, udf_metrics_port=0)
    jaas = ("'properties.sasl.jaas.config' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram."
            "ScramLoginModule required username=\"yuqing-job\" password=\"pw-1\";'")
    for ddl in (job.kafka_source_ddl(secured, cfg, "yuqing-scoring", False), job.kafka_sink_ddl("s", "alerts", secured)):
        assert "'properties.security.protocol' = 'SASL_SSL'" in ddl and jaas in ddl
        assert "'properties.ssl.truststore.location' = '/etc/kafka-ca/ca.crt'" in ddl
    for ddl in (job.kafka_source_ddl(plain, cfg, "yuqing-scoring", False), job.kafka_sink_ddl("s", "alerts", plain)):
        assert "security.protocol" not in ddl and "jaas" not in ddl
