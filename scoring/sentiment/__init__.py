"""Sentiment: P(positive) for Chinese social-media text, fast in batch.

Public API (loaded once per worker by the scoring job):

    from scoring.sentiment import load_model
    model = load_model()                 # default model; built offline on first use
    probs = model.predict_proba(texts)   # numpy float64 array, one P(positive) per text
    p = model.predict_one(text)

Imports are lazy so that importing this package (e.g. for `yuqing --help`) costs nothing.
"""
from __future__ import annotations

__all__ = ["load_model", "read_model", "default_model_path", "SentimentModel", "ModelError"]


_LOADING = ("load_model", "default_model_path")


def __getattr__(name: str):
    if name in _LOADING:
        from scoring.sentiment import loading

        return getattr(loading, name)
    if name in __all__:
        from scoring.sentiment import model

        return getattr(model, name)
    raise AttributeError(f"module 'scoring.sentiment' has no attribute {name!r}")
