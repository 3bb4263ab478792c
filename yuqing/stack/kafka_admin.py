"""Kafka admin calls for the stack: readiness and the project's topics."""
from __future__ import annotations

import logging

from core.config import Settings

logging.getLogger("kafka").setLevel(logging.CRITICAL)


def _admin(settings: Settings, timeout_ms: int = 5000):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap,
        request_timeout_ms=timeout_ms,
        client_id="yuqing-stack",
        **settings.kafka.kafka_python_options(),
    )


def broker_ready(settings: Settings) -> bool:
    try:
        admin = _admin(settings, timeout_ms=3000)
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()


def project_topics(settings: Settings) -> dict[str, int]:
    k = settings.kafka
    return {
        k.raw_topic: max(2, k.raw_partitions),
        k.dlq_topic: 1,
        k.scored_topic: max(2, k.raw_partitions),
        k.assessments_topic: 1,
        k.alerts_topic: 1,
    }


def ensure_topics(settings: Settings, topics: dict[str, int] | None = None) -> list[str]:
    """Create missing topics; returns the names created (idempotent)."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    wanted = project_topics(settings) if topics is None else topics
    admin = _admin(settings)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name, partitions, 1) for name, partitions in wanted.items() if name not in existing]
        if missing:
            try:
                admin.create_topics(missing, timeout_ms=15000)
            except TopicAlreadyExistsError:
                pass
        return [t.name for t in missing]
    finally:
        admin.close()


def topic_partitions(settings: Settings) -> dict[str, int]:
    admin = _admin(settings)
    try:
        described = admin.describe_topics()
        return {t.get("name") or t.get("topic"): len(t["partitions"]) for t in described}
    finally:
        admin.close()
