"""Featurizer: normalisation, negation/degree scopes, emoticons, robustness."""
from __future__ import annotations

import numpy as np
import pytest

from scoring.sentiment.features import (
    DENSE_NAMES, FeatureConfig, Featurizer, emoticon_char, normalise_codepoints, read_lexicon,
    strip_emoticon_codes,
)

EMO_POS, EMO_NEG, WORD_POS, WORD_NEG = range(4)
assert DENSE_NAMES == ("emo_pos", "emo_neg", "word_pos", "word_neg")


@pytest.fixture(scope="module")
def fz():
    return Featurizer()


def dense(fz, text):
    return fz.transform([text])[3][0]


def columns(fz, text):
    doc, col, val, _ = fz.transform([text])
    return set(col.tolist())


def as_text(cps):
    return "".join(map(chr, cps))


def test_negation_flips_lexicon_polarity(fz):
    plain = dense(fz, "这家店的菜好吃")
    negated = dense(fz, "这家店的菜不好吃")
    assert plain[WORD_POS] > 0 and plain[WORD_NEG] == 0
    assert negated[WORD_NEG] > 0 and negated[WORD_NEG] > negated[WORD_POS]


def test_negation_scope_stops_at_punctuation(fz):
    # "不" must not reach across the comma to "满意"
    assert dense(fz, "不是说，满意")[WORD_NEG] == 0
    assert dense(fz, "不满意")[WORD_NEG] > 0


def test_negated_ngrams_get_their_own_columns(fz):
    # the unigram 好 inside a negation scope is hashed apart from the plain one
    assert not columns(fz, "好") <= columns(fz, "没好")
    assert columns(fz, "好") <= columns(fz, "很好")


def test_not_trigger_words_do_not_negate(fz):
    # 不错 is praise, 非常 is a degree word: neither negates what follows
    assert dense(fz, "不错")[WORD_POS] > 0 and dense(fz, "不错")[WORD_NEG] == 0
    assert dense(fz, "非常好吃")[WORD_NEG] == 0


def test_degree_words_intensify(fz):
    assert dense(fz, "太难吃")[WORD_NEG] > dense(fz, "难吃")[WORD_NEG]


def test_emoticon_codes_and_emoji(fz):
    d = dense(fz, "今天天气[哈哈]")
    assert d[EMO_POS] > 0 and d[EMO_NEG] == 0
    d = dense(fz, "又加班[怒][泪]")
    assert d[EMO_NEG] > 0 and d[EMO_POS] == 0
    assert dense(fz, "收到了👍")[EMO_POS] > 0
    assert dense(fz, "心碎💔")[EMO_NEG] > 0
    # a code is one char in the stream, and traditional spellings map to the same code
    cps = normalise_codepoints(["[哈哈]"], FeatureConfig())
    assert len(cps) == 1 and as_text(cps) == emoticon_char("[哈哈]")
    assert emoticon_char("[淚]") == emoticon_char("[泪]")
    assert emoticon_char("[Good]") == emoticon_char("[good]")


def test_normalisation_traditional_fullwidth_case_digits():
    cps = normalise_codepoints(["飛機很好ＧＯＯＤ 2024"], FeatureConfig())
    assert as_text(cps) == "飞机很好good 0000"


def test_urls_and_mentions_are_dropped():
    text = as_text(normalise_codepoints(["好评 http://t.cn/A6abcDE 回复@小王:谢谢"], FeatureConfig()))
    assert "t.cn" not in text and "小王" not in text and "谢谢" in text


def test_repost_chain_marks_others_words_lighter(fz):
    own = dense(fz, "太好吃了")[WORD_POS]
    in_chain = dense(fz, "转发//@某用户:太好吃了")[WORD_POS]
    assert 0 < in_chain < own


def test_repost_chain_does_not_leak_between_texts(fz):
    both = fz.transform(["分享//@甲:难吃", "难吃"])[3]
    alone = dense(fz, "难吃")
    np.testing.assert_allclose(both[1], alone)


def test_batch_equals_one_by_one(fz):
    texts = ["好吃[哈哈]", "", "不好吃//@乙:[怒]", "ok 👍", "飛機"] * 3
    doc, col, val, dn = fz.transform(texts)
    for i, text in enumerate(texts):
        d1, c1, v1, dn1 = fz.transform([text])
        mine = doc == i
        assert sorted(zip(col[mine], np.round(val[mine], 5))) == sorted(zip(c1, np.round(v1, 5)))
        np.testing.assert_allclose(dn[i], dn1[0], rtol=1e-6)


def test_robust_inputs(fz):
    huge = "差" * 100_000
    texts = ["", "   ", huge, "mixed 中文 English good", "\x1e\x1d控制符", "\ud800坏", None, 123]
    doc, col, val, dn = fz.transform(texts)
    assert dn.shape == (len(texts), 4)
    assert not (doc == 0).any()  # empty text: no features
    counts = np.bincount(doc, minlength=len(texts))
    cfg = FeatureConfig()
    assert counts[2] <= 3 * (cfg.head_chars + cfg.tail_chars + 1)  # truncated


def test_empty_batch(fz):
    doc, col, val, dn = fz.transform([])
    assert len(doc) == 0 and dn.shape == (0, 4)


def test_lexicon_file_is_valid():
    entries = read_lexicon()
    terms = [t for t, _ in entries]
    assert len(terms) == len(set(terms)), "duplicate lexicon terms"
    assert {"[怒]", "[哈哈]", "泄露", "崩了", "退款", "骗", "投诉", "维权", "垃圾", "差评"} <= set(terms)
    assert dict(entries)["[怒]"] < 0 < dict(entries)["[哈哈]"]


def test_lexicon_rejects_bad_lines(tmp_path):
    bad = tmp_path / "lex.txt"
    bad.write_text("好\tnot-a-number\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lex.txt:1"):
        read_lexicon(bad)
    with pytest.raises(ValueError, match="longer than"):
        Featurizer(lexicon=[("一二三四五六七", 1.0)])


def test_strip_emoticon_codes():
    assert strip_emoticon_codes("好[哈哈]的[怒]") == "好的"
