"""Seeded synthetic posts (CONTRACTS §1) for demos, benchmarks and acceptance tests.

Scenarios are building blocks placed on a timeline: calm chatter about a brand, a crisis
that grows from nothing to hundreds of posts per minute (spread by media and big-V
accounts over more and more platforms), a big positive launch, and a steady trickle of
complaints from ordinary users on one platform. The text carries realistic signals
(emoticon codes like [怒], emoji, `//@user:` repost chains, URLs, negative or positive
wording) so a real sentiment model has something to read; each post also carries its
ground truth in an extra `synth` field (`label`: 1 positive/neutral, 0 negative).
Same seed, same scenarios -> byte-identical output. All names are fictional.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from scoring.watchlist import Watchlist

CST = timezone(timedelta(hours=8))
PLATFORMS = ("weibo", "douyin", "xiaohongshu", "zhihu", "news", "bilibili", "tieba", "wechat")

NEG_EMOTICONS = ("[怒]", "[泪]", "[抓狂]", "[生气]", "[衰]", "[吐]", "[怒骂]", "[失望]", "😡", "😭", "🤬", "💢")
POS_EMOTICONS = ("[哈哈]", "[赞]", "[爱你]", "[鼓掌]", "[good]", "[心]", "[太开心]", "👍", "🎉", "😍", "❤️")
NEU_EMOTICONS = ("[思考]", "[吃瓜]", "[doge]", "🤔", "👀", "")
NEG_WORDS = ("太差了", "气死我了", "失望透顶", "恶心", "坑人", "垃圾", "无语", "心寒", "再也不用了", "离谱", "太过分了")
POS_WORDS = ("太好用了", "给力", "惊喜", "真香", "推荐", "满意", "点赞", "好评", "爱了", "体验很棒")

# Per-brand business vocabulary; unknown brands get GENERIC.
DOMAINS = {
    "快送": ("外卖", "骑手", "订单", "配送"),
    "星云支付": ("付款", "账户", "转账", "余额"),
    "青柠云盘": ("网盘", "文件", "相册", "会员"),
    "优品手机": ("新机", "屏幕", "续航", "拍照"),
}
GENERIC = ("产品", "服务", "账号", "体验")

MEDIA = ("晨报快讯", "都市观察网", "财经日报", "科技前哨", "新闻现场", "南城晚报", "数字经济周刊", "环球消费")
KOLS = ("科技老王", "数码评测君", "财经观察者", "吃瓜前线", "互联网那些事", "法律君说", "消费观察姐", "产品经理阿杰")
NICK_A = ("快乐的", "爱吃", "不想", "深夜", "路过的", "努力", "小小", "认真", "佛系", "早起")
NICK_B = ("小猫", "打工人", "土豆", "柠檬", "阿飞", "星星", "大白", "学生党", "程序员", "宝妈")


@dataclass(frozen=True)
class Scenario:
    """One storyline on the timeline; `rate` gives expected posts per minute."""

    kind: str  # calm | crisis | launch | trickle
    brand: str
    start: datetime
    minutes: float
    peak_per_min: float
    category: str | None = None
    platforms: tuple[str, ...] = PLATFORMS
    negative_share: float = 0.2
    peak_at: float = 60.0  # crisis/launch: minutes from start to the peak
    half_life: float = 45.0  # after the peak, minutes to halve the rate

    def rate(self, t: float) -> float:
        if t < 0 or t >= self.minutes:
            return 0.0
        if self.kind in ("calm", "trickle"):
            return self.peak_per_min
        if t <= self.peak_at:
            # Logistic rise from ~0.2 posts/min at t=0 to ~99% of the peak at peak_at.
            tau = self.peak_at / (math.log(max(self.peak_per_min / 0.2, 2.0)) + 4.6)
            mid = tau * math.log(max(self.peak_per_min / 0.2 - 1.0, 1.0))
            return self.peak_per_min / (1.0 + math.exp(-(t - mid) / tau))
        return self.peak_per_min * 0.5 ** ((t - self.peak_at) / self.half_life)


def calm_chatter(brand: str, start: datetime, minutes: float, per_min: float = 1.5,
                 platforms: tuple[str, ...] = ("weibo", "xiaohongshu", "douyin", "zhihu"),
                 negative_share: float = 0.2) -> Scenario:
    return Scenario("calm", brand, start, minutes, per_min, platforms=platforms, negative_share=negative_share)


def crisis(brand: str, category: str, onset: datetime, minutes: float = 150, peak_per_min: float = 300,
           peak_at: float = 60, negative_share: float = 0.85, platforms: tuple[str, ...] = PLATFORMS) -> Scenario:
    return Scenario("crisis", brand, onset, minutes, peak_per_min, category=category, platforms=platforms,
                    negative_share=negative_share, peak_at=peak_at)


def positive_launch(brand: str, start: datetime, minutes: float = 120, peak_per_min: float = 300,
                    peak_at: float = 20, negative_share: float = 0.08,
                    platforms: tuple[str, ...] = PLATFORMS) -> Scenario:
    return Scenario("launch", brand, start, minutes, peak_per_min, platforms=platforms,
                    negative_share=negative_share, peak_at=peak_at)


def complaint_trickle(brand: str, category: str, start: datetime, minutes: float, per_min: float = 1.0,
                      platform: str = "tieba", negative_share: float = 0.9) -> Scenario:
    return Scenario("trickle", brand, start, minutes, per_min, category=category, platforms=(platform,),
                    negative_share=negative_share)


@dataclass
class _Ctx:
    rng: random.Random
    watchlist: Watchlist
    counter: int = 0
    recent: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # brand -> [(id, author)]


def _pick(rng: random.Random, items: Iterable[Any]) -> Any:
    items = tuple(items)
    return items[rng.randrange(len(items))]


def _alias(ctx: _Ctx, brand: str) -> str:
    b = ctx.watchlist.brand(brand)
    if b is None or not b.aliases or ctx.rng.random() < 0.55:
        return brand
    return _pick(ctx.rng, b.aliases)


def _term(ctx: _Ctx, category: str | None) -> str:
    cat = ctx.watchlist.category(category) if category else None
    return _pick(ctx.rng, cat.terms) if cat else ""


def _author(ctx: _Ctx, tier: str, brand: str) -> dict[str, Any]:
    rng = ctx.rng
    if tier == "media":
        name = _pick(rng, MEDIA)
        return {"id": f"m-{MEDIA.index(name)}", "name": name, "followers": int(rng.uniform(2e6, 4e7)),
                "verified": True, "kind": "media"}
    if tier == "kol":
        name = _pick(rng, KOLS)
        return {"id": f"k-{KOLS.index(name)}", "name": name, "followers": int(rng.uniform(1e6, 2e7)),
                "verified": True, "kind": "kol"}
    if tier == "official":
        return {"id": f"o-{brand}", "name": f"{brand}官方", "followers": int(rng.uniform(5e5, 5e6)),
                "verified": True, "kind": "official"}
    n = rng.randrange(200_000)
    followers = min(int(rng.lognormvariate(5.5, 1.5)), 80_000)
    return {"id": f"u-{n}", "name": f"{_pick(rng, NICK_A)}{_pick(rng, NICK_B)}{n % 1000}",
            "followers": followers, "verified": rng.random() < 0.02, "kind": "user"}


def _metrics(rng: random.Random, author: dict[str, Any], boost: float) -> dict[str, int]:
    base = {"media": 400, "kol": 250, "official": 80, "user": 2}[author["kind"]] * boost
    likes = int(rng.expovariate(1.0) * base * 3)
    return {"reposts": int(rng.expovariate(1.0) * base), "comments": int(rng.expovariate(1.0) * base),
            "likes": likes, "views": int(author["followers"] * rng.uniform(0.005, 0.08)) + likes * 10}


def _decorate(rng: random.Random, text: str, mood: str) -> str:
    emo = {"neg": NEG_EMOTICONS, "pos": POS_EMOTICONS}.get(mood, NEU_EMOTICONS)
    text += "".join(_pick(rng, emo) for _ in range(rng.randrange(1, 3)))
    if rng.random() < 0.15:
        text += f" http://t.cn/{''.join(_pick(rng, 'ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789') for _ in range(7))}"
    return text


def _text(ctx: _Ctx, sc: Scenario, mood: str, tier: str, t: float) -> tuple[str, str | None]:
    rng = ctx.rng
    name = _alias(ctx, sc.brand)
    noun = _pick(rng, DOMAINS.get(sc.brand, GENERIC))
    term = _term(ctx, sc.category)
    neg, pos = _pick(rng, NEG_WORDS), _pick(rng, POS_WORDS)
    title = None
    if sc.kind == "crisis":
        if tier == "media":
            title = f"{sc.brand}被曝{term}，用户{noun}受影响"
            text = _pick(rng, (
                f"【关注】多名用户反映{name}出现{term}问题，涉及{noun}，记者联系{sc.brand}尚未回应。",
                f"#{sc.brand}{term}# 据网友爆料，{name}存在{term}情况，已有用户表示将维权。",
                f"{name}{term}事件持续发酵，律师表示平台或面临监管调查。"))
        elif tier == "official":
            text = f"关于近期{term}相关反馈的说明：{name}高度重视，已成立专项小组核查，感谢大家监督。"
            return _decorate(rng, text, "neu"), title
        elif mood == "neg":
            text = _pick(rng, (
                f"{name}{term}了？我的{noun}信息全被别人知道了，{neg}",
                f"刚收到诈骗电话，对方说出了我在{name}的{noun}记录，肯定是{term}，{neg}",
                f"{name}你们必须给个说法！{term}这么大的事一声不吭，{neg}",
                f"卸载{name}了，{term}谁受得了，{neg}",
                f"大家快去查查自己的{noun}，{name}{term}太吓人了"))
        else:
            text = _pick(rng, (f"{name}{term}的事有后续吗？坐等官方回应", f"关于{name}{term}，理性看待，等调查结果"))
        if t > 20 and rng.random() < min(0.35, (t - 20) / 60):
            text += _pick(rng, ("，已经上热搜了", "，求扩散！", "，全网都在刷屏", "，热搜爆了"))
        if t > 12 and rng.random() < min(0.2, (t - 12) / 80):
            text += _pick(rng, ("，已经准备起诉", "，建议网信办介入", "，必须向工信部投诉", "，律师函警告没用的", "，打12315举报"))
    elif sc.kind == "launch":
        if tier == "media":
            title = f"{sc.brand}新品发布，首销火爆"
            text = f"【新品】{name}今日发布新品，{noun}升级明显，首销{_pick(rng, ('一分钟售罄', '刷新纪录', '预约破百万'))}。"
            return _decorate(rng, text, "pos" if mood == "pos" else "neu"), title
        elif mood == "neg":
            text = _pick(rng, (f"{name}这次定价有点贵，{neg}", f"抢了半天{name}没抢到，{neg}"))
        elif mood == "neu":
            text = _pick(rng, (f"{name}新品发布会几点开始？", f"{name}新品有人买了吗？{noun}怎么样"))
        else:
            text = _pick(rng, (
                f"{name}新品发布会看完了，{noun}{pos}！",
                f"刚下单了{name}，{noun}真的{pos}",
                f"{name}这次{noun}提升太大了，{pos}，发布会热搜第一实至名归",
                f"首发抢到了{name}！{pos}"))
    elif sc.kind == "trickle":
        text = _pick(rng, (
            f"{name}申请{term}一个月了还没处理，客服一直踢皮球，{neg}",
            f"{name}{term}到底要等多久？{noun}的钱还在里面，{neg}",
            f"第三次找{name}客服说{term}的事，还是没结果，{neg}",
            f"有没有人和我一样，{name}{term}一直卡着，{neg}"))
        if rng.random() < 0.08:
            text += "，准备打12315了"
        if mood != "neg":
            text = f"{name}{term}终于处理好了，虽然慢了点"
    else:  # calm
        if mood == "neg":
            text = _pick(rng, (f"{name}今天{noun}有点慢，{neg}", f"{name}最近{noun}越来越差了，{neg}",
                               f"用了{name}的{noun}，说实话{neg}"))
        elif mood == "pos":
            text = _pick(rng, (f"{name}的{noun}{pos}", f"今天用{name}{noun}，{pos}", f"推荐一下{name}，{noun}{pos}"))
        else:
            text = _pick(rng, (f"有人用过{name}的{noun}吗？", f"{name}的{noun}怎么设置？", f"在看{name}的新活动"))
    return _decorate(rng, text, mood), title


def _tier(sc: Scenario, rng: random.Random, t: float) -> str:
    u = rng.random()
    if sc.kind == "crisis":
        media = 0.06 * min(1.0, max(0.0, (t - 8) / 20))
        kol = 0.10 * min(1.0, max(0.0, (t - 5) / 20))
        official = 0.01 if t > 40 else 0.0
    elif sc.kind == "launch":
        media, kol, official = 0.05, 0.08, 0.02
    elif sc.kind == "calm":
        media, kol, official = 0.003, 0.01, 0.01
    else:
        return "user"
    if u < media:
        return "media"
    if u < media + kol:
        return "kol"
    if u < media + kol + official:
        return "official"
    return "user"


def _platform(sc: Scenario, rng: random.Random, t: float, tier: str) -> str:
    if sc.kind == "crisis":
        # One platform at first, a new one joins every ~6 minutes.
        n = min(len(sc.platforms), 1 + int(max(t, 0) / 6))
        if tier == "media" and "news" in sc.platforms[:n] and rng.random() < 0.5:
            return "news"
        return sc.platforms[min(int(rng.expovariate(1.0) * n / 2.5), n - 1)]
    return _pick(rng, sc.platforms)


def _post(ctx: _Ctx, sc: Scenario, when: datetime, t: float) -> dict[str, Any]:
    rng = ctx.rng
    tier = _tier(sc, rng, t)
    mood_neg = rng.random() < (sc.negative_share * (0.8 if tier == "media" else 1.0))
    pos_share = {"launch": 0.9, "calm": 0.6}.get(sc.kind, 0.0)
    mood = "neg" if mood_neg else ("pos" if rng.random() < pos_share else "neu")
    platform = _platform(sc, rng, t, tier)
    author = _author(ctx, tier, sc.brand)
    text, title = _text(ctx, sc, mood, tier, t)
    ctx.counter += 1
    pid = f"{platform}:{ctx.counter:08d}"
    post: dict[str, Any] = {
        "id": pid, "platform": platform, "text": text,
        "published_at": when.astimezone(CST).isoformat(timespec="seconds"),
        "lang": "zh", "author": author, "source": "synth",
        "url": f"https://{platform}.example.com/p/{ctx.counter}",
    }
    recent = ctx.recent.setdefault(sc.brand, [])
    if tier == "user" and recent and rng.random() < 0.3:
        orig_id, orig_author = _pick(rng, recent[-20:])
        post["repost_of"] = orig_id
        post["text"] = f"{_pick(rng, NEG_EMOTICONS if mood == 'neg' else NEU_EMOTICONS)}转发 //@{orig_author}: {text}"
    if tier in ("media", "kol"):
        recent.append((pid, author["name"]))
        del recent[:-50]
    if title:
        post["title"] = title
    boost = 1.0 + (min(t, sc.peak_at) / 10.0 if sc.kind in ("crisis", "launch") else 0.0)
    post["metrics"] = _metrics(rng, author, boost)
    post["synth"] = {"scenario": sc.kind, "brand": sc.brand, "category": sc.category,
                     "label": 0 if mood == "neg" else 1}
    return post


def generate(scenarios: Iterable[Scenario], watchlist: Watchlist, seed: int = 0,
             arrival_jitter_s: float = 0.0) -> list[dict[str, Any]]:
    """All scenarios' posts; sorted by published_at, or by a jittered arrival time (a
    crawler delivers a little out of order) when arrival_jitter_s > 0."""
    ctx = _Ctx(random.Random(seed), watchlist)
    out: list[tuple[float, str, dict[str, Any]]] = []
    for sc in scenarios:
        minute = 0
        while minute < sc.minutes:
            expected = sc.rate(minute + 0.5)
            count = poisson(ctx.rng, expected)
            for offset in sorted(ctx.rng.random() * 60.0 for _ in range(count)):
                when = sc.start + timedelta(seconds=int(minute * 60 + offset))
                post = _post(ctx, sc, when, minute + offset / 60.0)
                arrival = when.timestamp() + ctx.rng.random() * arrival_jitter_s
                out.append((arrival, post["id"], post))
            minute += 1
    out.sort(key=lambda item: (item[0], item[1]))
    return [post for _, _, post in out]


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson-distributed count with mean `lam` (Knuth's method; normal above 50)."""
    if lam <= 0:
        return 0
    if lam > 50:  # normal approximation, fast and close enough at this size
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


DEFAULT_START = datetime(2026, 11, 25, 8, 0, tzinfo=CST)


def sample_scenarios(watchlist: Watchlist, hours: float = 4.0, start: datetime = DEFAULT_START,
                     scale: float = 1.0) -> list[Scenario]:
    """The bundled demo: calm chatter for every brand, one privacy crisis growing among it,
    one positive launch and one refund trickle (brands from the watchlist, in order)."""
    minutes = hours * 60
    names = [b.name for b in watchlist.brands]
    cats = {c.name for c in watchlist.categories}
    out = [calm_chatter(name, start, minutes, per_min=1.0) for name in names]
    crisis_cat = "privacy" if "privacy" in cats else (watchlist.categories[0].name if watchlist.categories else "general")
    onset = start + timedelta(minutes=minutes * 0.35)
    out.append(crisis(names[0], crisis_cat, onset, minutes=minutes * 0.65, peak_per_min=40 * scale, peak_at=60))
    if len(names) > 1:
        trickle_cat = "refund" if "refund" in cats else crisis_cat
        out.append(complaint_trickle(names[1], trickle_cat, start, minutes, per_min=0.5))
    if len(names) > 2:
        out.append(positive_launch(names[-1], start + timedelta(minutes=minutes * 0.6), minutes=min(120, minutes * 0.4),
                                   peak_per_min=30 * scale))
    return out
