"""Model: training, prediction, save/load round trip, version checks, snownlp guard."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from scoring.sentiment.model import (
    FORMAT_VERSION, ModelError, SnowNLPModel, load_model, read_labeled_tsv, read_model,
    train_model,
)


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
