"""Seeded large watchlists and texts that name their brands, for the matcher's parity tests
and the `watchlist` bench phase (a PR agency watches thousands of names).

The watchlist holds every kind of word the matcher treats differently: 2-character Chinese
names (whole-token rule), longer names (substrings), Latin names with digits (ASCII word
boundaries), `exclude` / `require` query words, category `exclude` words. The texts name
those brands the ways users do: inside longer words, glued to letters and digits, in
traditional characters, in full-width or upper-case letters, beside category terms,
exclude words and legal/trending words. Same arguments, same output. Names are fictional.
"""
from __future__ import annotations

import random
from typing import Any

# Characters that brand names are made of; many have a distinct traditional form.
NAME_CHARS = ("飞鸟云龙华东门马车书贝乐网银钱达丰汇圆宝优兴联创动凤阳星月光风雷电"
              "海蓝绿红金玉青柠橙果米豆花叶林山川湖泉晨夕极速快捷惠美佳康乐安信诚")
NAME_SUFFIXES = ("出行", "支付", "云盘", "外卖", "科技", "App", "音乐", "直播", "汽车", "银行")
LATIN_SYLLABLES = ("fei", "niao", "yun", "long", "hua", "dong", "xing", "kuai", "bao", "you",
                   "ming", "tian", "lan", "jin", "an", "le", "da", "pay", "go", "hub")
CATEGORIES = (
    ("privacy", 0.9, "privacy", ("隐私", "泄露", "数据泄露", "个人信息", "暗网", "被倒卖")),
    ("outage", 0.5, "outage", ("故障", "宕机", "崩了", "闪退", "打不开", "服务中断")),
    ("refund", 0.6, "user_rights", ("退款", "不退", "乱扣费", "霸王条款", "维权")),
    ("legal", 0.85, "legal", ("起诉", "律师函", "立案", "集体诉讼")),
    ("safety", 1.0, "safety", ("爆炸", "起火", "自燃", "食物中毒", "受伤")),
    ("rumour", 0.4, "trust", ("辟谣", "谣言", "造谣", "虚假宣传", "跑路")),
    ("service", 0.3, "other", ("客服", "态度差", "投诉无门", "不理人")),
    ("price", 0.3, "other", ("涨价", "大数据杀熟", "收费", "会员费")),
)
CATEGORY_EXCLUDE = {"safety": ("消防演习",), "price": ("限时免费",)}
QUERY_WORDS = ("水果", "农药", "果园", "天气", "游戏", "小说", "电影", "演唱会", "比赛", "菜谱")
FILLER = ("今天", "用户反映", "说实话", "真的", "服务", "体验", "朋友说", "刚刚", "听说", "大家注意",
          "，", "。", "！", "？", " ", "[怒]", "[哈哈]", "😡", "👍", "到了", "一下", "质量", "新闻",
          "外面下雨", "周末去", "123", "abc", "OK", "第3次", "http://t.cn/x1")
SIGNAL_WORDS = ("热搜", "扩散", "约谈", "网信办", "315", "12315", "转发", "全网")


def brand_entries(n: int, seed: int = 0, query_share: float = 0.05) -> list[dict[str, Any]]:
    """`n` distinct brands; no two share a name or alias in folded form."""
    rng = random.Random(seed)
    used: set[str] = set()
    out: list[dict[str, Any]] = []

    def fresh(make) -> str:
        for _ in range(200):
            word = make()
            if word.lower() not in used:
                used.add(word.lower())
                return word
        raise RuntimeError("name space exhausted")  # pragma: no cover - far from it at 10k
    for i in range(n):
        kind = i % 10
        if kind == 0:  # short name: must be a whole token
            name = fresh(lambda: rng.choice(NAME_CHARS) + rng.choice(NAME_CHARS))
        else:
            name = fresh(lambda: "".join(rng.choice(NAME_CHARS) for _ in range(rng.choice((3, 3, 4)))))
        aliases = [fresh(lambda: name + rng.choice(NAME_SUFFIXES))]
        if kind in (1, 2, 0):
            aliases.append(fresh(lambda: "".join(rng.choice(LATIN_SYLLABLES).title() for _ in range(2))
                                 + str(rng.randrange(1, 1000))))
        entry: dict[str, Any] = {"name": name, "aliases": aliases}
        if rng.random() < query_share:
            entry["exclude"] = rng.sample(QUERY_WORDS, 2)
        elif rng.random() < query_share:
            entry["require"] = rng.sample(QUERY_WORDS, 2)
        out.append(entry)
    return out


def watchlist_data(n_brands: int, seed: int = 0, base: dict[str, Any] | None = None,
                   query_share: float = 0.05) -> dict[str, Any]:
    """A watchlist mapping (parse it with scoring.watchlist.parse_watchlist). With `base`,
    its brands come first (and its categories are used), then generated ones up to
    `n_brands`; the generated ones never reuse a base brand's words."""
    if base is not None:
        brands = [dict(b) for b in base["brands"]][:n_brands]
        taken = {w.lower() for b in brands for w in (b["name"], *(b.get("aliases") or []))}
        extra = [b for b in brand_entries(n_brands + len(taken), seed, query_share)
                 if not {w.lower() for w in (b["name"], *b["aliases"])} & taken]
        brands += extra[: n_brands - len(brands)]
        data = {k: v for k, v in base.items() if k != "brands"}
        data["brands"] = brands
        return data
    categories = [{"name": name, "severity": sev, "kind": kind, "terms": list(terms),
                   **({"exclude": list(CATEGORY_EXCLUDE[name])} if name in CATEGORY_EXCLUDE else {})}
                  for name, sev, kind, terms in CATEGORIES]
    return {"brands": brand_entries(n_brands, seed, query_share), "categories": categories}


def _traditional():
    import opencc

    return opencc.OpenCC("s2t")


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def texts(data: dict[str, Any], n: int, seed: int = 0, brand_share: float = 0.4,
          mention_first: int | None = None) -> list[tuple[str, str | None]]:
    """`n` (text, title) pairs. A `brand_share` of them name one or two brands (taken from
    the first `mention_first` brands when given), written the ways users write them."""
    rng = random.Random(seed)
    to_trad = _traditional()
    brands = data["brands"][:mention_first] if mention_first else data["brands"]
    terms = [t for c in data.get("categories", []) for t in c["terms"]]
    cat_excludes = [t for c in data.get("categories", []) for t in c.get("exclude", [])]
    out: list[tuple[str, str | None]] = []
    for _ in range(n):
        parts = [rng.choice(FILLER) for _ in range(rng.randrange(2, 8))]
        if rng.random() < brand_share:
            for brand in rng.sample(brands, min(len(brands), rng.choice((1, 1, 1, 2)))):
                word = rng.choice([brand["name"], *(brand.get("aliases") or [])])
                roll = rng.random()
                if roll < 0.1 and word.isascii():
                    word = rng.choice(("x", "7", "_", "-", " ")) + word + rng.choice(("s", "0", "", " ", "号"))
                elif roll < 0.2:
                    word = word + rng.choice(("到了", "质", "旋", "们", "子"))  # glued to a longer word
                elif roll < 0.3:
                    word = _full_width(word) if rng.random() < 0.5 else word.upper()
                parts.insert(rng.randrange(len(parts) + 1), word)
                for key in ("exclude", "require"):
                    if brand.get(key) and rng.random() < 0.5:
                        parts.append(rng.choice(brand[key]))
        if rng.random() < 0.5 and terms:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(terms))
        if rng.random() < 0.1 and cat_excludes:
            parts.append(rng.choice(cat_excludes))
        if rng.random() < 0.2:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(SIGNAL_WORDS))
        text = "".join(parts)
        if rng.random() < 0.15:  # a Hong Kong or Taiwan post
            text = to_trad.convert(text)
        title = None
        if rng.random() < 0.2:
            title = rng.choice(("快讯", "曝光", "用户投诉", "")) + rng.choice([b["name"] for b in brands])
        out.append((text, title))
    return out
