"""deploy/k8s, checked offline: schemas (kubeconform + kubernetes-validate), references, and
the generated copies of the rules, dashboards, Alertmanager config and ClickHouse DDL."""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from yuqing import deploycheck as dc
from yuqing.config import Settings, load_settings

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
    (lambda ds: one(ds, "Deployment", "yuqing-crawler")["spec"]["template"]["spec"]["volumes"][0]["configMap"].update(name="nope"),
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


def test_yuqing_env_configmap_loads_as_valid_settings(docs):
    env = one(docs, "ConfigMap", "yuqing-env")["data"]
    settings = load_settings(env={k: v for k, v in env.items() if k.startswith("YUQING_")})
    assert settings.kafka.bootstrap == "yuqing-kafka-bootstrap:9092"  # Strimzi's bootstrap service of Kafka `yuqing`
    assert settings.clickhouse.host == "clickhouse-yuqing"  # the Altinity service of CHI `yuqing`
    assert settings.kafka.raw_partitions == one(docs, "KafkaTopic", "posts.raw")["spec"]["partitions"]


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


def _kubeconform() -> str | None:
    return shutil.which("kubeconform") or next(
        (str(p) for p in [Settings().lib_dir / "bin" / "kubeconform"] if p.is_file()), None)


def _manifests(tmp_path: Path, docs: list[dict]) -> Path:
    """`kubectl kustomize` output where kubectl exists (what `kubectl apply -k` sends), else the files."""
    out = tmp_path / "all.yaml"
    if shutil.which("kubectl"):
        result = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        out.write_text(result.stdout)
    else:
        out.write_text("---\n".join(yaml.safe_dump(dc.strip(d)) for d in docs))
    return out


def _run_kubeconform(binary: str, schemas: Path, manifest: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary, "-strict", "-summary", "-output", "text", "-kubernetes-version", dc.K8S_VERSION,
         "-schema-location", f"{schemas}/{{{{ .NormalizedKubernetesVersion }}}}-standalone{{{{ .StrictSuffix }}}}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
         "-schema-location", f"{dc.CRD_SCHEMAS}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
         str(manifest)], capture_output=True, text=True, timeout=60)


def test_kubeconform_validates_every_manifest(tmp_path, docs):
    binary = _kubeconform()
    if not binary:
        pytest.skip("kubeconform not installed: `make setup` runs `go install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0` "
                    "into .yuqing/lib/bin (the Python schema check above still ran)")
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
    if not shutil.which("kubectl"):
        pytest.skip("kubectl not installed: kustomize build not checked (the file-level checks still ran)")
    built = [d for d in yaml.safe_load_all(_manifests(tmp_path, docs).read_text()) if d]
    assert all(d["metadata"].get("namespace") == "yuqing" for d in built if d["kind"] != "Namespace")
    ddl = [d for d in built if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("yuqing-clickhouse-ddl-")]
    assert len(ddl) == 1 and ddl[0]["data"]["replicated-ddl.sql"] == (K8S / "clickhouse/replicated-ddl.sql").read_text()
    job = next(d for d in built if d["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == ddl[0]["metadata"]["name"]
    assert len(built) == len(docs) + 1
