"""Match post text to (brand, category) pairs and per-post legal/trending flags.

Everything is compared in folded form (scoring.folding: traditional -> simplified, lower
case, full-width letters and digits -> ASCII), the text and every watch word alike, so
飛鳥出行 matches a brand 飞鸟出行. The stored post keeps its own characters.

Cost per post does not grow with the watchlist: one Aho-Corasick automaton holds every
brand name and alias, another every other word (category terms, brand and category
`exclude` / `require` words, legal and trending signal words); a post is one pass over
the first, and only a post that names a brand makes a pass over the second. Then the rule
per word found:

* Chinese words of at most `short_chars` (default 2) characters, e.g. 快送 or 优品, must be
  a whole token after segmentation (rjieba, or jieba as a fallback, with every watch word
  added to the dictionary), so that 快送 does not match in 快送到了 (快/送到/了) and
  优品 not in 优品质 (优/品质). The segmenter runs only when such a word occurs as a substring.
* Longer Chinese words (星云支付, 数据泄露) are specific enough to match as substrings.
* Words with Latin letters or digits (KuaiSong, 315) match case-insensitively and only on
  ASCII word boundaries, so 315 does not match in 12315.

Query words: a brand whose `exclude` word is found, or whose `require` list is non-empty and
none of it is found, is dropped from the post; a category whose `exclude` word is found is
dropped (the post may still count for other categories, or `general`). Chinese query words
match as substrings whatever their length (水果 excludes 水果店 too: a user who names a word
to exclude wants every post that holds it out); Latin ones keep the word-boundary rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from scoring.folding import fold, fold_all
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


_ASCII_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")
_SUBSTRING, _TOKEN, _ASCII = 0, 1, 2
# what a found word does, besides naming a brand
_CATEGORY, _LEGAL, _TRENDING, _BRAND_EXCLUDE, _BRAND_REQUIRE, _CATEGORY_EXCLUDE = range(6)


def word_mode(word: str, short_chars: int) -> int:
    """How a folded watch word must be found (see the module docstring)."""
    if not _ASCII_ALNUM.isdisjoint(word):
        return _ASCII
    return _TOKEN if len(word) <= short_chars else _SUBSTRING


class _WordTable:
    """Folded words in one automaton; each word id has a mode, ASCII boundary needs, and
    the roles it plays (a word may be an alias of one brand and a term of a category)."""

    def __init__(self, short_chars: int):
        self.short_chars = short_chars
        self.ids: dict[str, int] = {}
        self.texts: list[str] = []
        self.modes: list[int] = []
        self.bounds: list[tuple[bool, bool]] = []  # (check head, check tail) for ASCII words
        self.roles: list[list[tuple[int, int]]] = []
        import ahocorasick  # here, not at import: the job's window scorer imports this module

        self.automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)

    def add(self, word: str, role: tuple[int, int]) -> None:
        text = fold(word)
        if not text:
            return
        i = self.ids.get(text)
        if i is None:
            i = self.ids[text] = len(self.texts)
            self.texts.append(text)
            mode = word_mode(text, self.short_chars)
            self.modes.append(mode)
            self.bounds.append((mode == _ASCII and text[0] in _ASCII_ALNUM,
                                mode == _ASCII and text[-1] in _ASCII_ALNUM))
            self.roles.append([])
            self.automaton.add_word(text, i)
        if role not in self.roles[i]:
            self.roles[i].append(role)

    def finish(self) -> None:
        self.roles_t = [tuple(r) for r in self.roles]
        if self.texts:
            self.automaton.make_automaton()

    def scan(self, text: str) -> tuple[set[int], set[int]]:
        """(word ids found, word ids that are found if they are whole tokens)."""
        found: set[int] = set()
        maybe: set[int] = set()
        if not self.texts:
            return found, maybe
        modes, bounds, texts = self.modes, self.bounds, self.texts
        for end, i in self.automaton.iter(text):
            if i in found:
                continue
            mode = modes[i]
            if mode == _SUBSTRING:
                found.add(i)
            elif mode == _TOKEN:
                maybe.add(i)
            else:
                head, tail = bounds[i]
                start = end - len(texts[i]) + 1
                if head and start > 0 and text[start - 1] in _ASCII_ALNUM:
                    continue
                if tail and end + 1 < len(text) and text[end + 1] in _ASCII_ALNUM:
                    continue
                found.add(i)
        return found, maybe


class Matcher:
    """Built once from the watchlist; `match` / `match_many` are the hot path."""

    def __init__(self, watchlist: Watchlist, short_chars: int = 2):
        self.watchlist = watchlist
        legal = tuple(dict.fromkeys(LEGAL_WORDS + watchlist.signals.get("legal", ())))
        trending = tuple(dict.fromkeys(TRENDING_WORDS + watchlist.signals.get("trending", ())))
        self._brand_names = tuple(b.name for b in watchlist.brands)
        self._category_names = tuple(c.name for c in watchlist.categories)
        self._requires = frozenset(i for i, b in enumerate(watchlist.brands) if b.require)
        self._brands = _WordTable(short_chars)
        for i, brand in enumerate(watchlist.brands):
            for word in brand.words:
                self._brands.add(word, (0, i))
        self._others = _WordTable(short_chars)
        for i, cat in enumerate(watchlist.categories):
            for word in cat.terms:
                self._others.add(word, (_CATEGORY, i))
        for i, cat in enumerate(watchlist.categories):
            for word in cat.exclude:
                self._others.add(word, (_CATEGORY_EXCLUDE, i))
        for i, brand in enumerate(watchlist.brands):
            for word in brand.exclude:
                self._others.add(word, (_BRAND_EXCLUDE, i))
            for word in brand.require:
                self._others.add(word, (_BRAND_REQUIRE, i))
        for word in legal:
            self._others.add(word, (_LEGAL, 0))
        for word in trending:
            self._others.add(word, (_TRENDING, 0))
        self._brands.finish()
        self._others.finish()
        self.segmenter = Segmenter(dict.fromkeys(self._brands.texts + self._others.texts))

    @property
    def backend(self) -> str:
        return self.segmenter.backend

    @property
    def words(self) -> int:
        """How many distinct folded watch words the automata hold."""
        return len(self._brands.texts) + len(self._others.texts)

    def match(self, text: str, title: str | None = None) -> MatchResult:
        return self.match_folded(fold(f"{title}\n{text}" if title else text))

    def match_many(self, texts: Sequence[str], titles: Sequence[str | None] | None = None) -> list[MatchResult]:
        """Batch form for the job's vectorised UDF; same result as `match` per text."""
        if titles is None:
            joined = list(texts)
        else:
            joined = [f"{h}\n{t}" if h else t for t, h in zip(texts, titles, strict=True)]
        return [self.match_folded(t) for t in fold_all(joined)]

    def match_folded(self, low: str) -> MatchResult:
        """Match a text already folded with scoring.folding.fold."""
        found, maybe = self._brands.scan(low)
        if not found and not maybe:  # the firehose fast path: no watched brand named at all
            return MatchResult()
        tokens: set[str] | None = None
        if maybe:
            tokens = set(self.segmenter.cut(low))
            texts = self._brands.texts
            found.update(i for i in maybe if texts[i] in tokens)
            if not found:
                return MatchResult()
        roles = self._brands.roles_t
        brands = {b for i in found for _, b in roles[i]}
        others, maybe = self._others.scan(low)
        if maybe:
            if tokens is None:
                tokens = set(self.segmenter.cut(low))
            texts = self._others.texts
            others.update(i for i in maybe if texts[i] in tokens)
        cats: set[int] = set()
        dropped_cats: set[int] = set()
        required: set[int] = set()
        legal = trending = False
        roles = self._others.roles_t
        # short words seen only as substrings: they count as query words, not as terms
        for i in maybe - others:
            for kind, owner in roles[i]:
                if kind == _BRAND_EXCLUDE:
                    brands.discard(owner)
                elif kind == _BRAND_REQUIRE:
                    required.add(owner)
                elif kind == _CATEGORY_EXCLUDE:
                    dropped_cats.add(owner)
        for i in others:
            for kind, owner in roles[i]:
                if kind == _CATEGORY:
                    cats.add(owner)
                elif kind == _LEGAL:
                    legal = True
                elif kind == _TRENDING:
                    trending = True
                elif kind == _BRAND_EXCLUDE:
                    brands.discard(owner)
                elif kind == _BRAND_REQUIRE:
                    required.add(owner)
                else:
                    dropped_cats.add(owner)
        if self._requires:
            brands.difference_update([b for b in brands if b in self._requires and b not in required])
        if not brands:
            return MatchResult()
        bnames, cnames = self._brand_names, self._category_names
        brand_list = [bnames[b] for b in sorted(brands)]
        cat_list = [cnames[c] for c in sorted(cats - dropped_cats)] or [GENERAL]
        return MatchResult(pairs=tuple((b, c) for b in brand_list for c in cat_list), legal=legal, trending=trending)
