"""Chinese display names and durations that notify's pages, the PR tools' drafts and the
weekly report all show the same way. A leaf module: it imports nothing of the project, so
any sink may use it without importing another sink's internals."""
from __future__ import annotations

PLATFORM_ZH = {
    "weibo": "微博", "douyin": "抖音", "xiaohongshu": "小红书", "zhihu": "知乎", "tieba": "贴吧",
    "bilibili": "B站", "news": "新闻", "forum": "论坛", "appstore": "应用商店", "wechat": "微信",
    "overseas": "海外", "internal": "内部", "kuaishou": "快手", "toutiao": "头条",
}


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
