"""Alert rules: promtool checks them and runs their unit tests; names match sinks.metrics."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from sinks.metrics import CRAWLER_METRICS, Metrics

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "rules" / "yuqing.rules.yml"
RULE_TESTS = sorted((REPO / "deploy" / "prometheus" / "tests").glob("*.yml"))
JOBS = {"yuqing-job", "yuqing-crawler", "yuqing-sink", "yuqing-notify", "yuqing-report-server"}
OTHER_HELPERS = {"yuqing_clickhouse_insert_errors_total"}  # sinks/clickhouse/metrics.py

pytestmark = pytest.mark.skipif(not shutil.which("promtool"), reason="promtool missing: apt-get install prometheus")


def promtool(*args, cwd=None):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_promtool_check_rules():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 12 rules found" in result.stdout


def test_promtool_rule_unit_tests_pass():
    assert RULE_TESTS
    result = promtool("test", "rules", *map(str, RULE_TESTS), cwd=RULE_TESTS[0].parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_would_catch_a_changed_threshold(tmp_path):
    """The rule tests are sharp: raising the DLQ threshold must make them fail."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / RULES.name).write_text(RULES.read_text().replace("[5m])) > 1", "[5m])) > 5"))
    (tmp_path / "tests").mkdir()
    for t in RULE_TESTS:
        (tmp_path / "tests" / t.name).write_text(t.read_text())
    result = promtool("test", "rules", *[t.name for t in RULE_TESTS], cwd=tmp_path / "tests")
    assert result.returncode != 0 and "YuqingDLQRateHigh" in result.stdout + result.stderr


def test_rules_use_known_metrics_jobs_labels_and_bilingual_annotations():
    families = [m for m in Metrics(CollectorRegistry()).registry.collect()]
    known = {m.name + ("_total" if m.type == "counter" else "") for m in families} | set(CRAWLER_METRICS)
    known |= OTHER_HELPERS | {"up"}
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    runbooks = (REPO / "docs" / "runbooks.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r"^#+ .*?\{#([a-z0-9-]+)\}|^#+ (\w+)$", runbooks, re.M))
    anchors = {a or b.lower() for a, b in anchors}
    for rule in rules:
        used = set(re.findall(r"\b(yuqing_\w+|up)\b(?=\s*[{\[)])", rule["expr"]))
        if rule["alert"] == "YuqingWatchdog":
            assert rule["expr"] == "vector(1)" and rule["labels"]["severity"] == "none"
        else:
            assert used and used <= known, (rule["alert"], used - known)
            assert rule["labels"]["severity"] in ("critical", "warning")
        for job in re.findall(r'job=~?"([^"]+)"', rule["expr"]):
            assert set(job.split("|")) <= JOBS, job
        ann = rule["annotations"]
        assert re.search(r"[A-Za-z]{3}", ann["summary"]), rule["alert"]
        assert re.search(r"[\u4e00-\u9fff]", ann["summary_zh"]), rule["alert"]
        assert len(ann["description"]) > 40, rule["alert"]
        # no annotation may share a label's name (the old `severity` annotation hid the label)
        assert not set(ann) & set(rule["labels"]), (rule["alert"], set(ann) & set(rule["labels"]))
        assert ann["runbook_url"] == f"docs/runbooks.md#{rule['alert'].lower()}"
        assert rule["alert"].lower() in anchors, f"docs/runbooks.md has no section for {rule['alert']}"
        if rule["labels"]["team"] == "pr":
            # one alert per brand (an incident is a brand's story): the outermost aggregation
            # keeps only the brand; the categories travel as annotations
            assert rule["expr"].lstrip().startswith("max by (brand) (") and rule["labels"]["level"] in ("high", "medium")
            assert {"category", "categories"} <= set(ann), rule["alert"]


def test_brand_rules_would_catch_a_per_category_alert(tmp_path):
    """The rule tests are sharp about the grouping: alerting per (brand, category) again
    must make them fail (two alerts where one brand alert is expected)."""
    (tmp_path / "rules").mkdir()
    text = RULES.read_text()
    per_key = text.replace("max by (brand) (\n", "max by (brand, category) (\n")
    assert per_key != text
    (tmp_path / "rules" / RULES.name).write_text(per_key)
    (tmp_path / "tests").mkdir()
    for t in RULE_TESTS:
        (tmp_path / "tests" / t.name).write_text(t.read_text())
    result = promtool("test", "rules", *[t.name for t in RULE_TESTS], cwd=tmp_path / "tests")
    assert result.returncode != 0 and "YuqingHighRisk" in result.stdout + result.stderr
