"""Chinese on-call messages from a Notice, in each robot's format (sinks/notify/escape.py):
Markdown (DingTalk, WeCom), plain text (Feishu, generic webhooks), Slack mrkdwn.

Times are shown in Beijing time; deadlines as a countdown from `now`, e.g.
"距声明截止还有 1小时42分", so the reader sees at once how long is left. Every value that
is not our own wording goes through the dialect's escaping; the only links are crawled
posts' http(s) URLs.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from core.levels import LEVEL_ZH
from sinks.zh import PLATFORM_ZH, format_duration_zh

from .escape import MARKDOWN, PLAIN, Dialect, safe_link
from .notice import Example, Notice

BEIJING = timezone(timedelta(hours=8))
PATH_ZH = {"kafka": "实时评分作业（Kafka）", "alertmanager": "Prometheus 告警（Alertmanager）"}
EXAMPLE_CHARS = 80


KIND_ZH = {"opened": "（新事件）", "escalated": "（事件升级）", "closed": "（事件结束）"}


def countdown_zh(name: str, due_at: datetime, now: datetime) -> str:
    left = (due_at - now).total_seconds()
    if left > 0:
        return f"距{name}截止还有 {format_duration_zh(left)}"
    return f"{name}已超时 {format_duration_zh(-left)}"


def beijing(ts: datetime) -> str:
    return ts.astimezone(BEIJING).strftime("%m-%d %H:%M")


def title(notice: Notice, dialect: Dialect = PLAIN) -> str:
    t = dialect.text
    if notice.is_brand_alert:
        lv = LEVEL_ZH.get(notice.level or "", t(notice.level))
        if notice.status == "resolved":
            to = f"，已降为{LEVEL_ZH.get(notice.new_level, t(notice.new_level))}" if notice.new_level else ""
            return f"【舆情预警·已解除】{t(notice.brand)}·{t(notice.category)} {lv}风险结束{to}"
        return f"【舆情预警·{lv}风险】{t(notice.brand)}·{t(notice.category)}"
    state = "已恢复" if notice.status == "resolved" else "告警"
    return f"【系统{state}】{t(notice.alertname)}"


def is_report(example: Example) -> bool:
    """A user report (report endpoint), not a crawled post: its claims are not shown as facts."""
    return (example.id or "").startswith("report:") or example.source == "report"


def _example_line(i: int, ex: Example, d: Dialect) -> str:
    if is_report(ex):
        # the reporter chose the author, platform and URL: show none of them
        where = "用户报告（未核实）"
    else:
        platform = PLATFORM_ZH.get(ex.platform or "", d.text(ex.platform or "未知平台", 20))
        where = f"{platform}·{d.text(ex.author, 30)}" if ex.author else platform
    url = safe_link(ex.url, from_crawler=not is_report(ex))
    link = f" {d.link(url, '原帖')}" if url else ""
    return f"{i}. 【{where}】{d.text(ex.text, EXAMPLE_CHARS)}{link}"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render(notice: Notice, now: datetime, *, markdown: bool = False, dialect: Dialect | None = None) -> str:
    """The message body in `dialect` (default: Markdown if `markdown`, else plain text)."""
    d = dialect or (MARKDOWN if markdown else PLAIN)
    b, t = d.bold, d.text
    lines = [d.heading(title(notice, d))]
    if notice.summary_zh:
        lines.append(t(notice.summary_zh))
    if notice.is_brand_alert:
        lines.append(f"{b('等级')}：{LEVEL_ZH.get(notice.level, t(notice.level))}（{t(notice.level)}）")
        if notice.incident_id:
            kind = KIND_ZH.get(notice.kind or "", "")
            lines.append(f"{b('事件')}：{t(notice.incident_id)}{kind}")
        if len(notice.categories) > 1 or (notice.categories and notice.categories[0][0] != notice.category):
            shown = "，".join(f"{t(c)}（{LEVEL_ZH.get(lv, t(lv))}）" for c, lv in notice.categories)
            lines.append(f"{b('涉及类别')}：{shown}")
        lines.append(
            f"{b('风险分')}：{_fmt(notice.risk_score)}（影响力 {_fmt(notice.influence)}｜"
            f"严重度 {_fmt(notice.severity)}｜波动性 {_fmt(notice.volatility)}）")
        if notice.posts is not None:
            neg = "" if notice.negative_ratio is None else f"，负面占比 {notice.negative_ratio:.0%}"
            window = ""
            if notice.window_start and notice.window_end:
                window = f"（{beijing(notice.window_start)}–{notice.window_end.astimezone(BEIJING):%H:%M}）"
            lines.append(f"{b('相关帖子')}：{notice.posts} 条{window}{neg}")
        if notice.first_detected_at:
            lines.append(f"{b('首次发现')}：{beijing(notice.first_detected_at)}（北京时间）")
        if notice.examples and notice.status == "firing":
            lines.append(f"{b('典型帖子')}：")
            for i, ex in enumerate(notice.examples, 1):
                lines.append(_example_line(i, ex, d))
        if notice.playbook and notice.status == "firing":
            owner = f"（负责人：{t(notice.playbook.owner)}）" if notice.playbook.owner else ""
            lines.append(f"{b('处置预案')}：{t(notice.playbook.title)}{owner}")
            for i, step in enumerate(notice.playbook.steps, 1):
                lines.append(f"  {i}) {t(step)}")
        if notice.deadlines and notice.status == "firing":
            lines.append(f"{b('时限')}：")
            for dl in notice.deadlines:
                lines.append(f"- {countdown_zh(t(dl.name), dl.due_at, now)}（{beijing(dl.due_at)}）")
        if notice.forecast and notice.status == "firing":
            f = notice.forecast
            text = (f"未来1小时约 {f['next_1h']:.0f} 条（{f['next_1h_low']:.0f}–{f['next_1h_high']:.0f}），"
                    f"6小时约 {f['next_6h']:.0f} 条（{f['next_6h_low']:.0f}–{f['next_6h_high']:.0f}）")
            if f.get("next_level") and f.get("p_next_level_6h") is not None:
                text += f"；6小时内升至{LEVEL_ZH.get(f['next_level'], t(f['next_level']))}的概率 {f['p_next_level_6h']:.0%}"
            lines.append(f"{b('趋势预测')}：{text}")
        if notice.draft and notice.status == "firing":
            lines.append(f"{b('声明草稿（0–2小时）')}：")
            lines.append(("\n" if not d.markdown else "  \n").join(t(line) for line in notice.draft.splitlines()))
    else:
        hidden = ("alertname", "severity", "team")
        labels = "，".join(f"{t(k)}={t(v)}" for k, v in notice.labels if k not in hidden)
        if labels:
            lines.append(f"{b('对象')}：{labels}")
        if notice.description:
            lines.append(f"{b('说明')}：{t(notice.description)}")
        if notice.runbook_url:
            lines.append(f"{b('处置手册')}：{t(notice.runbook_url)}")
    if notice.summary:
        lines.append(f"{b('Summary')}: {t(notice.summary)}")
    lines.append(f"{b('来源')}：{PATH_ZH.get(notice.path, t(notice.path))}，发送于 {beijing(now)}（北京时间）")
    return d.joiner.join(lines)
