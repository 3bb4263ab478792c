"""Shared fixtures for the risk-model tests (pure Python, no Flink)."""
from __future__ import annotations

from pathlib import Path

import pytest

from scoring.matching import Matcher
from scoring.watchlist import Watchlist, load_watchlist

SAMPLE_WATCHLIST = Path(__file__).resolve().parents[2] / "data" / "watchlist.sample.yaml"


@pytest.fixture(scope="session")
def watchlist() -> Watchlist:
    return load_watchlist(SAMPLE_WATCHLIST)


@pytest.fixture(scope="session")
def matcher(watchlist: Watchlist) -> Matcher:
    return Matcher(watchlist)


def label_sentiment(posts):
    """Test-only stand-in for the sentiment model (scoring.sentiment is built elsewhere):
    reads the generator's ground truth `synth.label` and maps it to a confident
    probability-positive, with a small deterministic spread from the post id."""
    out = []
    for p in posts:
        wobble = (sum(map(ord, p.id)) % 10) / 100.0
        out.append(0.10 + wobble if p.extra["synth"]["label"] == 0 else 0.75 + wobble)
    return out
