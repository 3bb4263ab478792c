"""The response library: loading, placeholder validation, the empty-phrase lint, drafts."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from scoring.watchlist import load_watchlist
from sinks.response import first_draft
from sinks.response.drafts import render_drafts
from sinks.response.facts import FIELDS, UNKNOWN, facts_from_alert
from sinks.response.library import TEMPLATES_DIR, TemplateError, load_library

REPO = Path(__file__).resolve().parents[3]
DETECTED = datetime(2026, 11, 25, 2, 10, tzinfo=timezone.utc)  # 10:10 Beijing


def sample_alert(category="privacy", level="high", **extra):
    return {
        "alert_id": "a1b2c3d4e5f60718", "event": "raised", "brand": "快送", "category": category,
        "level": level, "previous_level": "low", "at": DETECTED.isoformat(),
        "first_detected_at": DETECTED.isoformat(), "posts": 420, "negative_ratio": 0.731,
        "examples": [{"id": "weibo:1", "text": "快送把我的手机号  泄露了\n天天接骚扰电话", "platform": "weibo",
                      "author": "u1", "url": "https://weibo.example.com/1"},
                     {"id": "douyin:2", "text": "同样遇到", "platform": "douyin"},
                     {"id": "weibo:3", "text": "求解释", "platform": "weibo"}],
        "playbook": {"level": level, "title": "专项小组", "owner": "危机管理委员会", "steps": ["x"]},
        "deadlines": [{"name": "首次声明", "due_at": (DETECTED + timedelta(hours=2)).isoformat(), "hours_after_detection": 2.0},
                      {"name": "黄金4小时", "due_at": (DETECTED + timedelta(hours=4)).isoformat(), "hours_after_detection": 4.0},
                      {"name": "事实与方案", "due_at": (DETECTED + timedelta(hours=12)).isoformat(), "hours_after_detection": 12.0}],
        **extra,
    }


@pytest.fixture
def tpl_dir(tmp_path):
    """A copy of the bundled templates to break on purpose."""
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, target)
    return target


def test_every_watchlist_category_has_its_own_template_and_unknown_falls_back():
    lib = load_library()
    wl = load_watchlist(REPO / "data" / "watchlist.sample.yaml")
    for cat in wl.categories:
        assert lib.template_for(cat.name).category == cat.name, cat.name
        assert lib.template_for("no-such-name", cat.kind).category == cat.name  # by watchlist kind
    assert lib.template_for("general").category == "general"
    assert lib.template_for("brand_new_category").category == "general"


@pytest.mark.parametrize("category", ["privacy", "outage", "refund", "legal", "safety", "rumour", "general", "unknown"])
@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_every_template_renders_for_every_level(category, level):
    drafts = render_drafts(facts_from_alert(sample_alert(category, level)), now=DETECTED + timedelta(minutes=30))
    assert [p.phase.key for p in drafts.phases] == ["immediate", "facts", "aftermath"]
    text = drafts.to_text()
    assert "{" not in text and "}" not in text  # every placeholder filled
    assert all(p.steps for p in drafts.phases)
    if level == "low":
        assert all(p.statement is None for p in drafts.phases) and "无需对外发声" in text
    else:
        first = drafts.phases[0].statement
        assert "快送" in first and ("道歉" in first or "歉意" in first)
        assert "11月25日 22:10" in first  # facts_due, Beijing time
        assert drafts.phases[0].due_at == DETECTED + timedelta(hours=2)


def test_facts_fill_every_field_and_mark_the_unknown():
    values = facts_from_alert(sample_alert()).values(now=DETECTED + timedelta(minutes=75))
    assert set(values) == set(FIELDS)
    assert values["first_detected"] == "11月25日 10:10" and values["statement_due"] == "11月25日 12:10"
    assert values["platforms"] == "微博、抖音" and values["top_platform"] == "微博"  # 2 weibo examples
    assert values["negative_share"] == "73%" and values["hours_since_detection"] == "1小时15分"
    assert values["example"].startswith("快送把我的手机号 泄露了 天天")  # whitespace folded
    bare = facts_from_alert({"level": "medium", "brand": "快送"}).values()
    assert bare["first_detected"] == UNKNOWN and bare["posts"] == UNKNOWN and bare["statement_due"] == UNKNOWN
    # platform counts from ClickHouse win over the examples
    rich = facts_from_alert(sample_alert(platforms={"douyin": 90, "weibo": 30, "zhihu": 5}, total_posts=125))
    assert rich.values()["platforms"] == "抖音、微博、知乎" and rich.values()["total_posts"] == "125"


def test_unknown_placeholder_fails_at_load_with_file_and_field(tpl_dir):
    path = tpl_dir / "outage.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("{first_detected_time}", "{first_detcted_time}", 1),
                    encoding="utf-8")
    with pytest.raises(TemplateError) as err:
        load_library(tpl_dir)
    msg = str(err.value)
    assert "outage.yaml" in msg and "phases.immediate.statement" in msg and "{first_detcted_time}" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("bad, fragment", [
    ("我们高度重视此事。", "empty phrase '高度重视'"),
    ("我们将第一时间处理。", "empty phrase '第一时间'"),
    ("我们深表关切。", "empty phrase '深表关切'"),  # from templates/_lint.yaml
])
def test_lint_rejects_empty_phrases(tpl_dir, bad, fragment):
    path = tpl_dir / "refund.yaml"
    text = path.read_text(encoding="utf-8").replace("我们诚恳道歉。", "我们诚恳道歉。" + bad, 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match=fragment):
        load_library(tpl_dir)


def test_lint_requires_apology_and_concrete_actions_in_the_first_statement(tpl_dir):
    general = tpl_dir / "general.yaml"
    original = general.read_text(encoding="utf-8")
    general.write_text(original.replace("我们向大家道歉", "我们向大家说明"), encoding="utf-8")
    with pytest.raises(TemplateError, match="must apologise"):
        load_library(tpl_dir)
    vague = original.replace("（截至目前共 {total_posts} 条）", "").replace("1. ", "").replace("2. ", "") \
        .replace("将在{facts_due}前公布", "稍后公布")
    general.write_text(vague, encoding="utf-8")
    with pytest.raises(TemplateError, match="concrete actions"):
        load_library(tpl_dir)


def test_structure_errors_are_caught_at_load(tpl_dir):
    (tpl_dir / "general.yaml").unlink()
    with pytest.raises(TemplateError, match="no template for category 'general'"):
        load_library(tpl_dir)
    (tpl_dir / "extra.yaml").write_text(
        "category: extra\ntitle: t\nphases:\n  immediate: {steps: [a], statement: {low: x}}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match="extra.yaml: phases.immediate.statement.medium: missing"):
        load_library(tpl_dir)
    (tpl_dir / "extra.yaml").write_text("category: privacy\ntitle: t\nphases: {}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match="phase 'immediate' is missing"):
        load_library(tpl_dir)


def test_first_draft_for_the_notifier():
    text = first_draft(sample_alert())
    assert text.startswith("首次声明草稿（11月25日 12:10前发布）")
    assert "快送" in text and "11月25日 22:10" in text
    assert first_draft(sample_alert(level="low")) == ""  # internal handling: no statement
    assert first_draft({"brand": "快送"}) == ""  # unusable record: no draft, no exception
    assert first_draft("not a dict") == ""  # type: ignore[arg-type]
