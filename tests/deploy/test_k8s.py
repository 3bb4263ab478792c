"""deploy/k8s, checked offline: schemas (kubeconform + kubernetes-validate), references, and
the generated copies of the rules, dashboards, Alertmanager config and ClickHouse DDL."""
from __future__ import annotations

import copy
import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from yuqing import deploycheck as dc
from core.config import load_settings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return dc.load_k8s()


def one(docs, kind, name=None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def test_generated_files_are_in_sync_with_their_sources():
    assert dc.stale_generated() == [], "run `python -m yuqing.deploycheck render`"


def test_prometheus_rules_match_deploy_prometheus_rules(docs):
    rules = [d for d in docs if d["kind"] == "PrometheusRule"]
    sources = sorted((REPO / "deploy/prometheus/rules").glob("*.yml"))
    assert len(rules) == len(sources) >= 1
    want = [g for p in sources for g in yaml.safe_load(p.read_text())["groups"]]
    assert [g for r in rules for g in r["spec"]["groups"]] == want


def test_dashboard_configmaps_match_the_dashboard_json(docs):
    maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    files = sorted((REPO / "deploy/grafana/dashboards").glob("*.json"))
    assert len(maps) == len(files) >= 2
    got = {k: v for m in maps for k, v in m["data"].items()}
    assert got == {p.name: p.read_text() for p in files}
    assert all(json.loads(v)["uid"] for v in got.values())


def test_alertmanager_secret_pages_the_notify_service(docs):
    secret = one(docs, "Secret", "alertmanager-yuqing")
    am = yaml.safe_load(secret["stringData"]["alertmanager.yaml"])
    src = yaml.safe_load((REPO / "deploy/alertmanager/alertmanager.yml").read_text())
    assert am["route"] == src["route"] and len(am["receivers"]) == len(src["receivers"])
    hooks = [w for r in am["receivers"] for w in r.get("webhook_configs", [])]
    assert hooks and all(w["url"].startswith(dc.NOTIFY_URL_K8S + "/alertmanager/") for w in hooks)
    # the bearer token: Secret yuqing-notify-token, mounted by the Alertmanager and by notify
    assert all(w["http_config"]["authorization"]["credentials_file"] == dc.NOTIFY_TOKEN_FILE_K8S for w in hooks)
    assert "yuqing-notify-token" in one(docs, "Alertmanager")["spec"]["secrets"]
    one(docs, "Secret", "yuqing-notify-token")
    service = one(docs, "Service", "yuqing-notify")
    assert dc.NOTIFY_URL_K8S.endswith(f":{service['spec']['ports'][0]['port']}")
    assert one(docs, "Alertmanager")["spec"]["configSecret"] == "alertmanager-yuqing"


def test_no_broken_reference(docs):
    assert dc.reference_problems(docs, dc.kustomize_generated()) == []


@pytest.mark.parametrize("mutate, expected", [
    (lambda ds: next(v for v in one(ds, "Deployment", "yuqing-crawler")["spec"]["template"]["spec"]["volumes"]
                     if v["name"] == "config")["configMap"].update(name="nope"),
     "uses ConfigMap nope, which is not defined"),
    (lambda ds: one(ds, "Deployment", "yuqing-sink-clickhouse")["spec"]["template"]["spec"]["containers"][0]["env"][0]
     ["valueFrom"]["secretKeyRef"].update(name="gone"), "reads Secret gone"),
    (lambda ds: one(ds, "ConfigMap", "yuqing-env")["data"].update(YUQING_KAFKA_BROKERS="x"), "YUQING_KAFKA_BROKERS is no Yuqing setting"),
    (lambda ds: one(ds, "Deployment", "yuqing-notify")["spec"]["template"]["spec"]["containers"][0].update(image="yuqing/app:latest"),
     "moving tag 'latest'"),
    (lambda ds: one(ds, "Service", "yuqing-report-server")["spec"]["selector"].update({"app.kubernetes.io/name": "x"}), "matches no pod template"),
    (lambda ds: one(ds, "KafkaTopic", "alerts")["metadata"]["labels"].update({"strimzi.io/cluster": "other"}), "names no Kafka"),
    (lambda ds: one(ds, "Deployment", "yuqing-notify")["spec"]["selector"]["matchLabels"].update(extra="1"), "does not match the pod labels"),
])
def test_reference_check_catches_each_kind_of_mistake(docs, mutate, expected):
    broken = copy.deepcopy(docs)
    mutate(broken)
    problems = dc.reference_problems(broken, dc.kustomize_generated())
    assert any(expected in p for p in problems), problems


def test_yuqing_env_loads_as_valid_settings_in_every_container(docs):
    containers = dc.yuqing_containers(docs)
    assert len(containers) == 5  # crawler, report server, notify, sink, Flink job
    for where, _labels, env in containers:
        settings = load_settings(env={k: v for k, v in env.items() if k.startswith("YUQING_")})
        assert settings.kafka.bootstrap == "yuqing-kafka-bootstrap:9093", where  # Strimzi's bootstrap service, TLS listener
        assert settings.kafka.security_protocol == "SASL_SSL" and settings.kafka.sasl_mechanism == "SCRAM-SHA-512"
        assert settings.kafka.ssl_cafile == "/etc/kafka-ca/ca.crt"
    env = one(docs, "ConfigMap", "yuqing-env")["data"]
    settings = load_settings(env={k: v for k, v in env.items() if k.startswith("YUQING_")} | {
        "YUQING_KAFKA_SASL_USERNAME": "u", "YUQING_KAFKA_SASL_PASSWORD": "p"})
    assert settings.clickhouse.host == "clickhouse-yuqing"  # the Altinity service of CHI `yuqing`
    assert settings.kafka.raw_partitions == one(docs, "KafkaTopic", "posts.raw")["spec"]["partitions"]


def test_kafka_takes_only_authenticated_users_with_narrow_acls(docs):
    assert dc.kafka_auth_problems(docs) == []
    users = {d["metadata"]["name"] for d in docs if d["kind"] == "KafkaUser"}
    assert users == {"yuqing-crawler", "yuqing-report-server", "yuqing-job", "yuqing-sink", "yuqing-notify"}
    by_user = {env["YUQING_KAFKA_SASL_USERNAME"]: where for where, _l, env in dc.yuqing_containers(docs)}
    assert set(by_user) == users  # each process its own user
    crawler = one(docs, "KafkaUser", "yuqing-crawler")["spec"]["authorization"]["acls"]
    assert {a["resource"]["name"] for a in crawler} == {"posts.raw", "posts.dlq"}
    assert all("Read" not in a["operations"] for a in crawler)  # producers read nothing
    broken = copy.deepcopy(docs)
    listener = one(broken, "Kafka")["spec"]["kafka"]["listeners"][0]
    listener.pop("authentication")
    listener["tls"] = False
    one(broken, "Kafka")["spec"]["kafka"].pop("authorization")
    one(broken, "KafkaUser", "yuqing-notify")["spec"]["authorization"]["acls"].append(
        {"resource": {"type": "topic", "name": "alerts.typo"}, "operations": ["All"]})
    sink = one(broken, "Deployment", "yuqing-sink-clickhouse")["spec"]["template"]
    env = sink["spec"]["containers"][0]["env"]
    next(e for e in env if e["name"] == "YUQING_KAFKA_SASL_PASSWORD")["valueFrom"]["secretKeyRef"]["name"] = "yuqing-job"
    del sink["metadata"]["labels"]["yuqing.io/kafka-client"]
    problems = dc.kafka_auth_problems(broken)
    for expected in ("no authentication", "tls is off", "no authorization", "alerts.typo, which is no KafkaTopic",
                     "ACL too broad", "must come from Secret yuqing-sink", "without the label yuqing.io/kafka-client"):
        assert any(expected in p for p in problems), (expected, problems)


def _pod(docs, kind, name) -> dc.Endpoint:
    """The pod of a Deployment/Job: its template labels and named container ports."""
    spec = one(docs, kind, name)["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for c in spec["spec"]["containers"] for p in c.get("ports") or [] if "name" in p}
    return dc.Endpoint(labels=spec["metadata"].get("labels") or {}, ports=ports)


def test_network_policies_open_exactly_the_pipeline_flows(docs):
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    fd = one(docs, "FlinkDeployment")["spec"]["podTemplate"]
    flink = dc.Endpoint(labels={**fd["metadata"]["labels"], "app": "yuqing-scoring", "component": "taskmanager"},
                        ports={p["name"]: p["containerPort"] for p in fd["spec"]["containers"][0]["ports"]})
    crawler, report = _pod(docs, "Deployment", "yuqing-crawler"), _pod(docs, "Deployment", "yuqing-report-server")
    notify, sink = _pod(docs, "Deployment", "yuqing-notify"), _pod(docs, "Deployment", "yuqing-sink-clickhouse")
    ddl = _pod(docs, "Job", "yuqing-clickhouse-ddl")
    kafka = dc.Endpoint(labels={"strimzi.io/cluster": "yuqing", "strimzi.io/kind": "Kafka", "strimzi.io/name": "yuqing-kafka"})
    entity_op = dc.Endpoint(labels={"strimzi.io/cluster": "yuqing", "strimzi.io/kind": "Kafka",
                                    "strimzi.io/name": "yuqing-entity-operator"})
    ch = dc.Endpoint(labels={"clickhouse.altinity.com/chi": "yuqing"})
    keeper = dc.Endpoint(labels={"clickhouse-keeper.altinity.com/chk": "yuqing"})
    am = dc.Endpoint(labels={"app.kubernetes.io/name": "alertmanager", "alertmanager": "yuqing"})
    dns = dc.Endpoint(labels={"k8s-app": "kube-dns"}, namespace="kube-system")
    prometheus = dc.Endpoint(labels={"app.kubernetes.io/name": "prometheus"}, namespace="monitoring")
    operator = dc.Endpoint(labels={"name": "strimzi-cluster-operator"}, namespace="operators",
                           namespace_labels={"yuqing.io/operators": "true"})
    bi = dc.Endpoint(labels={"app": "grafana"}, namespace="bi", namespace_labels={"yuqing.io/analysts": "true"})
    other_ns = dc.Endpoint(labels={"app": "shop"}, namespace="shop")
    internet, metadata = dc.Endpoint(namespace=None, ip="203.0.113.10"), dc.Endpoint(namespace=None, ip="169.254.169.254")
    private, vpn_analyst = dc.Endpoint(namespace=None, ip="10.1.2.3"), dc.Endpoint(namespace=None, ip="10.88.3.4")
    allowed = [
        (crawler, dns, 53, "UDP"), (sink, dns, 53, "TCP"), (flink, dns, 53, "UDP"),
        (crawler, kafka, 9093), (report, kafka, 9093), (flink, kafka, 9093), (sink, kafka, 9093), (notify, kafka, 9093),
        (crawler, internet, 443), (crawler, internet, 80), (internet, report, 18088),
        (sink, ch, 9000), (ddl, ch, 9000), (ch, ch, 9009), (ch, keeper, 2181), (keeper, keeper, 9234),
        (vpn_analyst, ch, 8123), (bi, ch, 9000), (operator, ch, 8123),
        (am, notify, 19104), (notify, internet, 443), (am, internet, 443), (prometheus, am, 9093),
        (prometheus, crawler, 19102), (prometheus, report, 18080), (prometheus, flink, 19101), (prometheus, flink, 19105),
        (prometheus, sink, 19103), (prometheus, notify, 19104),
        (flink, flink, 6122), (operator, flink, 8081), (flink, internet, 443),
        (kafka, kafka, 9091), (entity_op, kafka, 9091), (operator, kafka, 9091), (entity_op, private, 443),
    ]
    denied = [
        (internet, kafka, 9093), (other_ns, kafka, 9093), (internet, ch, 9000), (other_ns, ch, 8123),
        (dc.Endpoint(namespace=None, ip="10.99.0.1"), ch, 8123),
        (report, ch, 9000), (crawler, ch, 9000), (notify, ch, 8123), (flink, ch, 9000),
        (crawler, metadata, 80), (crawler, private, 443), (notify, private, 443), (crawler, internet, 22),
        (report, internet, 443), (sink, internet, 443),
        (internet, notify, 19104), (other_ns, notify, 19104), (internet, report, 18080), (internet, flink, 8081),
        (other_ns, flink, 8081), (crawler, kafka, 9091), (sink, kafka, 9092), (internet, am, 9093),
        (internet, keeper, 2181), (sink, keeper, 2181), (crawler, notify, 19104),
    ]
    wrong = [f for f in allowed if not dc.flow_allowed(policies, *f)]
    assert wrong == [], f"needed flows blocked: {wrong}"
    wrong = [f for f in denied if dc.flow_allowed(policies, *f)]
    assert wrong == [], f"flows that must stay closed are open: {wrong}"
    # a pod no other policy names is shut by the default deny alone (and the check can tell)
    stray = dc.Endpoint(labels={"app": "debug-shell"}, ports={"http": 8080})
    assert not dc.flow_allowed(policies, stray, internet, 443) and not dc.flow_allowed(policies, internet, stray, 8080)
    without = [p for p in policies if p["metadata"]["name"] != "default-deny"]
    assert dc.flow_allowed(without, internet, stray, 8080)  # (its egress stays shut by allow-dns alone)


def test_clickhouse_analyst_is_read_only_with_the_local_limits_and_only_from_its_network(docs):
    from sinks.clickhouse.server_config import ANALYST_LIMITS

    users = one(docs, "ClickHouseInstallation")["spec"]["configuration"]
    profile = {k.split("/", 1)[1]: v for k, v in users["profiles"].items() if k.startswith(users["users"]["analyst/profile"] + "/")}
    assert profile == ANALYST_LIMITS
    policy = one(docs, "NetworkPolicy", "clickhouse-analysts")
    cidrs = {peer["ipBlock"]["cidr"] for rule in policy["spec"]["ingress"] for peer in rule["from"] if "ipBlock" in peer}
    assert cidrs and cidrs == set(users["users"]["analyst/networks/ip"])
    assert "::/0" not in users["users"]["default/networks/ip"] and "0.0.0.0/0" not in users["users"]["default/networks/ip"]


def test_flink_rest_takes_no_jars_and_cancels_nothing(docs):
    conf = one(docs, "FlinkDeployment")["spec"]["flinkConfiguration"]
    assert conf["web.submit.enable"] == "false" and conf["web.cancel.enable"] == "false"


def test_report_tokens_and_clickhouse_passwords_come_from_secrets(docs):
    envs = {where: env for where, _l, env in dc.yuqing_containers(docs)}
    report = next(env for where, env in envs.items() if "yuqing-report-server" in where)
    assert report["YUQING_REPORT_TOKENS"] == "<secret:yuqing-report-tokens/tokens>"
    assert sum("YUQING_REPORT_TOKENS" in env for env in envs.values()) == 1
    sink = next(env for where, env in envs.items() if "sink" in where)
    assert sink["YUQING_CLICKHOUSE_PASSWORD"] == "<secret:yuqing-clickhouse/password>"
    assert all("YUQING_CLICKHOUSE_PASSWORD" not in env for where, env in envs.items() if "sink" not in where)


def test_kafka_is_kraft_with_node_pools_and_every_topic(docs):
    assert dc.kafka_topic_problems(docs) == []
    kafka = one(docs, "Kafka")
    assert kafka["metadata"]["annotations"] == {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"}
    pom = (REPO / "deploy/maven/pom.xml").read_text()
    assert kafka["spec"]["kafka"]["version"] == re.search(r"<kafka.version>([^<]+)<", pom).group(1)
    roles = {r for p in docs if p["kind"] == "KafkaNodePool" for r in p["spec"]["roles"]}
    assert roles == {"controller", "broker"}
    broken = [d for d in copy.deepcopy(docs) if d["metadata"]["name"] != "alerts"]
    one(broken, "KafkaTopic", "posts.raw")["spec"]["partitions"] = 2
    problems = dc.kafka_topic_problems(broken)
    assert "KafkaTopic for alerts is missing" in problems and any("at least 4 partitions" in p for p in problems)


def test_flink_deployment_runs_the_pyflink_job(docs):
    fd = one(docs, "FlinkDeployment")
    flink = next(d.split("==")[1] for d in PYPROJECT["project"]["dependencies"] if d.startswith("apache-flink=="))
    job = fd["spec"]["job"]
    assert job["jarURI"] == f"local:///opt/flink/opt/flink-python-{flink}.jar"
    assert job["entryClass"] == "org.apache.flink.client.python.PythonDriver"
    assert job["args"][:2] == ["-py", "/opt/yuqing/scoring/job.py"]
    assert (REPO / "scoring" / "job.py").is_file()
    args = dict(zip(job["args"][2::2], job["args"][3::2]))
    assert int(args["--parallelism"]) == job["parallelism"] <= one(docs, "KafkaTopic", "posts.raw")["spec"]["partitions"]
    assert args["--watchlist"].startswith("/etc/yuqing/")
    from scoring.sensors import resolve_factory, sensor_spec
    from sinks.metrics import JobMetricsSensor

    assert resolve_factory(args["--sensor"]) is JobMetricsSensor and args["--sensor"] == sensor_spec(JobMetricsSensor)
    assert fd["spec"]["image"] == f"yuqing/job:{PYPROJECT['project']['version']}"
    assert fd["spec"]["flinkVersion"] == "v" + "_".join(flink.split(".")[:2])


def test_replicated_ddl_covers_every_table_of_the_migrations():
    from sinks.clickhouse.migrate import load_migrations

    ddl = (K8S / "clickhouse" / "replicated-ddl.sql").read_text()
    tables = {re.search(r"EXISTS \$\{db\}\.(\w+)", s.sql).group(1)
              for m in load_migrations() for s in m.statements if s.sql.startswith("CREATE TABLE")}
    assert {"posts", "risk_assessments", "alerts", "alert_actions", "rejects", "posts_hourly"} <= tables
    for table in tables:
        m = re.search(rf"CREATE TABLE IF NOT EXISTS yuqing\.{table} ON CLUSTER '{{cluster}}'.*?ENGINE = (\w+)\(([^)]*)\)", ddl, re.S)
        assert m, table
        assert m.group(1).startswith("Replicated") and "'{replica}'" in m.group(2), (table, m.group(0)[-200:])
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', inserted_at)" in ddl
    assert "${" not in ddl and "CREATE USER" not in ddl
    assert all("ON CLUSTER" in s for s in ddl.split(";") if s.strip() and not s.strip().startswith("--"))
    chi = one(dc.load_k8s(), "ClickHouseInstallation")
    assert chi["spec"]["configuration"]["clusters"][0]["layout"]["replicasCount"] >= 2
    assert "analyst/profile" in chi["spec"]["configuration"]["users"]


def test_replicate_statement_refuses_what_it_does_not_know():
    with pytest.raises(dc.DeployCheckError, match="cannot replicate"):
        dc.replicate_statement("DROP TABLE yuqing.posts")
    assert dc.replicate_statement("CREATE TABLE IF NOT EXISTS d.t (a UInt8) ENGINE = MergeTree() ORDER BY a") == (
        "CREATE TABLE IF NOT EXISTS d.t ON CLUSTER '{cluster}' (a UInt8) ENGINE = "
        "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}') ORDER BY a")


def test_schemas_accept_the_manifests_and_refuse_mistakes(docs):
    assert dc.schema_problems(docs) == []
    broken = copy.deepcopy(docs)
    one(broken, "Deployment", "yuqing-crawler")["spec"]["replicas"] = "one"
    one(broken, "FlinkDeployment")["spec"]["job"]["upgradeMode"] = "sometimes"
    one(broken, "KafkaTopic", "posts.raw")["spec"]["partitons"] = 12
    problems = dc.schema_problems(broken)
    assert len(problems) == 3, problems
    assert any("spec.replicas" in p for p in problems) and any("upgradeMode" in p for p in problems)
    assert any("partitons" in p for p in problems)


def setup_tool(name: str) -> str:
    """A deploy-check tool that `make setup` installs (yuqing/setup.py GO_TOOLS/GO_BUILDS):
    missing means setup was not run or failed, so the test fails instead of skipping."""
    from yuqing import setup as setup_mod

    assert name in setup_mod.GO_TOOLS or name in setup_mod.GO_BUILDS, name
    path = setup_mod.go_tool_path(load_settings(), name)
    if not path.is_file():
        pytest.fail(f"{name} is missing from {path.parent}: run `make setup` (it builds the pinned "
                    f"version from the Go module proxy)")
    return str(path)


def _kubeconform() -> str:
    return setup_tool("kubeconform")


def _manifests(tmp_path: Path, docs: list[dict]) -> Path:
    """`kustomize build` output: what `kubectl apply -k` sends."""
    out = tmp_path / "all.yaml"
    result = subprocess.run([setup_tool("kustomize"), "build", str(K8S)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out.write_text(result.stdout)
    return out


def _run_kubeconform(binary: str, schemas: Path, manifest: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary, "-strict", "-summary", "-output", "text", "-kubernetes-version", dc.K8S_VERSION,
         "-schema-location", f"{schemas}/{{{{ .NormalizedKubernetesVersion }}}}-standalone{{{{ .StrictSuffix }}}}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
         "-schema-location", f"{dc.CRD_SCHEMAS}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
         str(manifest)], capture_output=True, text=True, timeout=60)


def test_kubeconform_validates_every_manifest(tmp_path, docs):
    binary = _kubeconform()
    schemas = dc.write_standalone_schemas(docs, tmp_path / "schemas")
    manifest = _manifests(tmp_path, docs)
    result = _run_kubeconform(binary, schemas, manifest)
    assert result.returncode == 0, result.stdout + result.stderr
    n = len([d for d in yaml.safe_load_all(manifest.read_text()) if d])
    assert f"Valid: {n}, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout, result.stdout
    # and it does refuse a broken one (built-in kind and custom resource)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump_all([
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "two"}},
        {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic", "metadata": {"name": "t"}, "spec": {"partitions": 0, "replicas": 1}},
    ]))
    result = _run_kubeconform(binary, schemas, bad)
    assert result.returncode == 1 and "Invalid: 2" in result.stdout, result.stdout


def test_kustomize_builds_with_generated_ddl_configmap(tmp_path, docs):
    built = [d for d in yaml.safe_load_all(_manifests(tmp_path, docs).read_text()) if d]
    assert all(d["metadata"].get("namespace") == "yuqing" for d in built if d["kind"] != "Namespace")
    ddl = [d for d in built if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("yuqing-clickhouse-ddl-")]
    assert len(ddl) == 1 and ddl[0]["data"]["replicated-ddl.sql"] == (K8S / "clickhouse/replicated-ddl.sql").read_text()
    job = next(d for d in built if d["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == ddl[0]["metadata"]["name"]
    assert len(built) == len(docs) + 1
