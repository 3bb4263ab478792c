"""The matcher as it was before the Aho-Corasick rewrite (one `in` test per word per post),
kept only as the reference for the parity tests.

Two additions, both optional, so that the rewrite's new features can be checked against a
plainly correct version too: `folded=True` folds the text and every word with
scoring.folding.fold (instead of `.lower()`), and the brand/category query words are
applied by the same per-word test as everything else.
"""
from __future__ import annotations

import re

from scoring.folding import fold
from scoring.matching import LEGAL_WORDS, TRENDING_WORDS, MatchResult, Segmenter
from scoring.watchlist import GENERAL, Watchlist

_ASCII_ALNUM = re.compile(r"[0-9a-z]")


class _Word:
    def __init__(self, text: str, short_chars: int, query: bool = False):
        self.text = text
        self.regex = None
        if _ASCII_ALNUM.search(self.text):
            self.mode = "ascii"
            head = r"(?<![0-9a-z])" if _ASCII_ALNUM.match(self.text[0]) else ""
            tail = r"(?![0-9a-z])" if _ASCII_ALNUM.match(self.text[-1]) else ""
            self.regex = re.compile(head + re.escape(self.text) + tail)
        elif len(self.text) <= short_chars and not query:  # Chinese query words: substrings
            self.mode = "token"
        else:
            self.mode = "substring"

    def found(self, text: str, tokens) -> bool:
        if self.text not in text:
            return False
        if self.mode == "substring":
            return True
        if self.mode == "ascii":
            return self.regex.search(text) is not None
        return self.text in tokens()


class LegacyMatcher:
    def __init__(self, watchlist: Watchlist, short_chars: int = 2, folded: bool = False):
        self.norm = fold if folded else str.lower
        self.watchlist = watchlist
        w = lambda text: _Word(self.norm(text), short_chars)  # noqa: E731
        q = lambda text: _Word(self.norm(text), short_chars, query=True)  # noqa: E731
        legal = tuple(dict.fromkeys(LEGAL_WORDS + watchlist.signals.get("legal", ())))
        trending = tuple(dict.fromkeys(TRENDING_WORDS + watchlist.signals.get("trending", ())))
        self.brand_words = [(w(x), b.name) for b in watchlist.brands for x in b.words]
        self.other_words = [(w(t), ("cat", c.name)) for c in watchlist.categories for t in c.terms]
        self.other_words += [(w(x), ("legal", "")) for x in legal]
        self.other_words += [(w(x), ("trending", "")) for x in trending]
        self.brand_query = {b.name: ([q(x) for x in b.exclude], [q(x) for x in b.require]) for b in watchlist.brands}
        self.category_exclude = {c.name: [q(x) for x in c.exclude] for c in watchlist.categories}
        words = [x.text for x, _ in self.brand_words + self.other_words]
        if folded:  # the rewrite adds the query words to the dictionary too, in this order
            words = list(dict.fromkeys(x.text for x, _ in self.brand_words))
            words += [x.text for c in watchlist.categories for x in [w(t) for t in c.terms]]
            words += [x.text for c in watchlist.categories for x in self.category_exclude[c.name]]
            for b in watchlist.brands:
                words += [x.text for x in self.brand_query[b.name][0] + self.brand_query[b.name][1]]
            words += [w(x).text for x in legal + trending]
        self.segmenter = Segmenter(dict.fromkeys(words))
        self.brand_order = {b.name: i for i, b in enumerate(watchlist.brands)}
        self.category_order = {c.name: i for i, c in enumerate(watchlist.categories)}

    def match(self, text: str, title: str | None = None) -> MatchResult:
        low = self.norm(f"{title}\n{text}" if title else text)
        cache: list[set[str]] = []

        def tokens() -> set[str]:
            if not cache:
                cache.append(set(self.segmenter.cut(low)))
            return cache[0]
        brands = {name for word, name in self.brand_words if word.found(low, tokens)}
        for name in list(brands):
            exclude, require = self.brand_query[name]
            if any(x.found(low, tokens) for x in exclude):
                brands.discard(name)
            elif require and not any(x.found(low, tokens) for x in require):
                brands.discard(name)
        if not brands:
            return MatchResult()
        cats: set[str] = set()
        legal = trending = False
        for word, (kind, name) in self.other_words:
            if not word.found(low, tokens):
                continue
            if kind == "cat":
                if not any(x.found(low, tokens) for x in self.category_exclude[name]):
                    cats.add(name)
            elif kind == "legal":
                legal = True
            else:
                trending = True
        brand_list = sorted(brands, key=self.brand_order.__getitem__)
        cat_list = sorted(cats, key=self.category_order.__getitem__) or [GENERAL]
        return MatchResult(pairs=tuple((b, c) for b in brand_list for c in cat_list), legal=legal, trending=trending)
