"""Folding for matching and sentiment: traditional -> simplified, full-width letters and
digits -> ASCII, lower case; fast paths agree with the plain definition."""
from __future__ import annotations

import random

import numpy as np
import pytest

from scoring.folding import fold, fold_all, fold_table, t2s_characters
from scoring.matching import Matcher
from scoring.watchlist import parse_watchlist


@pytest.mark.parametrize("text, folded", [
    ("數據洩露", "数据泄露"),
    ("飛鳥出行", "飞鸟出行"),
    ("ＫｕａｉＳｏｎｇ３１５", "kuaisong315"),
    ("快送APP閃退了！", "快送app闪退了！"),  # full-width punctuation is left alone
    ("頭髮乾淨，後來", "头发干净，后来"),
    ("😡[怒] 普通文本", "😡[怒] 普通文本"),
    ("", ""),
])
def test_fold(text, folded):
    assert fold(text) == folded


def test_folding_keeps_every_substring():
    """Per character, so a word found in a text is found in their folded forms too (a
    phrase-level conversion would turn the simplified 打坏 into 打坯 and lose 坏)."""
    assert "坏" in fold("打坏了") and fold("乾隆") == "干隆"
    assert all(len(v) == 1 for v in fold_table().values())
    assert len(t2s_characters()) > 4000


def test_fold_all_equals_fold():
    rng = random.Random(5)
    alphabet = "快送飛鳥數據洩露ＡＢｃ１２abcXYZ，。！ \n😡[怒]頭髮后後ΣΑΣİ\x00"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))) for _ in range(300)]
    assert fold_all(texts) == [fold(t) for t in texts]
    assert fold_all(texts[:3]) == [fold(t) for t in texts[:3]]
    assert fold_all([]) == []


def test_traditional_and_full_width_posts_match():
    wl = parse_watchlist({
        "brands": [{"name": "飞鸟出行", "aliases": ["FeiniaoGo"]}, {"name": "快送", "aliases": ["快送APP"]}],
        "categories": [{"name": "privacy", "severity": 0.9, "terms": ["数据泄露"]},
                       {"name": "outage", "severity": 0.5, "terms": ["闪退"]}]})
    m = Matcher(wl)
    assert m.match("飛鳥出行數據洩露，太可怕").pairs == (("飞鸟出行", "privacy"),)
    assert m.match("ＦＥＩＮＩＡＯＧＯ又出事").pairs == (("飞鸟出行", "general"),)
    assert m.match("快送ＡＰＰ閃退").pairs == (("快送", "outage"),)
    assert m.match("ｆｅｉｎｉａｏｇｏｓ").pairs == ()  # word boundaries hold after folding
    # the watchlist may be written in traditional too
    wl2 = parse_watchlist({"brands": [{"name": "飛鳥出行"}]})
    assert Matcher(wl2).match("飞鸟出行崩了").pairs == (("飛鳥出行", "general"),)


def test_sentiment_reads_traditional_like_simplified():
    """The sentiment features fold traditional characters with the matcher's table: the
    same posts written in Taiwan's traditional script score the same."""
    import opencc

    from scoring.sentiment import load_model
    from yuqing import synth_watchlist

    texts = [t for t, _ in synth_watchlist.texts(synth_watchlist.watchlist_data(50, seed=1), 400, seed=2)]
    texts += ["余额被乱扣费，客服失联，气死我了", "数据泄露了，这家公司必须给个说法！",
              "回复太慢，投诉无门[怒]", "请问这个怎么退款"]
    to_trad = opencc.OpenCC("s2tw")
    trad = [to_trad.convert(t) for t in texts]
    assert sum(1 for a, b in zip(texts, trad) if a != b) > 200
    model = load_model()
    simplified, traditional = model.predict_proba(texts), model.predict_proba(trad)
    assert np.abs(simplified - traditional).max() < 1e-9
