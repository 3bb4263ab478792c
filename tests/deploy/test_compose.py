"""deploy/compose and deploy/docker, checked offline: references, pins, env vars, commands."""
from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from yuqing import deploycheck as dc
from core.config import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose"
DOCKER = REPO / "deploy" / "docker"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def pin(package: str) -> str:
    return next(d.split("==")[1] for d in PYPROJECT["project"]["dependencies"] if d.startswith(package + "=="))


def pom_property(name: str) -> str:
    return re.search(rf"<{re.escape(name)}>([^<]+)<", (REPO / "deploy/maven/pom.xml").read_text()).group(1)


@pytest.fixture(scope="module")
def compose() -> dict:
    return dc.interpolate_tree(dc.load_yaml(COMPOSE / "docker-compose.yml"), dc.COMPOSE_EXAMPLE_ENV)


def test_compose_file_has_no_broken_reference():
    assert dc.check_compose() == []


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c["services"]["crawler"].update(depends_on={"kafak": {"condition": "service_started"}}),
     "depends_on names no service: kafak"),
    (lambda c: c["services"]["crawler"]["volumes"].append("./missing.yaml:/x:ro"), "mounted file ./missing.yaml does not exist"),
    (lambda c: c["services"]["prometheus"].update(image="prom/prometheus:latest"), "moving tag 'latest'"),
    (lambda c: c["services"]["grafana"].update(image="grafana/grafana"), "has no tag"),
    (lambda c: c["services"]["notify"]["environment"].update(YUQING_KAFKA_HOSTNAME="kafka"), "YUQING_KAFKA_HOSTNAME is no Yuqing setting"),
    (lambda c: c["services"]["grafana"]["ports"].append("127.0.0.1:19092:1"), "host port 127.0.0.1:19092/tcp is also published"),
    (lambda c: c["services"]["kafka"].pop("healthcheck"), "but kafka has no healthcheck"),
    (lambda c: c["services"]["notify"]["volumes"].append("ghost:/data"), "named volume ghost is not declared"),
    (lambda c: c["services"]["kafka"].update(depends_on={"crawler": {"condition": "service_started"}}), "depends_on cycle"),
    (lambda c: c["services"]["db-migrate"].update(restart="always"), "but db-migrate restarts forever"),
    (lambda c: c["volumes"].update(unused=None), "volume unused is declared but no service mounts it"),
    (lambda c: c["services"]["kafka"].update(ports=["19092:19092"]), "publishes 0.0.0.0:19092/tcp: internal services bind 127.0.0.1"),
    (lambda c: c["services"]["clickhouse"].update(ports=[{"published": 19000, "target": 9000}]), "publishes 0.0.0.0:19000/tcp"),
    (lambda c: c["services"]["prometheus"]["command"].append("--web.enable-lifecycle"), "--web.enable-lifecycle"),
    (lambda c: c["services"]["jobmanager"]["environment"].update(
        FLINK_PROPERTIES=c["services"]["jobmanager"]["environment"]["FLINK_PROPERTIES"].replace(
            "web.submit.enable: false", "web.submit.enable: true")), "web.submit.enable must be false"),
    (lambda c: c["services"]["taskmanager"]["environment"].update(
        FLINK_PROPERTIES=c["services"]["taskmanager"]["environment"]["FLINK_PROPERTIES"].replace(
            "web.cancel.enable: false", "")), "web.cancel.enable must be false"),
])
def test_compose_check_catches_each_kind_of_mistake(compose, mutate, expected):
    broken = copy.deepcopy(compose)
    mutate(broken)
    problems = dc.compose_problems(broken, COMPOSE)
    assert any(expected in p for p in problems), problems


def test_interpolation_follows_compose_rules():
    env = {"SET": "v", "EMPTY": ""}
    assert dc.interpolate("${SET:-d} ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} $$HOME $SET", env) == "v d d  $HOME v"
    with pytest.raises(dc.DeployCheckError, match=r"\$\{NEEDED\} is required: set it now"):
        dc.interpolate("${NEEDED:?set it now}", env)
    with pytest.raises(dc.DeployCheckError, match="unclosed"):
        dc.interpolate("${OOPS", env)


@pytest.mark.parametrize("ref, ok", [
    ("apache/kafka:4.1.1", True), ("clickhouse/clickhouse-server:25.8", True),
    ("x@sha256:" + "0" * 64, True), ("redis", False), ("redis:latest", False), ("redis:alpine", False),
    ("registry:5000/app", False),
])
def test_image_pins(ref, ok):
    assert (dc.image_problem(ref) is None) is ok


def test_secrets_have_no_default_and_only_the_report_endpoint_follows_the_public_bind():
    raw = dc.load_yaml(COMPOSE / "docker-compose.yml")
    for name in [n for n in dc.COMPOSE_EXAMPLE_ENV if n != "YUQING_NOTIFY_TOKEN"]:  # that one is a compose secret
        env = {k: v for k, v in dc.COMPOSE_EXAMPLE_ENV.items() if k != name}
        with pytest.raises(dc.DeployCheckError, match=name):
            dc.interpolate_tree(raw, env)
    public = dc.interpolate_tree(raw, {**dc.COMPOSE_EXAMPLE_ENV, "YUQING_PUBLIC_BIND": "0.0.0.0"})
    exposed = {name: ports for name, svc in public["services"].items()
               if (ports := [p for p in dc._published_ports(svc.get("ports")) if not p.startswith("127.0.0.1:")])}
    assert exposed == {"report-server": ["0.0.0.0:18088/tcp"]}
    assert dc.compose_problems(public, COMPOSE) == []
    # the report endpoint's tokens reach it, and only it
    holders = [n for n, svc in public["services"].items() if "YUQING_REPORT_TOKENS" in (svc.get("environment") or {})]
    assert holders == ["report-server"]
    assert "--web.enable-lifecycle" not in public["services"]["prometheus"]["command"]


def test_the_issue_services_are_all_there_with_working_commands(compose):
    from yuqing.cli import build_parser

    services = compose["services"]
    assert {"kafka", "kafka-topics", "jobmanager", "taskmanager", "clickhouse", "db-migrate", "prometheus",
            "alertmanager", "grafana", "crawler", "report-server", "notify", "sink-clickhouse"} <= set(services)
    parser = build_parser()
    commands = {name: s["command"] for name, s in services.items() if str(s.get("image", "")).startswith("yuqing/app")}
    assert commands["crawler"][:2] == ["crawl", "--config"]
    assert commands["report-server"] == ["report-server", "--host", "0.0.0.0"]
    assert commands["sink-clickhouse"] == ["sink", "clickhouse"]
    assert commands["db-migrate"] == ["db", "migrate"]
    for name, argv in commands.items():
        args = parser.parse_args(argv)  # SystemExit (a failed test) if the CLI does not know it
        assert callable(args.func), name
    # the PyFlink job gets the Prometheus sensor plugged in by name (scoring/sensors.py)
    from scoring.sensors import resolve_factory
    from sinks.metrics import JobMetricsSensor

    job = services["jobmanager"]["command"]
    assert resolve_factory(job[job.index("--sensor") + 1]) is JobMetricsSensor


def test_every_yuqing_service_env_loads_as_valid_settings(compose):
    for name, svc in compose["services"].items():
        if not dc.is_yuqing_service(svc):
            continue
        env = {k: str(v) for k, v in svc["environment"].items()}
        try:
            settings = load_settings(env={k: v for k, v in env.items() if k.startswith("YUQING_")})
        except ConfigError as exc:  # a wrong value or two settings on one port
            pytest.fail(f"{name}: {exc}")
        assert settings.kafka.bootstrap == "kafka:9092", name
        assert settings.clickhouse.host == "clickhouse" and settings.metrics.host == "0.0.0.0", name


def test_ports_inside_containers_match_the_settings(compose):
    """Healthchecks and Prometheus targets use the ports the processes actually bind."""
    s = load_settings(env={k: str(v) for k, v in compose["services"]["notify"]["environment"].items() if k.startswith("YUQING_")})
    health = {n: " ".join(svc["healthcheck"]["test"]) for n, svc in compose["services"].items() if "healthcheck" in svc}
    assert f":{s.metrics.crawler_port}/" in health["crawler"]
    assert f":{s.metrics.sink_port}/" in health["sink-clickhouse"]
    assert f":{s.metrics.notify_port}/" in health["notify"]
    assert f":{s.report.port}/healthz" in health["report-server"]  # the public port's liveness
    assert f":{s.report.port}:{s.report.port}" in " ".join(compose["services"]["report-server"]["ports"])
    prom = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    targets = {sc["job_name"]: sc for sc in prom["scrape_configs"]}
    assert targets["yuqing-crawler"]["static_configs"][0]["targets"] == [f"crawler:{s.metrics.crawler_port}"]
    assert targets["yuqing-sink"]["static_configs"][0]["targets"] == [f"sink-clickhouse:{s.metrics.sink_port}"]
    assert targets["yuqing-job"]["dns_sd_configs"][0]["port"] == s.metrics.job_port
    assert f"notify:{s.metrics.notify_port}" in dc.NOTIFY_URL_COMPOSE


def test_prometheus_config_targets_compose_services(compose):
    prom = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    assert dc.prometheus_problems(prom, compose) == []
    broken = copy.deepcopy(prom)
    broken["scrape_configs"] = [sc for sc in broken["scrape_configs"] if sc["job_name"] != "yuqing-sink"]
    broken["scrape_configs"][1]["static_configs"] = [{"targets": ["nowhere:1"]}]
    problems = dc.prometheus_problems(broken, compose)
    assert any("yuqing-sink" in p and "missing" in p for p in problems)
    assert any("nowhere is no compose service" in p for p in problems)


def test_pinned_versions_agree_with_the_project(compose):
    services = compose["services"]
    assert services["kafka"]["image"] == f"apache/kafka:{pom_property('kafka.version')}"
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:25.8")
    version = PYPROJECT["project"]["version"]
    for name, svc in services.items():
        if dc.is_yuqing_service(svc):
            assert svc["image"].endswith(f":{version}"), name
    job = (DOCKER / "Dockerfile.job").read_text()
    assert f"FROM flink:{pin('apache-flink')}-scala_2.12-java17" in job
    assert "uv python install 3.11" in job
    assert "FROM python:3.11" in (DOCKER / "Dockerfile.app").read_text()
    # the connector comes from the project's pom, not a second pin
    assert "deploy/maven/pom.xml" in job and "5.0.0" not in job


@pytest.mark.parametrize("dockerfile", ["Dockerfile.app", "Dockerfile.job"])
def test_dockerfiles_copy_only_what_exists_and_is_not_ignored(dockerfile):
    text = (DOCKER / dockerfile).read_text()
    ignore = (DOCKER / f"{dockerfile}.dockerignore").read_text().split()
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    sources = []
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += line.split()[1:-1]
    assert sources
    for src in sources:
        assert (REPO / src).exists(), f"{dockerfile}: COPY {src}: not in the repo"
        assert any(src.rstrip("/") == a or src.startswith(a + "/") for a in allowed), f"{dockerfile}: {src} is dockerignored"


def test_compose_alertmanager_and_notify_configs_are_valid():
    from sinks.notify.config import load_notify_config

    assert "compose/alertmanager.yml" not in dc.stale_generated()
    am = yaml.safe_load((COMPOSE / "alertmanager.yml").read_text())
    hooks = [w for r in am["receivers"] for w in r.get("webhook_configs", [])]
    assert hooks and all(w["url"].startswith(dc.NOTIFY_URL_COMPOSE + "/alertmanager/") for w in hooks)
    assert all(w["http_config"]["authorization"]["credentials_file"] == dc.NOTIFY_TOKEN_FILE_COMPOSE for w in hooks)
    config = load_notify_config(COMPOSE / "notify.yaml")
    assert config.host == "0.0.0.0" and config.kafka.enabled


def test_promtool_and_amtool_accept_the_compose_configs():
    missing = [tool for tool in ("promtool", "amtool") if not shutil.which(tool)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: `make setup` installs them (Debian prometheus, prometheus-alertmanager)")
    for argv in (["promtool", "check", "config", "prometheus.yml"], ["amtool", "check-config", "alertmanager.yml"]):
        result = subprocess.run(argv, cwd=COMPOSE, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr


def _compose_cli() -> list[str]:
    """The Docker Compose client `make setup` builds (yuqing/setup.py GO_BUILDS): the real
    parser of the file. Missing means setup was not run or failed: the test fails."""
    from yuqing import setup as setup_mod

    path = setup_mod.go_tool_path(load_settings(), "docker-compose")
    if not path.is_file():
        pytest.fail(f"docker-compose is missing from {path.parent}: run `make setup` (it builds the pinned "
                    "Compose client from the Go module proxy)")
    return [str(path)]


def test_docker_compose_config_accepts_the_file():
    cli = _compose_cli()
    env = {k: v for k, v in os.environ.items() if k not in dc.COMPOSE_EXAMPLE_ENV}
    result = subprocess.run(cli + ["-f", "docker-compose.yml", "config", "--quiet"], cwd=COMPOSE,
                            capture_output=True, text=True, timeout=60, env={**env, **dc.COMPOSE_EXAMPLE_ENV})
    assert result.returncode == 0, result.stderr
    # without the secrets the real client refuses the file too
    result = subprocess.run(cli + ["-f", "docker-compose.yml", "config", "--quiet"], cwd=COMPOSE,
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0 and "YUQING_CLICKHOUSE_PASSWORD" in result.stderr, result.stderr
