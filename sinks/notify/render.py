"""Chinese on-call messages from a Notice: plain text (Feishu) and Markdown (DingTalk, WeCom, Slack).

Times are shown in Beijing time; deadlines as a countdown from `now`, e.g.
"距声明截止还有 1小时42分", so the reader sees at once how long is left.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .notice import Notice

BEIJING = timezone(timedelta(hours=8))
LEVEL_ZH = {"high": "高", "medium": "中", "low": "低"}
PLATFORM_ZH = {
    "weibo": "微博", "douyin": "抖音", "xiaohongshu": "小红书", "zhihu": "知乎", "tieba": "贴吧",
    "bilibili": "B站", "news": "新闻", "forum": "论坛", "appstore": "应用商店", "wechat": "微信",
    "overseas": "海外", "internal": "内部", "kuaishou": "快手", "toutiao": "头条",
}
PATH_ZH = {"kafka": "实时评分作业（Kafka）", "alertmanager": "Prometheus 告警（Alertmanager）"}
EXAMPLE_CHARS = 80


def format_duration_zh(seconds: float) -> str:
    """1h42m -> "1小时42分"; under a minute -> "不足1分钟"; days shown as "2天3小时"."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "不足1分钟"
    days, rem = divmod(minutes, 24 * 60)
    hours, mins = divmod(rem, 60)
    if days:
        return f"{days}天{hours}小时" if hours else f"{days}天"
    if hours:
        return f"{hours}小时{mins}分" if mins else f"{hours}小时"
    return f"{mins}分钟"


def countdown_zh(name: str, due_at: datetime, now: datetime) -> str:
    left = (due_at - now).total_seconds()
    if left > 0:
        return f"距{name}截止还有 {format_duration_zh(left)}"
    return f"{name}已超时 {format_duration_zh(-left)}"


def beijing(ts: datetime) -> str:
    return ts.astimezone(BEIJING).strftime("%m-%d %H:%M")


def title(notice: Notice) -> str:
    if notice.is_brand_alert:
        lv = LEVEL_ZH.get(notice.level or "", notice.level)
        if notice.status == "resolved":
            to = f"，已降为{LEVEL_ZH.get(notice.new_level, notice.new_level)}" if notice.new_level else ""
            return f"【舆情预警·已解除】{notice.brand}·{notice.category} {lv}风险结束{to}"
        return f"【舆情预警·{lv}风险】{notice.brand}·{notice.category}"
    state = "已恢复" if notice.status == "resolved" else "告警"
    return f"【系统{state}】{notice.alertname}"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render(notice: Notice, now: datetime, *, markdown: bool) -> str:
    """The message body. `markdown` adds bold headings and links."""
    b = (lambda s: f"**{s}**") if markdown else (lambda s: s)
    lines = [f"### {title(notice)}" if markdown else title(notice)]
    if notice.summary_zh:
        lines.append(notice.summary_zh)
    if notice.is_brand_alert:
        lines.append(f"{b('等级')}：{LEVEL_ZH.get(notice.level, notice.level)}（{notice.level}）")
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
                text = ex.text.replace("\n", " ")
                if len(text) > EXAMPLE_CHARS:
                    text = text[:EXAMPLE_CHARS] + "…"
                where = PLATFORM_ZH.get(ex.platform or "", ex.platform or "未知平台")
                who = f" @{ex.author}" if ex.author else ""
                link = ""
                if ex.url:
                    link = f" [原帖]({ex.url})" if markdown else f" {ex.url}"
                lines.append(f"{i}. [{where}{who}] {text}{link}")
        if notice.playbook and notice.status == "firing":
            owner = f"（负责人：{notice.playbook.owner}）" if notice.playbook.owner else ""
            lines.append(f"{b('处置预案')}：{notice.playbook.title}{owner}")
            for i, step in enumerate(notice.playbook.steps, 1):
                lines.append(f"  {i}) {step}")
        if notice.deadlines and notice.status == "firing":
            lines.append(f"{b('时限')}：")
            for d in notice.deadlines:
                lines.append(f"- {countdown_zh(d.name, d.due_at, now)}（{beijing(d.due_at)}）")
        if notice.forecast and notice.status == "firing":
            f = notice.forecast
            text = (f"未来1小时约 {f['next_1h']:.0f} 条（{f['next_1h_low']:.0f}–{f['next_1h_high']:.0f}），"
                    f"6小时约 {f['next_6h']:.0f} 条（{f['next_6h_low']:.0f}–{f['next_6h_high']:.0f}）")
            if f.get("next_level") and f.get("p_next_level_6h") is not None:
                text += f"；6小时内升至{LEVEL_ZH.get(f['next_level'], f['next_level'])}的概率 {f['p_next_level_6h']:.0%}"
            lines.append(f"{b('趋势预测')}：{text}")
        if notice.draft and notice.status == "firing":
            lines.append(f"{b('声明草稿（0–2小时）')}：")
            lines.append(notice.draft)
    else:
        labels = ", ".join(f"{k}={v}" for k, v in notice.labels if k not in ("alertname", "severity", "team"))
        if labels:
            lines.append(f"{b('对象')}：{labels}")
    if notice.summary:
        lines.append(f"{b('Summary')}: {notice.summary}")
    lines.append(f"{b('来源')}：{PATH_ZH.get(notice.path, notice.path)}，发送于 {beijing(now)}（北京时间）")
    return "\n\n".join(lines) if markdown else "\n".join(lines)
