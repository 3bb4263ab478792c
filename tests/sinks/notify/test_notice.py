"""Notices from both paths, their dedup keys, the Chinese rendering and the config parser."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sinks.notify.config import NotifyConfigError, parse_notify_config, render_alertmanager_config
from sinks.notify.dedup import Deduplicator
from sinks.notify.notice import NoticeError, notice_from_alert_event, notices_from_alertmanager
from sinks.notify.render import countdown_zh, format_duration_zh, render

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)


def event(**over):
    base = {"alert_id": "a1", "event": "raised", "brand": "快送", "category": "privacy", "level": "high",
            "previous_level": "medium", "at": "2026-11-25T10:00:00+08:00",
            "first_detected_at": "2026-11-25T09:40:00+08:00", "window_start": "2026-11-25T09:30:00+08:00",
            "window_end": "2026-11-25T10:00:00+08:00", "posts": 40, "negative_ratio": 0.75, "influence": 0.7,
            "severity": 0.9, "volatility": 0.6, "risk_score": 0.82,
            "examples": [{"id": "w:1", "text": "长" * 100, "platform": "weibo", "author": {"name": "甲"},
                          "url": "https://example.invalid/1"}],
            "playbook": {"level": "high", "title": "隐私事件预案", "owner": "法务", "steps": ["核实", "回应"]},
            "deadlines": [{"name": "声明", "due_at": "2026-11-25T11:42:00+08:00", "hours_after_detection": 2}]}
    base.update(over)
    return base


def am_alert(status="firing", **labels):
    lab = {"alertname": "YuqingHighRisk", "severity": "critical", "level": "high", "brand": "快送",
           "category": "privacy", "team": "pr"} | labels
    return {"status": status, "labels": lab, "annotations": {"risk_score": "0.820", "summary_zh": "中文摘要"},
            "startsAt": "2026-11-25T02:00:00.123456789Z", "endsAt": "0001-01-01T00:00:00Z"}


@pytest.mark.parametrize("seconds, text", [(6150, "1小时42分"), (30, "不足1分钟"), (600, "10分钟"),
                                           (7200, "2小时"), (93600, "1天2小时")])
def test_durations_read_naturally(seconds, text):
    assert format_duration_zh(seconds) == text


def test_countdown_before_and_after_the_deadline():
    due = NOW + timedelta(hours=1, minutes=42, seconds=10)
    assert countdown_zh("声明", due, NOW) == "距声明截止还有 1小时42分"
    assert countdown_zh("声明", NOW - timedelta(minutes=5), NOW) == "声明已超时 5分钟"


def test_kafka_event_renders_everything_on_call_needs():
    n = notice_from_alert_event(event())
    text = render(n, NOW, markdown=False)  # NOW is 10:00 Beijing; deadline 11:42
    for part in ("【舆情预警·高风险】快送·privacy", "风险分：0.82（影响力 0.70｜严重度 0.90｜波动性 0.60）",
                 "相关帖子：40 条（11-25 09:30–10:00），负面占比 75%", "首次发现：11-25 09:40",
                 "【微博·甲】" + "长" * 80 + "… 原帖 https://example.invalid/1", "处置预案：隐私事件预案（负责人：法务）",
                 "1) 核实", "距声明截止还有 1小时42分（11-25 11:42）"):
        assert part in text, part


def test_lowered_event_becomes_the_resolve_of_the_old_level():
    n = notice_from_alert_event(event(event="lowered", level="medium", previous_level="high"))
    assert (n.status, n.level, n.new_level) == ("resolved", "high", "medium")
    assert "已解除" in render(n, NOW, markdown=True) and "已降为中" in render(n, NOW, markdown=True)


@pytest.mark.parametrize("bad, message", [([], "JSON object"), (event(level="extreme"), "unknown level"),
                                          (event(brand=""), "lacks brand"), (event(event="x"), "raised or lowered")])
def test_bad_events_are_rejected_with_a_reason(bad, message):
    with pytest.raises(NoticeError, match=message):
        notice_from_alert_event(bad)


def test_both_paths_share_one_dedup_key_and_a_resolve_rearms():
    kafka = notice_from_alert_event(event())
    [am] = notices_from_alertmanager({"alerts": [am_alert()]}, "critical")
    assert am.risk_score == 0.82 and am.at.microsecond == 123456
    d = Deduplicator(600)
    assert d.admit(kafka, 0) and not d.admit(am, 5)
    [resolved] = notices_from_alertmanager({"alerts": [am_alert("resolved")]}, "critical")
    assert d.admit(resolved, 10) and not d.admit(notice_from_alert_event(event(event="lowered", level="low", previous_level="high")), 11)
    assert d.admit(am, 20)  # it came back after resolving: page again
    assert d.admit(kafka, 20 + 600)  # and after the window anyway
    [medium] = notices_from_alertmanager({"alerts": [am_alert(alertname="YuqingMediumRiskSustained", level="medium")]},
                                         "warning")
    assert Deduplicator(600).admit(medium, 0) and medium.dedup_keys() != am.dedup_keys()


def test_a_brand_rule_alert_names_its_leading_category_and_pages_once_per_brand_and_level():
    """The Prometheus rules fire per brand (deploy/prometheus/rules): the category is an
    annotation. Its page is absorbed by the incident page of the same brand and level,
    whichever category led the incident, and vice versa; a resolve re-arms the brand."""
    brand_alert = am_alert() | {"labels": {k: v for k, v in am_alert()["labels"].items() if k != "category"},
                                "annotations": {"category": "legal", "categories": "legal=high, privacy=high"}}
    [am] = notices_from_alertmanager({"alerts": [brand_alert]}, "critical")
    assert (am.brand, am.category, am.level) == ("快送", "legal", "high")
    kafka = notice_from_alert_event(event(kind="escalated", incident_id="i1", alert_id="i1", incident_level="high"))
    d = Deduplicator(600)
    assert d.admit(kafka, 0) and not d.admit(am, 5)
    d2 = Deduplicator(600)
    assert d2.admit(am, 0) and not d2.admit(kafka, 1)
    closed = notice_from_alert_event(event(event="closed", kind="closed", incident_id="i1", alert_id="i1",
                                           level="low", previous_level="high", incident_level="high"))
    assert d2.admit(closed, 2) and d2.admit(kafka, 3)  # a new incident after the close pages again
    other_brand = notice_from_alert_event(event(brand="星云支付"))
    assert d2.admit(other_brand, 4)


def test_ops_alerts_dedup_on_their_labels():
    a, b = (notices_from_alertmanager({"alerts": [{"status": "firing", "labels": {
        "alertname": "YuqingCrawlerStale", "source": s, "severity": "warning"}}]}, "ops")[0] for s in ("rss", "api"))
    assert not a.is_brand_alert and a.dedup_keys() != b.dedup_keys()
    assert "对象：source=rss" in render(a, NOW, markdown=False)


def test_config_env_overrides_and_errors():
    cfg = parse_notify_config({"channels": [{"name": "pr-ding", "kind": "dingtalk", "url_env": "U", "secret": "file"}]},
                              env={"U": "https://x.invalid/send", "YUQING_NOTIFY_PR_DING_SECRET": "from-env"})
    assert cfg.channels[0].url == "https://x.invalid/send" and cfg.channels[0].secret == "from-env"
    for data, message in [({"channels": [{"name": "a", "kind": "sms", "url": "https://x"}]}, "kind must be one of"),
                          ({"channels": [{"name": "a", "kind": "slack"}]}, "YUQING_NOTIFY_A_URL"),
                          ({"retry": {"attempts": 0}}, "retry.attempts"), ({"bogus": 1}, "unknown key"),
                          ({"kafka": {"min_level": "x"}}, "kafka.min_level")]:
        with pytest.raises(NotifyConfigError, match=message):
            parse_notify_config(data, env={})


def test_render_alertmanager_config_substitutes_every_placeholder():
    text = render_alertmanager_config("http://127.0.0.1:19104/", "/srv/state/secrets/notify-token")
    assert "__NOTIFY_" not in text and "url: http://127.0.0.1:19104/alertmanager/critical" in text
    assert "credentials_file: /srv/state/secrets/notify-token" in text
    with pytest.raises(NotifyConfigError):
        render_alertmanager_config("127.0.0.1:19104", "/t")
    for bad in ("relative/token", "/with space", "/q'uote"):
        with pytest.raises(NotifyConfigError, match="token file"):
            render_alertmanager_config("http://127.0.0.1:19104", bad)


def test_token_sources_in_order_and_their_checks(tmp_path):
    from sinks.notify.config import ensure_token_file, local_token_path, resolve_token

    state = tmp_path / "state"
    cfg = parse_notify_config({}, env={})
    assert resolve_token(cfg, env={}, state_dir=state) is None  # nothing configured, nothing created
    made = ensure_token_file(local_token_path(state))
    assert made.stat().st_mode & 0o777 == 0o600 and made.parent.stat().st_mode & 0o777 == 0o700
    local = made.read_text().strip()
    assert ensure_token_file(made).read_text().strip() == local  # never rotated behind anyone's back
    assert resolve_token(cfg, env={}, state_dir=state) == local
    other = tmp_path / "other-token"
    other.write_text("  file-token-0123456789abcdef\n")
    other.chmod(0o600)
    from_yaml = parse_notify_config({"auth": {"token_file": str(other)}}, env={})
    assert resolve_token(from_yaml, env={}, state_dir=state) == "file-token-0123456789abcdef"
    assert resolve_token(from_yaml, env={"YUQING_NOTIFY_TOKEN_FILE": str(made)}, state_dir=state) == local
    assert resolve_token(from_yaml, env={"YUQING_NOTIFY_TOKEN": "env-token-0123456789"}) == "env-token-0123456789"
    for env, message in [({"YUQING_NOTIFY_TOKEN": "short"}, "at least 16"),
                         ({"YUQING_NOTIFY_TOKEN": "has a space in it 0123"}, "without spaces"),
                         ({"YUQING_NOTIFY_TOKEN_FILE": str(tmp_path / "nope")}, "cannot read")]:
        with pytest.raises(NotifyConfigError, match=message):
            resolve_token(cfg, env=env)
    other.chmod(0o640)
    with pytest.raises(NotifyConfigError, match="readable by others"):
        resolve_token(from_yaml, env={})
    with pytest.raises(NotifyConfigError, match="auth: unknown key"):
        parse_notify_config({"auth": {"token": "inline-secrets-are-not-taken"}}, env={})


def test_raised_event_page_carries_the_forecast_and_the_first_statement_draft():
    forecast = {"next_1h": 120.4, "next_1h_low": 80, "next_1h_high": 170, "next_6h": 600, "next_6h_low": 300,
                "next_6h_high": 900, "next_level": "high", "p_next_level_6h": 0.42}
    n = notice_from_alert_event(event(level="medium", previous_level="low", forecast=forecast))
    text = render(n, NOW, markdown=False)
    assert "趋势预测：未来1小时约 120 条（80–170），6小时约 600 条（300–900）；6小时内升至高的概率 42%" in text
    from sinks.response import first_draft

    draft = first_draft(event(level="medium", previous_level="low", forecast=forecast))
    assert draft and draft in text and "声明草稿（0–2小时）" in text
    lowered = notice_from_alert_event(event(event="lowered", level="low", previous_level="medium", forecast=None))
    assert lowered.draft is None and "声明草稿" not in render(lowered, NOW, markdown=False)


# --- outside text is harmless in every robot's format ------------------------------------------
HOSTILE = ('<at user_id="all">所有人</at> <!channel> <!here> <@U024BE7LH> <https://evil.example/x|点我> '
           '[官方退款通道](http://refund.evil.example/pay) ![img](http://evil.example/t.png) '
           '**加急** 访问 www.evil.example 或 javascript:alert(1) &lt;b&gt; @所有人')


def hostile_event(**over):
    return event(examples=[
        {"id": "weibo:9", "text": HOSTILE, "platform": "weibo", "author": {"name": "[客服](http://x.example) <!channel>"},
         "url": "https://weibo.example/9?a=(1)&b=<x>"},
        {"id": "report:abc", "text": "用户报告：速看 http://phish.example", "platform": "weibo",
         "author": {"name": "官方媒体", "followers": 10**9, "verified": True}, "url": "https://phish.example/r",
         "claimed": {"author": {"name": "人民日报"}, "url": "https://claimed.example"}},
        {"id": "rss:3", "text": "正常帖子", "platform": "news", "url": "javascript:alert(1)"},
    ], **over)


def _links(text: str) -> list[str]:
    import re
    return re.findall(r"https?://[^\s)\]>|]+", text)


@pytest.mark.parametrize("kind", ["dingtalk", "wecom", "feishu", "slack", "webhook"])
def test_hostile_post_text_cannot_mention_link_or_format_in_any_channel(kind, monkeypatch):
    from sinks.notify.escape import DIALECTS

    monkeypatch.setattr("sinks.notify.render.EXAMPLE_CHARS", 1000)  # show the whole hostile text

    text = render(notice_from_alert_event(hostile_event()), NOW, dialect=DIALECTS[kind])
    live = ['<at user_id="all">', "<!channel>", "<!here>", "<@U024BE7LH>", "@所有人", "<https://evil",
            "http://refund", "http://evil", "www.evil.example", "javascript:", "人民日报", "claimed.example",
            "官方媒体", "phish.example/r"]
    if DIALECTS[kind].markdown:  # markdown syntax only matters where markdown is rendered
        live += ["![", "**加急**", "[官方退款通道]", "(hxxp"]
        assert text.count("](") == 1  # our own [原帖](…) link
    if kind == "slack":
        live += ["*加急*", "|点我"]
    for marker in live:
        assert marker not in text, (kind, marker)
    # the one link left is the crawled post's own URL, percent-encoded so it cannot break out
    assert _links(text) == ["https://weibo.example/9?a=%281%29&b=%3Cx%3E"], (kind, _links(text))
    assert "用户报告（未核实）" in text and "正常帖子" in text
    assert ("官方退款通道" in text) and ("所有人" in text)  # the words stay readable


def test_slack_escaping_follows_slacks_own_rules():
    from sinks.notify.escape import SLACK, escape_slack

    assert escape_slack("a & b <!channel> <@U1|x> *bold*") == "a &amp; b &lt;!channel&gt; &lt;＠U1｜x&gt; ＊bold＊"
    text = render(notice_from_alert_event(hostile_event()), NOW, dialect=SLACK)
    assert "<https://weibo.example/9?a=%281%29&b=%3Cx%3E|原帖>" in text and text.count("<") == 1


@pytest.mark.parametrize("url, ok", [("https://a.example/p?q=1", True), ("http://a.example", True),
                                     ("javascript:alert(1)", False), ("data:text/html,x", False),
                                     ("https://user:pw@a.example/", False), ("https://a.example/ x", False),
                                     ("https://a.example:99999/", False), ("//a.example/x", False),
                                     ("https:///nohost", False), (None, False), (12, False)])
def test_safe_link_takes_only_well_formed_http_urls(url, ok):
    from sinks.notify.escape import safe_link

    assert (safe_link(url, from_crawler=True) is not None) is ok
    assert safe_link(url, from_crawler=False) is None


def test_report_examples_never_show_claimed_fields_and_are_marked_unverified():
    n = notice_from_alert_event(hostile_event())
    report = n.examples[1]
    assert report.id == "report:abc" and report.author == "官方媒体"  # the job's own field, not `claimed`
    text = render(n, NOW, markdown=True)
    line = next(l for l in text.split("\n\n") if "用户报告" in l)
    assert "官方媒体" not in line and "phish.example/r" not in line and "原帖" not in line
    assert "hxxp://phish.example" in line  # the report's own text, defanged
    assert notice_from_alert_event(event(examples=[{"id": "x:1", "text": "t", "source": "report",
                                                    "url": "https://r.example"}])).examples[0].source == "report"


def test_alertmanager_notice_reads_severity_score_description_and_runbook():
    alert = am_alert()
    alert["annotations"] |= {"severity_score": "0.900", "description": "What it means", "runbook_url": "docs/runbooks.md#x"}
    [n] = notices_from_alertmanager({"alerts": [alert]}, "critical")
    assert n.severity == 0.9 and n.description == "What it means"
    [ops] = notices_from_alertmanager({"alerts": [{"status": "firing", "labels": {
        "alertname": "YuqingComponentDown", "job": "yuqing-notify", "severity": "warning", "team": "ops"},
        "annotations": {"description": "notify <!channel> down", "runbook_url": "docs/runbooks.md#yuqingcomponentdown"}}]},
        "ops")
    text = render(ops, NOW, markdown=False)
    assert "说明：notify ＜!channel＞ down" in text and "处置手册：docs/runbooks.md#yuqingcomponentdown" in text
