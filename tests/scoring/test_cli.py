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
