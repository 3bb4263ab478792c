"""The Aho-Corasick matcher gives the same answers as the matcher it replaced.

Reference: tests/scoring/legacy_matcher.py, the old one-`in`-test-per-word matcher, run
(a) as it was, on raw text, and (b) with the same folding and query words, so that both
the rewrite and its new features are checked against a plainly correct version."""
from __future__ import annotations

import pytest

from scoring.folding import fold
from scoring.matching import Matcher
from scoring.watchlist import parse_watchlist
from yuqing import synth_watchlist
from core.post import post_from_dict
from yuqing.synth import generate, sample_scenarios

from .legacy_matcher import LegacyMatcher


def _without_query_words(data):
    return {**data, "brands": [{k: v for k, v in b.items() if k not in ("exclude", "require")}
                               for b in data["brands"]],
            "categories": [{k: v for k, v in c.items() if k != "exclude"} for c in data.get("categories", [])]}


def _diff(new, old, pairs):
    return [(t, h, new.match(t, h), old.match(t, h)) for t, h in pairs if new.match(t, h) != old.match(t, h)]


@pytest.fixture(scope="module")
def sample_texts(watchlist):
    posts = [post_from_dict(d) for d in generate(sample_scenarios(watchlist, hours=2), watchlist, seed=7)]
    return [(p.text, p.title) for p in posts]


def test_sample_parity_with_the_old_matcher(watchlist, sample_texts):
    """The bundled sample (yuqing.synth over data/watchlist.sample.yaml): identical to the
    old matcher on raw text, and to the folded reference with the sample's query words."""
    import yaml

    from .conftest import SAMPLE_WATCHLIST

    data = yaml.safe_load(SAMPLE_WATCHLIST.read_text(encoding="utf-8"))
    plain = parse_watchlist(_without_query_words(data))
    assert len(sample_texts) > 1000
    new_plain = Matcher(plain)
    assert sum(1 for t, h in sample_texts if new_plain.match(t, h)) > 500
    assert _diff(new_plain, LegacyMatcher(plain), sample_texts) == []
    assert _diff(Matcher(watchlist), LegacyMatcher(watchlist, folded=True), sample_texts) == []


@pytest.fixture(scope="module")
def big():
    data = synth_watchlist.watchlist_data(10_000, seed=3)
    wl = parse_watchlist(data)
    pairs = synth_watchlist.texts(data, 2_500, seed=4)
    return data, wl, pairs


def test_generated_10000_brand_parity(big):
    data, wl, pairs = big
    new = Matcher(wl)
    results = new.match_many([t for t, _ in pairs], [h for _, h in pairs])
    # the texts exercise every path: matches, no matches, several brands, categories, flags
    assert sum(1 for r in results if r) > 500 and sum(1 for r in results if not r) > 500
    assert sum(1 for r in results if len(r.brands) > 1) > 20
    assert sum(1 for r in results if r.legal) > 20 and sum(1 for r in results if r.trending) > 20
    old = LegacyMatcher(wl, folded=True)
    mismatches = [(t, h, r, old.match(t, h)) for (t, h), r in zip(pairs, results) if r != old.match(t, h)]
    assert mismatches == []


def test_generated_parity_with_the_unfolded_old_matcher(big):
    """Without query words and on texts whose folding is plain lower case, the rewrite is
    the old matcher exactly; the texts it differs on are the traditional/full-width ones."""
    data, _, pairs = big
    plain = parse_watchlist(_without_query_words(data))
    new, old = Matcher(plain), LegacyMatcher(plain)
    same_form = [(t, h) for t, h in pairs if fold(f"{h}\n{t}" if h else t) == (f"{h}\n{t}" if h else t).lower()]
    assert 1500 < len(same_form) < len(pairs)
    assert _diff(new, old, same_form[:1500]) == []
    other = [(t, h) for t, h in pairs if (t, h) not in set(same_form)]
    assert sum(1 for t, h in other if new.match(t, h)) > sum(1 for t, h in other if old.match(t, h))
