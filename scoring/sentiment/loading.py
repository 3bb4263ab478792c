"""Loading a sentiment model once per process: the default one (built offline into the
state folder when missing or stale), snownlp's, or a model file.

Why apart from model.py: loading the default needs the recipe that builds it (default.py),
and that recipe needs the model; here both are used, and neither imports the other back.
"""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import scoring.sentiment.default as default
from scoring.sentiment.model import (DEFAULT_FILENAME, FORMAT_VERSION, SNOWNLP, ModelVersionError, SentimentModel,
                                     SnowNLPModel, read_model)

_CACHE: dict[str, object] = {}
_LOCK = threading.Lock()


def default_model_path(settings=None) -> Path:
    if settings is None:
        from core.config import load_settings

        settings = load_settings()
    return Path(settings.state_dir) / "models" / DEFAULT_FILENAME


def load_model(path_or_name: str | Path | None = None, *, settings=None):
    """The model to score with, loaded once per process and cached.

    None or "default": the default model in the state dir, built there (seconds, offline)
    if missing or stale (see `_load_default`). "snownlp": snownlp's classifier. Anything
    else: a model file path."""
    key = str(path_or_name or "default")
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        if key == SNOWNLP:
            model = SnowNLPModel()
        elif key == "default":
            model = _load_default(default_model_path(settings))
        else:
            model = read_model(path_or_name)
        _CACHE[key] = model
        return model


def _load_default(path: Path) -> SentimentModel:
    """Read the stored default model, rebuilding it first when it is missing, of an older
    file format, or built by an older recipe (`default.DEFAULT_RECIPE`).

    Why rebuild rather than fail: the default is derived only from files already on disk,
    so a machine upgraded with an old default in its state dir should keep scoring, with
    the current recipe. A file from a *newer* Yuqing still fails with the clear error."""
    reason = "missing"
    if path.is_file():
        try:
            model = read_model(path)
        except ModelVersionError as exc:
            if isinstance(exc.version, int) and exc.version > FORMAT_VERSION:
                raise
            reason = f"format version {exc.version!r}, this Yuqing writes {FORMAT_VERSION}"
        else:
            recipe = model.meta.get("default_recipe", 1)  # files from before recipes: 1
            if not (isinstance(recipe, int) and recipe < default.DEFAULT_RECIPE):
                return model  # current, or from a newer Yuqing: keep it
            reason = f"recipe {recipe!r}, current is {default.DEFAULT_RECIPE}"
    print(f"yuqing sentiment: building the default model at {path} ({reason}; one-off)",
          file=sys.stderr)
    default.build_default(path)
    return read_model(path)
