"""Match post text to (brand, category) pairs and per-post legal/trending flags.

Why a hybrid instead of segmenting everything: segmentation costs more than a substring
test, and most posts of a real firehose name no watched brand. The rule, per word:

* Chinese words of at most `short_chars` (default 2) characters, e.g. 快送 or 优品, must be
  a whole token after segmentation (rjieba, or jieba as a fallback, with every alias and
  term added to the dictionary), so that 快送 does not match in 快送到了 (快/送到/了) and
  优品 not in 优品质 (优/品质). The segmenter runs only when such a word occurs as a substring.
* Longer Chinese words (星云支付, 数据泄露) are specific enough to match as substrings.
* Words with Latin letters or digits (KuaiSong, 315) match case-insensitively and only on
  ASCII word boundaries, so 315 does not match in 12315.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from scoring.watchlist import GENERAL, Watchlist

# Per-post signal words. Regulators and legal steps raise severity; hot-search and
# spreading words raise volatility. Extend them with `signals:` in the watchlist.
LEGAL_WORDS = (
    "起诉", "律师函", "立案", "报警", "诉讼", "判决", "违法", "罚款", "约谈", "处罚", "调查",
    "工信部", "网信办", "市场监管", "市监局", "公安", "消保委", "银保监", "金融监管",
    "315", "12315", "黑猫投诉",
)
TRENDING_WORDS = (
    "热搜", "刷屏", "爆了", "扩散", "转发", "求转", "全网", "上热门", "霸榜", "发酵", "炸锅", "沸",
)

_ASCII_ALNUM = re.compile(r"[0-9a-z]")


@dataclass(frozen=True, slots=True)
class MatchResult:
    """What one post is about: (brand, category) keys plus the per-post flags."""

    pairs: tuple[tuple[str, str], ...] = ()
    legal: bool = False
    trending: bool = False

    @property
    def brands(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(b for b, _ in self.pairs))

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for _, c in self.pairs))

    def __bool__(self) -> bool:
        return bool(self.pairs)


class Segmenter:
    """rjieba (Rust, ~20x jieba) with jieba as a fallback; both get the watch words."""

    def __init__(self, words: Iterable[str]):
        try:
            import rjieba

            self._jieba = rjieba.Jieba()
            self.backend = "rjieba"
            for word in words:
                self._jieba.add_word(word, max(self._jieba.suggest_freq(word), 1), None)
            self._cut = lambda text: self._jieba.cut(text, False)
        except ImportError:  # pragma: no cover - rjieba is a pinned dependency
            import jieba

            self._jieba = jieba.Tokenizer()
            self.backend = "jieba"
            for word in words:
                self._jieba.add_word(word)
            self._cut = lambda text: self._jieba.lcut(text, HMM=False)

    def cut(self, text: str) -> list[str]:
        return self._cut(text)


class _Word:
    """One watch word and how it must be found (see module docstring)."""

    __slots__ = ("text", "mode", "regex")

    def __init__(self, text: str, short_chars: int):
        self.text = text.lower()
        self.regex = None
        if _ASCII_ALNUM.search(self.text):
            self.mode = "ascii"
            head = r"(?<![0-9a-z])" if _ASCII_ALNUM.match(self.text[0]) else ""
            tail = r"(?![0-9a-z])" if _ASCII_ALNUM.match(self.text[-1]) else ""
            self.regex = re.compile(head + re.escape(self.text) + tail)
        elif len(self.text) <= short_chars:
            self.mode = "token"
        else:
            self.mode = "substring"

    def found(self, text: str, tokens: set[str] | None) -> bool:
        if self.text not in text:
            return False
        if self.mode == "substring":
            return True
        if self.mode == "ascii":
            return self.regex.search(text) is not None
        return tokens is not None and self.text in tokens


class Matcher:
    """Built once from the watchlist; `match` / `match_many` are the hot path."""

    def __init__(self, watchlist: Watchlist, short_chars: int = 2):
        self.watchlist = watchlist
        legal = tuple(dict.fromkeys(LEGAL_WORDS + watchlist.signals.get("legal", ())))
        trending = tuple(dict.fromkeys(TRENDING_WORDS + watchlist.signals.get("trending", ())))
        # Flat tables (word, owner) so the hot loop is one `in` test per word.
        self._brand_words = [(_Word(w, short_chars), b.name) for b in watchlist.brands for w in b.words]
        self._other_words = [(_Word(t, short_chars), ("cat", c.name)) for c in watchlist.categories for t in c.terms]
        self._other_words += [(_Word(w, short_chars), ("legal", "")) for w in legal]
        self._other_words += [(_Word(w, short_chars), ("trending", "")) for w in trending]
        self._brand_texts = [w.text for w, _ in self._brand_words]
        self._other_texts = [w.text for w, _ in self._other_words]
        # the other words by first character: a text is tested only for the words whose
        # first character it contains (a tenth of the 85 `in` scans of the sample watchlist)
        self._other_by_first: dict[str, tuple[int, ...]] = {}
        for i, t in enumerate(self._other_texts):
            if t:
                self._other_by_first[t[0]] = self._other_by_first.get(t[0], ()) + (i,)
        self._other_firsts = frozenset(self._other_by_first)
        self._category_order = {c.name: i for i, c in enumerate(watchlist.categories)}
        self._brand_order = {b.name: i for i, b in enumerate(watchlist.brands)}
        every = self._brand_texts + self._other_texts
        self.segmenter = Segmenter(dict.fromkeys(every))

    @property
    def backend(self) -> str:
        return self.segmenter.backend

    def match(self, text: str, title: str | None = None) -> MatchResult:
        low = (f"{title}\n{text}" if title else text).lower()
        hits = [i for i, t in enumerate(self._brand_texts) if t in low]
        if not hits:  # the firehose fast path: no watched brand named at all
            return MatchResult()
        tokens: set[str] | None = None
        brands: set[str] = set()
        for i in hits:
            word, name = self._brand_words[i]
            if name in brands:
                continue
            if word.mode == "token" and tokens is None:
                tokens = set(self.segmenter.cut(low))
            if word.found(low, tokens):
                brands.add(name)
        if not brands:
            return MatchResult()
        cats: set[str] = set()
        legal = trending = False
        texts, by_first = self._other_texts, self._other_by_first
        for i in [i for c in self._other_firsts.intersection(low) for i in by_first[c] if texts[i] in low]:
            word, (kind, name) = self._other_words[i]
            if word.mode == "token" and tokens is None:
                tokens = set(self.segmenter.cut(low))
            if not word.found(low, tokens):
                continue
            if kind == "cat":
                cats.add(name)
            elif kind == "legal":
                legal = True
            else:
                trending = True
        brand_list = sorted(brands, key=self._brand_order.__getitem__)
        cat_list = sorted(cats, key=self._category_order.__getitem__) or [GENERAL]
        return MatchResult(pairs=tuple((b, c) for b in brand_list for c in cat_list), legal=legal, trending=trending)

    def match_many(self, texts: Sequence[str], titles: Sequence[str | None] | None = None) -> list[MatchResult]:
        """Batch form for the job's vectorised UDF; same result as `match` per text."""
        if titles is None:
            return [self.match(t) for t in texts]
        return [self.match(t, h) for t, h in zip(texts, titles, strict=True)]
