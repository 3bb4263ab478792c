"""The sentiment model: hashed features + logistic regression, saved as a versioned .npz.

Inference is one gather and one bincount per chunk (no sparse matrix is built), which is
what makes batch scoring fast; sklearn is imported only to train.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from scoring.sentiment.features import (
    CHUNK_TEXTS, DENSE_NAMES, N_DENSE, FeatureConfig, Featurizer, read_lexicon,
)

FORMAT = "yuqing-sentiment"
FORMAT_VERSION = 1
DEFAULT_FILENAME = "sentiment-default.npz"
SNOWNLP = "snownlp"
DEFAULT_C = 4.0
# NBSVM-style log-count-ratio scaling (smoothing alpha); None = plain logistic regression.
NB_ALPHA = 1.0


class ModelError(Exception):
    """A model file that cannot be used (missing, corrupt, other version): one-line message."""


class ModelVersionError(ModelError):
    """A model file of another format version; `version` is what the file says."""

    def __init__(self, message: str, version: object):
        super().__init__(message)
        self.version = version


@dataclass
class SentimentModel:
    """P(positive) for texts. Thread-safe for reading; load once per worker and reuse."""

    weights: np.ndarray  # float32, n_hashed + N_DENSE
    bias: float
    featurizer: Featurizer
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        return str(self.path) if self.path else "(in memory)"

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.empty(len(texts), dtype=np.float64)
        w_hashed = self.weights[: self.featurizer.n_hashed]
        w_dense = self.weights[self.featurizer.n_hashed :].astype(np.float64)
        for start in range(0, len(texts), CHUNK_TEXTS):
            chunk = texts[start : start + CHUNK_TEXTS]
            doc, col, val, dense = self.featurizer._transform(chunk)
            logit = np.bincount(doc, weights=w_hashed[col] * val, minlength=len(chunk)).astype(np.float64)
            logit += dense @ w_dense + self.bias
            logit[np.bincount(doc, minlength=len(chunk)) == 0] = 0.0  # no content: P = 0.5
            out[start : start + len(chunk)] = logit
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """P(positive) per text, float64 array; the batch path used by the scoring job."""
        z = self.decision_function(texts)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))

    def predict_one(self, text: str) -> float:
        return float(self.predict_proba([text])[0])

    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file + rename), so a reader never sees half a model."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self.meta)
        meta.update(format=FORMAT, format_version=FORMAT_VERSION,
                    features=self.featurizer.config.to_json(),
                    lexicon=[[t, w] for t, w in self.featurizer.lexicon])
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, weights=self.weights.astype(np.float32),
                                    bias=np.array([self.bias], dtype=np.float64),
                                    meta=np.array(json.dumps(meta, ensure_ascii=False)))
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.meta = meta
        self.path = path
        return path


def read_model(path: str | Path) -> SentimentModel:
    """Load a model file, checking its format and version."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            weights = data["weights"].astype(np.float32)
            bias = float(data["bias"][0])
    except ModelError:
        raise
    except Exception as exc:  # zip, key or JSON trouble: all mean "not our model file"
        raise ModelError(f"{path} is not a Yuqing sentiment model ({type(exc).__name__}: {exc})") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path} is not a Yuqing sentiment model (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelVersionError(
            f"{path} has model format version {version!r}; this Yuqing reads version "
            f"{FORMAT_VERSION}: retrain it with `yuqing sentiment train` or rebuild the default "
            f"with `yuqing sentiment build-default`", version)
    try:
        config = FeatureConfig.from_json(meta["features"])
        lexicon = [(str(t), float(w)) for t, w in meta["lexicon"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: bad feature settings in the model file: {exc}") from None
    featurizer = Featurizer(config, lexicon)
    if weights.shape != (featurizer.n_features,):
        raise ModelError(f"{path}: {weights.shape[0]} weights, expected {featurizer.n_features}")
    return SentimentModel(weights=weights, bias=bias, featurizer=featurizer, meta=meta, path=path)


# ------------------------------------------------------------------------------ training

def read_labeled_tsv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """`label<TAB>text` rows, label 1 or 0; blank lines skipped; errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"training data {path} does not exist")
    texts: list[str] = []
    labels: list[int] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            label, sep, text = line.partition("\t")
            if not sep or label.strip() not in ("0", "1"):
                raise ModelError(
                    f"{path}:{number}: expected `LABEL<TAB>TEXT` with LABEL 1 (positive) or 0 "
                    f"(negative), got {line[:40]!r}")
            texts.append(text)
            labels.append(int(label.strip()))
    return texts, np.array(labels, dtype=np.int8)


def _classifier_meta(C: float, nb_alpha: float | None) -> dict:
    meta = {"kind": "logistic_regression", "solver": "lbfgs", "C": C}
    if nb_alpha is not None:
        meta.update(kind="nb_logistic_regression", nb_alpha=nb_alpha)
    return meta


@dataclass
class TrainResult:
    model: SentimentModel
    accuracy: float
    auc: float
    train_rows: int
    heldout_rows: int
    seconds: float


def nb_ratios(X, y, sample_weight=None, alpha: float = NB_ALPHA) -> np.ndarray:
    """Per column, the smoothed log-count ratio r = log(p/|p|) - log(q/|q|) of NBSVM.

    p and q sum the (weighted) presence of each column over positive and negative rows, so
    r says how strongly a feature leans one way in the training data. Scaling the columns
    by r before the logistic regression lets the L2 penalty spend less on well-supported
    n-grams and more on rare ones: on short posts this beats plain LR (see docs)."""
    X = X.tocsr()
    presence = X.copy()
    presence.data = (presence.data != 0).astype(np.float64)
    yy = np.asarray(y) == 1
    sw = np.ones(len(yy)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    p = alpha + np.asarray(presence.T @ (sw * yy)).ravel()
    q = alpha + np.asarray(presence.T @ (sw * ~yy)).ravel()
    return np.log(p / p.sum()) - np.log(q / q.sum())


def _fit(X, y, sample_weight, C: float, max_iter: int = 150, *, nb_alpha: float | None = None,
         nb_columns: int | None = None):
    """L2 logistic regression, fitted with L-BFGS on the columns the data uses.

    Why not sklearn's LogisticRegression: on 2^20 hashed columns its solvers spend most
    of their time on untouched columns, and multi-threaded BLAS thrashes on a busy 2-core
    box; compacting the columns and pinning BLAS to one thread makes it several times faster.

    nb_alpha: scale the first `nb_columns` columns (the hashed n-grams; the dense lexicon
    block stays as it is) by their NB log-count ratios first, and fold the ratios back into
    the returned weights: the model stays one weight per column, so inference is unchanged.
    """
    from scipy import sparse
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    X = X.tocsr().astype(np.float64)
    used = np.unique(X.indices)
    Xc = X[:, used]
    scale = None
    if nb_alpha is not None:
        scale = nb_ratios(Xc, y, sample_weight, nb_alpha)
        if nb_columns is not None:
            scale[used >= nb_columns] = 1.0
        Xc = (Xc @ sparse.diags(scale)).tocsr()
    XcT = Xc.T.tocsr()
    yy = np.asarray(y, dtype=np.float64)
    sign = 2.0 * yy - 1.0
    sw = np.ones(len(yy)) if sample_weight is None else np.asarray(sample_weight, np.float64)

    def loss_grad(theta):
        w, b = theta[:-1], theta[-1]
        margin = -sign * (Xc @ w + b)
        loss = np.logaddexp(0.0, margin)
        dz = -sign * sw * np.exp(margin - loss)  # -s * sigmoid(margin) * weight
        grad = np.empty_like(theta)
        grad[:-1] = C * (XcT @ dz) + w
        grad[-1] = C * dz.sum()
        return C * float(sw @ loss) + 0.5 * float(w @ w), grad

    with threadpool_limits(1):
        result = minimize(loss_grad, np.zeros(len(used) + 1), jac=True, method="L-BFGS-B",
                          options={"maxiter": max_iter, "gtol": 1e-5})
    w = result.x[:-1] if scale is None else result.x[:-1] * scale
    weights = np.zeros(X.shape[1], dtype=np.float32)
    weights[used] = w
    return weights, float(result.x[-1])


def fit_model(texts: Sequence[str], labels: Sequence[int], *, config: FeatureConfig | None = None,
              lexicon=None, C: float = DEFAULT_C, sample_weight=None,
              nb_alpha: float | None = NB_ALPHA) -> SentimentModel:
    """Fit on all rows (no held-out split)."""
    featurizer = Featurizer(config, lexicon)
    X = featurizer.matrix(list(texts))
    y = np.asarray(labels, dtype=np.int8)
    if len(set(y.tolist())) < 2:
        raise ModelError("training data needs both labels (1 positive and 0 negative)")
    weights, bias = _fit(X, y, sample_weight, C, nb_alpha=nb_alpha, nb_columns=featurizer.n_hashed)
    return SentimentModel(weights=weights, bias=bias, featurizer=featurizer,
                          meta={"classifier": _classifier_meta(C, nb_alpha)})


def train_model(texts: Sequence[str], labels: Sequence[int], *, config: FeatureConfig | None = None,
                lexicon=None, C: float = DEFAULT_C, holdout: float = 0.1, seed: int = 0,
                sample_weight=None, eval_mask=None, source: str = "", refit: bool = True,
                progress=None, nb_alpha: float | None = NB_ALPHA) -> TrainResult:
    """Train with a seeded stratified held-out split for honest metrics, then (refit)
    train again on every row. `eval_mask` limits which rows may be held out."""
    from sklearn.metrics import roc_auc_score

    started = time.perf_counter()
    texts = list(texts)
    y = np.asarray(labels, dtype=np.int8)
    if len(texts) != len(y):
        raise ModelError("texts and labels differ in length")
    if len(texts) < 10 or len(set(y.tolist())) < 2:
        raise ModelError("training data needs at least 10 rows with both labels (1 and 0)")
    rng = np.random.default_rng(seed)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    eligible = np.ones(len(y), bool) if eval_mask is None else np.asarray(eval_mask, bool)
    test = np.zeros(len(y), dtype=bool)
    for label in (0, 1):
        idx = np.flatnonzero((y == label) & eligible)
        rng.shuffle(idx)
        test[idx[: max(1, int(round(len(idx) * holdout)))]] = True
    featurizer = Featurizer(config, lexicon)
    X = featurizer.matrix(texts)
    say = progress or (lambda msg: None)
    say(f"features ready: {X.shape[0]} rows, {X.nnz} non-zeros")
    nb = {"nb_alpha": nb_alpha, "nb_columns": featurizer.n_hashed}
    weights, bias = _fit(X[~test], y[~test], None if sw is None else sw[~test], C, **nb)
    model = SentimentModel(weights=weights, bias=bias, featurizer=featurizer)
    scores = model.decision_function([texts[i] for i in np.flatnonzero(test)])
    accuracy = float(((scores > 0).astype(np.int8) == y[test]).mean())
    auc = float(roc_auc_score(y[test], scores)) if len(set(y[test].tolist())) == 2 else float("nan")
    say(f"held-out ({int(test.sum())} rows): accuracy {accuracy:.4f}, AUC {auc:.4f}")
    if refit:
        weights, bias = _fit(X, y, sw, C, **nb)
        model = SentimentModel(weights=weights, bias=bias, featurizer=featurizer)
    seconds = time.perf_counter() - started
    model.meta = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_rows": int(len(y)),
        "positive_rows": int(y.sum()),
        "source": source,
        "classifier": _classifier_meta(C, nb_alpha),
        "heldout": {"rows": int(test.sum()), "fraction": holdout, "seed": seed,
                    "accuracy": round(accuracy, 4), "auc": round(auc, 4),
                    "refit_on_all_rows": refit},
        "dense_features": list(DENSE_NAMES),
        "train_seconds": round(seconds, 2),
    }
    return TrainResult(model, accuracy, auc, int((~test).sum()), int(test.sum()), seconds)


# ------------------------------------------------------------------------------ snownlp

class SnowNLPModel:
    """snownlp's own Bayes sentiment, kept for comparison (slow: ~300 texts/s)."""

    name = SNOWNLP
    meta = {"format": "snownlp"}

    def __init__(self):
        from snownlp import SnowNLP  # ~3 s: loads all of snownlp's models

        self._cls = SnowNLP

    def predict_one(self, text: str) -> float:
        text = (text or "").strip()
        if not text:
            return 0.5  # SnowNLP("") divides by zero; an empty text has no sentiment
        try:
            return float(self._cls(text).sentiments)
        except ZeroDivisionError:  # texts with no segmentable content
            return 0.5

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.predict_one(t) for t in texts], dtype=np.float64)
