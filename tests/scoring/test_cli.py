"""`yuqing job run -D key=value`: Flink options for one run, checked before anything starts."""
from __future__ import annotations

import pytest

from scoring.cli import _flink_options
from core.errors import CommandError


@pytest.mark.parametrize("pairs,expected", [
    (None, {}),
    (["python.fn-execution.bundle.size=50000"], {"python.fn-execution.bundle.size": "50000"}),
    ([" a = 1 ", "b=x=y", "c="], {"a": "1", "b": "x=y", "c": ""}),
    (["a=1", "a=2"], {"a": "2"}),
])
def test_pairs_become_options(pairs, expected):
    assert _flink_options(pairs) == expected


@pytest.mark.parametrize("bad", ["no-equals-sign", "=value", "  =1"])
def test_a_pair_without_key_is_a_clear_error(bad):
    with pytest.raises(CommandError, match="expected key=value"):
        _flink_options([bad])


@pytest.mark.parametrize("name, value", [("YUQING_JOB_EARLY_FIRE_S", "soon"), ("YUQING_JOB_MAX_AHEAD_S", "-5"),
                                         ("YUQING_JOB_EARLY_FIRE_S", "7")])
def test_a_bad_job_setting_from_the_environment_is_one_line_not_a_traceback(monkeypatch, name, value):
    """`yuqing job run` with a mistyped YUQING_JOB_* value stops before anything starts."""
    pytest.importorskip("pyflink")
    from argparse import Namespace

    from core.config import Settings
    from scoring.cli import DEFAULT_WATCHLIST, _job_config

    monkeypatch.setenv(name, value)
    args = Namespace(watchlist=str(DEFAULT_WATCHLIST), risk_config=None, sentiment_model=None, baselines=None)
    with pytest.raises(CommandError) as caught:
        _job_config(Settings(), args)
    assert name in str(caught.value) or "early_fire_s" in str(caught.value)
    assert "\n" not in str(caught.value)
