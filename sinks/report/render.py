"""The weekly report as one self-contained HTML file (inline CSS and SVG) and as Markdown.

Post texts, authors and links come from outside: the HTML escapes them, links only to
http(s) addresses and carries a Content-Security-Policy that allows no script, no remote
load and only the one stylesheet (by hash); the Markdown escapes every cell, so a post's
text can neither open raw HTML nor become a link.
"""
from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime, timedelta
from html import escape
from urllib.parse import urlsplit

from core.levels import LEVEL_ZH
from sinks.zh import PLATFORM_ZH, format_duration_zh
from sinks.response.facts import BEIJING, CATEGORY_ZH

from .data import AlertSummary, ReportData
from .svg import bar_chart, line_chart

TEXT_CHARS = 70
CSS = """
body{font-family:'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;margin:24px auto;max-width:1100px;
color:#212529;background:#f8f9fa;line-height:1.5}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;border-left:5px solid #d9480f;padding-left:8px;margin-top:28px}
.muted{color:#6c757d;font-size:13px}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{background:#fff;border:1px solid #dee2e6;border-radius:6px;padding:12px 16px;min-width:150px}
.card b{display:block;font-size:24px}.chart{background:#fff;border:1px solid #dee2e6;border-radius:6px;padding:6px;margin:8px 0}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px;margin:8px 0}
th,td{border:1px solid #dee2e6;padding:5px 8px;text-align:left;vertical-align:top}th{background:#f1f3f5}
.high{color:#fff;background:#c92a2a;padding:1px 6px;border-radius:3px}.medium{color:#fff;background:#e67700;padding:1px 6px;border-radius:3px}
.low{color:#fff;background:#868e96;padding:1px 6px;border-radius:3px}.ok{color:#2b8a3e;font-weight:bold}.late{color:#c92a2a;font-weight:bold}
.neg{color:#c92a2a}.chart-svg{width:100%;height:auto}
"""


def _csp() -> str:
    """No script, no fetch, no form, no base: the page shows its own CSS, SVG and text only."""
    digest = base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode()
    return (f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; "
            "base-uri 'none'; form-action 'none'")


CSP = _csp()
URL_MAX = 2048


def safe_url(url: str | None) -> str | None:
    """The address when it is an absolute http(s) URL with a host, else None (not linked)."""
    if not url or len(url) > URL_MAX or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def _day(ts: datetime) -> str:
    t = ts.astimezone(BEIJING)
    return f"{t.month}月{t.day}日"


def _when(ts: datetime) -> str:
    t = ts.astimezone(BEIJING)
    return f"{t.month}月{t.day}日 {t:%H:%M}"


def _cat(category: str) -> str:
    zh = CATEGORY_ZH.get(category)
    return f"{zh}（{category}）" if zh else category


def _plat(platform: str) -> str:
    return PLATFORM_ZH.get(platform, platform)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + "…"


def _elapsed(td: timedelta | None) -> str:
    return "—" if td is None else format_duration_zh(td.total_seconds())


def _verdict(met: bool | None, markdown: bool) -> str:
    if met is None:
        return ""
    if markdown:
        return " ✅" if met else " ❌超时"
    return " <span class='ok'>✓达标</span>" if met else " <span class='late'>✗超时</span>"


def alert_rows(data: ReportData, markdown: bool = False) -> list[list[str]]:
    rows = []
    for a in data.alerts:
        c = a.clock
        lv = LEVEL_ZH.get(a.top_level, a.top_level)
        level = f"{lv}" if markdown else f"<span class='{escape(a.top_level)}'>{escape(lv)}</span>"
        ack_dl = c.ack_deadline
        res_dl = c.resolve_deadline
        ack = _elapsed(c.time_to_ack())
        if ack_dl:
            ack += f"（限{format_duration_zh(ack_dl.hours * 3600)}）"
        res = _elapsed(c.time_to_resolve())
        if res_dl:
            res += f"（限{format_duration_zh(res_dl.hours * 3600)}）"
        if c.resolved_at is not None:
            state = "已关闭"
        elif a.incident and a.last_event == "closed":
            state = "事件结束"
        elif a.last_level == "low" and not a.incident:
            state = "已降级"
        else:
            state = "处理中"
        esc = (lambda s: s) if markdown else escape
        cats = "、".join(_cat(x) for x in a.categories) if a.categories else _cat(a.category)
        rows.append([esc(a.alert_id), esc(a.brand), esc(cats), level, esc(_when(a.first_detected_at)),
                     esc(str(a.peak_posts)), esc(c.acked_by or "未认领"),
                     esc(ack) + _verdict(c.ack_met(), markdown), esc(res) + _verdict(c.resolve_met(), markdown),
                     esc(state)])
    return rows


ALERT_HEAD = ["告警编号", "品牌", "类别", "最高等级", "首次发现", "峰值帖子数", "认领人", "认领用时", "关闭用时", "状态"]


def response_summary(alerts: list[AlertSummary]) -> tuple[int, int, int, timedelta | None]:
    """(alerts, acked within the first deadline, resolved within the last, median time to ack)."""
    acked_ok = sum(1 for a in alerts if a.clock.ack_met())
    resolved_ok = sum(1 for a in alerts if a.clock.resolve_met())
    times = sorted(a.clock.time_to_ack() for a in alerts if a.clock.time_to_ack() is not None)
    median = times[len(times) // 2] if times else None
    return len(alerts), acked_ok, resolved_ok, median


def _table(head: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "<p class='muted'>无</p>"
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _labels(data: ReportData) -> tuple[list[datetime], list[str]]:
    step = timedelta(hours=1) if data.period.hourly else timedelta(days=1)
    buckets, t = [], data.period.start
    while t < data.period.end:
        buckets.append(t)
        t += step
    fmt = (lambda b: b.astimezone(BEIJING).strftime("%d日%H时")) if data.period.hourly else _day
    return buckets, [fmt(b) for b in buckets]


def _series(data: ReportData, buckets: list[datetime]):
    volume, negative = [], []
    for brand in data.brands:
        by = {p.bucket.astimezone(BEIJING): p for p in data.trends.get(brand, [])}
        pts = [by.get(b.astimezone(BEIJING)) for b in buckets]
        volume.append((brand, [float(p.posts) if p else 0.0 for p in pts]))
        negative.append((brand, [p.negative_share if p else 0.0 for p in pts]))
    return volume, negative


def render_html(data: ReportData) -> str:
    p = data.period
    title = f"舆情周报｜{_day(p.start)}–{_day(p.end - timedelta(seconds=1))}"
    scope = data.brand or "、".join(data.brands) or "（本期无数据）"
    total, neg = data.total_posts(), data.total_negative()
    n_alerts, ack_ok, res_ok, median = response_summary(data.alerts)
    high = sum(1 for a in data.alerts if a.top_level == "high")
    buckets, labels = _labels(data)
    volume, negative = _series(data, buckets)
    parts = [
        "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">",
        "<meta name='referrer' content='no-referrer'>",
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<div class='muted'>品牌：{escape(scope)}｜统计区间（北京时间）：{escape(_when(p.start))} 至 "
        f"{escape(_when(p.end))}｜生成于 {escape(_when(data.generated_at))}</div>",
        "<div class='cards'>",
        f"<div class='card'>相关帖子<b>{total}</b></div>",
        f"<div class='card'>负面占比<b>{(neg / total if total else 0):.0%}</b></div>",
        f"<div class='card'>预警<b>{n_alerts}</b>其中高风险 {high}</div>",
        f"<div class='card'>时限内认领<b>{ack_ok}/{n_alerts}</b>认领用时中位数 {escape(_elapsed(median))}</div>",
        f"<div class='card'>时限内关闭<b>{res_ok}/{n_alerts}</b></div>",
        "</div>",
        "<h2>声量与情感走势</h2>",
        f"<div class='chart'>{line_chart(labels, volume, title='各品牌相关帖子数')}</div>",
        f"<div class='chart'>{line_chart(labels, negative, title='各品牌负面占比', y_max=1.0, y_format=lambda v: f'{v:.0%}')}</div>",
    ]
    plat_rows = []
    for brand in data.brands:
        for platform, n, ng in data.platforms.get(brand, []):
            plat_rows.append([escape(brand), escape(_plat(platform)), str(n), f"{(ng / n if n else 0):.0%}"])
    parts += ["<h2>平台分布</h2>", _table(["品牌", "平台", "帖子数", "负面占比"], plat_rows)]
    parts += ["<h2>本期预警与响应时效</h2>",
              "<p class='muted'>认领用时对照首个时限（首次声明），关闭用时对照最后一个时限（事实与方案），均从首次发现起算。</p>",
              _table(ALERT_HEAD, alert_rows(data))]
    rising = [c for c in data.categories if c.category != "general"][:12]
    if rising:
        items = [(f"{c.brand}·{CATEGORY_ZH.get(c.category, c.category)}", float(c.change)) for c in rising]
        parts.append(f"<h2>风险类别变化（较上一周期）</h2><div class='chart'>"
                     f"{bar_chart(items, title='帖子数增减')}</div>")
        parts.append(_table(["品牌", "类别", "本期", "上期", "变化"],
                            [[escape(c.brand), escape(_cat(c.category)), str(c.posts), str(c.before),
                              (f"+{c.change}" if c.change > 0 else str(c.change))
                              + (f"（×{c.ratio:.1f}）" if c.ratio else "（新出现）" if c.posts else "")]
                             for c in rising]))
    else:
        parts.append("<h2>风险类别变化（较上一周期）</h2><p class='muted'>无</p>")
    parts += ["<h2>热门帖子（按平台）</h2>", _table(
        ["品牌", "平台", "作者", "内容", "互动", "发布时间"],
        [[escape(t.brand), escape(_plat(t.platform)), escape(t.author or "—"),
          _linked(t.url, ("<span class='neg'>[负面]</span> " if t.negative else "") + escape(_clip(t.text))),
          str(t.engagement), escape(_when(t.published_at))]
         for t in data.top_posts])]
    parts += ["<h2>主要传播者（按平台）</h2>", _table(
        ["品牌", "平台", "账号", "类型", "粉丝", "帖子数", "负面帖", "互动"],
        [[escape(s.brand), escape(_plat(s.platform)), escape(s.author), escape(s.author_kind), str(s.followers),
          str(s.posts), str(s.negative), str(s.engagement)] for s in data.spreaders])]
    parts.append("<p class='muted'>由 Yuqing（舆情雷达）生成；本文件不含脚本，不依赖网络。</p></body></html>")
    return "".join(parts) + "\n"


def _linked(url: str | None, inner_html: str) -> str:
    href = safe_url(url)
    if href is None:
        return inner_html
    return f"<a href='{escape(href, quote=True)}' rel='noopener noreferrer nofollow'>{inner_html}</a>"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~<>&])")
_MD_AUTOLINK = re.compile(r"(?i)(://|www\.)")


def md_cell(text: str) -> str:
    """One Markdown table cell showing `text` literally: no HTML, no link, no emphasis.

    Markdown punctuation is backslash-escaped (CommonMark shows it as is); `<`, `>` and `&`
    become character references, so no raw HTML survives a renderer that ignores backslashes;
    `://` and `www.` are broken up so autolinking renderers (GFM) make no link of them.
    """
    text = " ".join(text.split())
    entities = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
    text = _MD_SPECIAL.sub(lambda m: entities.get(m.group(1), "\\" + m.group(1)), text)
    return _MD_AUTOLINK.sub(lambda m: m.group(1).replace(":", "&#58;").replace(".", "&#46;"), text)


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "无\n"
    clean = [[md_cell(c) for c in r] for r in rows]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(r) + " |" for r in clean]) + "\n"


def render_markdown(data: ReportData) -> str:
    p = data.period
    total, neg = data.total_posts(), data.total_negative()
    n_alerts, ack_ok, res_ok, median = response_summary(data.alerts)
    lines = [f"# 舆情周报｜{_day(p.start)}–{_day(p.end - timedelta(seconds=1))}", "",
             f"品牌：{data.brand or '、'.join(data.brands) or '（本期无数据）'}；统计区间（北京时间）："
             f"{_when(p.start)} 至 {_when(p.end)}", "",
             f"- 相关帖子 {total} 条，负面占比 {(neg / total if total else 0):.0%}",
             f"- 预警 {n_alerts} 个；时限内认领 {ack_ok} 个，时限内关闭 {res_ok} 个；认领用时中位数 {_elapsed(median)}",
             "", "## 声量与情感（按品牌）", ""]
    lines.append(_md_table(["品牌", "帖子数", "负面帖", "负面占比"],
                           [[b, str(data.total_posts(b)), str(data.total_negative(b)),
                             f"{(data.total_negative(b) / data.total_posts(b) if data.total_posts(b) else 0):.0%}"]
                            for b in data.brands]))
    lines += ["## 本期预警与响应时效", "", _md_table(ALERT_HEAD, alert_rows(data, markdown=True))]
    rising = [c for c in data.categories if c.category != "general" and c.change > 0]
    lines += ["## 上升的风险类别", "", _md_table(["品牌", "类别", "本期", "上期"],
                                            [[c.brand, _cat(c.category), str(c.posts), str(c.before)] for c in rising])]
    lines += ["## 热门帖子（按平台）", "", _md_table(
        ["品牌", "平台", "作者", "内容", "互动"],
        [[t.brand, _plat(t.platform), t.author or "—", ("[负面] " if t.negative else "") + _clip(t.text), str(t.engagement)]
         for t in data.top_posts])]
    lines += ["## 主要传播者（按平台）", "", _md_table(
        ["品牌", "平台", "账号", "粉丝", "帖子数", "互动"],
        [[s.brand, _plat(s.platform), s.author, str(s.followers), str(s.posts), str(s.engagement)] for s in data.spreaders])]
    return "\n".join(lines)
