"""The local single-node stack (Kafka, ClickHouse, Prometheus, Alertmanager)."""
