"""Model: training, prediction, save/load round trip, version checks, snownlp guard."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from scoring.sentiment import default as default_mod
from scoring.sentiment import loading as loading_mod
from scoring.sentiment.model import (
    FORMAT_VERSION, NB_ALPHA, ModelError, SnowNLPModel, fit_model, nb_ratios, read_labeled_tsv, read_model,
    train_model,
)
from scoring.sentiment.loading import load_model
from core.config import Settings


def test_training_learns_synthetic_polarity(small_model):
    p = small_model.predict_proba(["这家店味道很好，非常满意", "快递太慢了，非常失望", ""])
    assert p[0] > 0.7 and p[1] < 0.3
    assert p[2] == 0.5  # nothing to go on: neutral, not the training prior
    assert small_model.meta["heldout"]["accuracy"] >= 0.9
    assert small_model.meta["training_rows"] == 240


def test_predict_one_matches_batch(small_model):
    texts = ["包装精美", "态度恶劣[怒]", "", "x" * 50_000]
    batch = small_model.predict_proba(texts)
    single = [small_model.predict_one(t) for t in texts]
    np.testing.assert_allclose(batch, single, rtol=1e-6)
    assert batch.dtype == np.float64 and batch.shape == (4,)


def test_large_batch_spans_chunks(small_model):
    texts = ["真好吃", "太难吃了"] * 3000  # more than one internal chunk
    p = small_model.predict_proba(texts)
    assert len(p) == 6000 and np.allclose(p[::2], p[0]) and np.allclose(p[1::2], p[1])


def test_save_load_round_trip(small_model, tmp_path):
    path = small_model.save(tmp_path / "m.npz")
    loaded = read_model(path)
    texts = ["服务热情", "要求退款", "[哈哈]"]
    np.testing.assert_allclose(loaded.predict_proba(texts), small_model.predict_proba(texts))
    meta = loaded.meta
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["training_rows"] == 240 and "created" in meta
    assert set(meta["heldout"]) >= {"accuracy", "auc", "rows"}
    assert meta["features"]["hash_bits"] == 20 and meta["lexicon"]


def _rewrite_meta(src, dst, change):
    with np.load(src) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta)
    arrays["meta"] = np.array(json.dumps(meta, ensure_ascii=False))
    np.savez(dst, **arrays)


def test_unknown_version_is_a_clear_error(small_model_path, tmp_path):
    future = tmp_path / "future.npz"
    _rewrite_meta(small_model_path, future, lambda m: m.update(format_version=99))
    with pytest.raises(ModelError, match="format version 99.*reads version 1"):
        read_model(future)


def test_not_a_model_file(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a Yuqing sentiment model"):
        read_model(junk)
    with pytest.raises(ModelError, match="does not exist"):
        read_model(tmp_path / "missing.npz")


def test_labeled_tsv_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\t好\n2\t坏\n", encoding="utf-8")
    with pytest.raises(ModelError, match="bad.tsv:2"):
        read_labeled_tsv(bad)


def test_training_needs_both_labels():
    with pytest.raises(ModelError, match="both labels"):
        train_model(["好"] * 20, [1] * 20)


def test_load_model_caches_per_path(small_model_path):
    assert load_model(str(small_model_path)) is load_model(str(small_model_path))


def test_snownlp_stays_selectable_and_guards_empty_text():
    model = load_model("snownlp")
    p = model.predict_proba(["", "   ", "这个东西非常好用，很满意"])
    assert p[0] == 0.5 and p[1] == 0.5  # SnowNLP("") itself raises ZeroDivisionError
    assert 0.0 <= p[2] <= 1.0


# ------------------------------------------------------------------ NB scaling

def test_nb_ratios_follow_the_class_counts():
    from scipy import sparse

    # column 0 only in positives, 1 only in negatives, 2 in every row; values are ignored
    # (presence counts), so the 5.0 weighs like a 1.0
    X = sparse.csr_matrix(np.array([[1, 0, 1], [5, 0, 1], [0, 1, 1], [0, 1, 1]], dtype=float))
    y = np.array([1, 1, 0, 0])
    r = nb_ratios(X, y, alpha=1.0)
    p, q = np.array([3.0, 1.0, 3.0]), np.array([1.0, 3.0, 3.0])
    np.testing.assert_allclose(r, np.log(p / p.sum()) - np.log(q / q.sum()))
    assert r[0] > 0 > r[1] and r[2] == pytest.approx(0.0)
    # sample weights count like repeated rows
    w = nb_ratios(X, y, sample_weight=np.array([2.0, 1.0, 1.0, 1.0]))
    p2 = np.array([4.0, 1.0, 4.0])
    np.testing.assert_allclose(w, np.log(p2 / p2.sum()) - np.log(q / q.sum()))


def test_nb_scaled_and_plain_lr_both_learn_and_differ(labeled_tsv):
    texts, labels = read_labeled_tsv(labeled_tsv)
    nb = fit_model(texts, labels)
    plain = fit_model(texts, labels, nb_alpha=None)
    assert nb.meta["classifier"]["kind"] == "nb_logistic_regression"
    assert nb.meta["classifier"]["nb_alpha"] == NB_ALPHA
    assert plain.meta["classifier"]["kind"] == "logistic_regression"
    probe = ["这家店味道很好，非常满意", "快递太慢了，非常失望"]
    for m in (nb, plain):
        p = m.predict_proba(probe)
        assert p[0] > 0.6 > 0.4 > p[1]
    assert not np.allclose(nb.weights, plain.weights)
    # the dense lexicon block is not NB-scaled, and the ratios are folded into the weights:
    # the saved model is still one weight per column, scored the same way as before
    n = nb.featurizer.n_hashed
    assert nb.weights.shape == plain.weights.shape == (n + 4,)


# ------------------------------------------------------------- default model upkeep

@pytest.fixture()
def fast_default_builder(monkeypatch, labeled_tsv):
    """Replace the ~14 s default build with a training run on the synthetic rows; the
    decision to rebuild (what is tested here) and the file IO stay real."""
    calls = []

    def build(out, progress=None):
        texts, labels = read_labeled_tsv(labeled_tsv)
        model = train_model(texts, labels, refit=False).model
        model.meta["default_recipe"] = default_mod.DEFAULT_RECIPE
        calls.append(out)
        model.save(out)
        return model

    monkeypatch.setattr(default_mod, "build_default", build)
    monkeypatch.setattr(loading_mod, "_CACHE", {})
    return calls


def _stored_default(tmp_path, small_model_path, change=None) -> Settings:
    settings = Settings(state_dir=tmp_path / "state")
    path = loading_mod.default_model_path(settings)
    path.parent.mkdir(parents=True)
    _rewrite_meta(small_model_path, path, change or (lambda m: None))
    return settings


def test_missing_default_is_built(tmp_path, fast_default_builder):
    settings = Settings(state_dir=tmp_path / "state")
    model = load_model(settings=settings)
    assert fast_default_builder == [loading_mod.default_model_path(settings)]
    assert model.meta["default_recipe"] == default_mod.DEFAULT_RECIPE


def test_default_of_an_older_format_version_is_rebuilt(tmp_path, small_model_path,
                                                       fast_default_builder, capsys):
    settings = _stored_default(tmp_path, small_model_path,
                               lambda m: m.update(format_version=FORMAT_VERSION - 1))
    path = loading_mod.default_model_path(settings)
    with pytest.raises(ModelError, match="format version"):
        read_model(path)  # what an old default file does on its own
    model = load_model(settings=settings)
    assert fast_default_builder == [path]
    assert read_model(path).meta["format_version"] == FORMAT_VERSION
    assert model.predict_one("非常满意") > 0.5
    assert "building the default model" in capsys.readouterr().err


def test_default_of_an_older_recipe_is_rebuilt_current_one_kept(tmp_path, small_model_path,
                                                               fast_default_builder):
    # small_model was trained by train_model directly: no recipe, as old defaults were
    settings = _stored_default(tmp_path, small_model_path)
    load_model(settings=settings)
    assert len(fast_default_builder) == 1
    loading_mod._CACHE.clear()
    again = load_model(settings=settings)  # now current: read, not rebuilt
    assert len(fast_default_builder) == 1
    assert again.meta["default_recipe"] == default_mod.DEFAULT_RECIPE


def test_default_from_a_newer_yuqing_is_an_error_not_overwritten(tmp_path, small_model_path,
                                                                fast_default_builder):
    settings = _stored_default(tmp_path, small_model_path,
                               lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ModelError, match="reads version"):
        load_model(settings=settings)
    assert fast_default_builder == []
