"""The local Prometheus config scrapes every Python worker's exporter of the scoring UDF."""
from __future__ import annotations

import yaml

from core.config import Settings
from yuqing.stack.components import LOCAL_WORKERS_SCRAPED, render_prometheus_config


def _targets(text: str) -> dict[str, list[str]]:
    config = yaml.safe_load(text)
    return {sc["job_name"]: [t for c in sc["static_configs"] for t in c["targets"]] for sc in config["scrape_configs"]}


def test_udf_workers_take_consecutive_ports():
    settings = Settings()
    targets = _targets(render_prometheus_config(settings, []))
    base = settings.metrics.job_udf_port
    assert targets["yuqing-job-udf"] == [f"{settings.metrics.host}:{base + i}" for i in range(LOCAL_WORKERS_SCRAPED)]
    # one window scorer per job, one exporter per other app
    assert targets["yuqing-job"] == [f"{settings.metrics.host}:{settings.metrics.job_port}"]
    assert targets["yuqing-sink"] == [f"{settings.metrics.host}:{settings.metrics.sink_port}"]
