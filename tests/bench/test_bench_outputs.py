"""bench.throughput.time_outputs: the first-output -> last-change clock of the bounded bench jobs (pure logic)."""
from __future__ import annotations

import pytest

from bench.throughput import time_outputs


class _Watch:
    def __init__(self, readings):
        self.readings = list(readings)

    def ends(self):
        return self.readings.pop(0)


class _Cpu:
    def __init__(self):
        self.samples, self.marks = 0, []

    def sample(self):
        self.samples += 1

    def mark(self, name):
        self.marks.append((name, self.samples))


def _alive_for(polls: int):
    left = [polls]

    def alive():
        left[0] -= 1
        return left[0] > 0
    return alive


def _never_late(elapsed_s, started):
    pass


def test_outputs_clock_runs_from_first_output_to_their_last_change():
    readings = [{"s": 0, "d": 0}, {"s": 4, "d": 1}, {"s": 9, "d": 1}, {"s": 9, "d": 1}]
    cpu = _Cpu()
    span = time_outputs(_Watch(readings), cpu, _alive_for(4), ["s", "d"], _never_late, poll_s=0)
    assert (span.first_out, span.last_out, span.last_done) == (5, 10, 10)
    assert span.t_first is not None and span.t_last is not None and span.t_first < span.t_last
    assert cpu.marks == [("first", 2), ("last", 2), ("last", 3)]  # not moved by the unchanged 4th reading
    assert span.ends == {"s": 9, "d": 1}


def test_a_done_topic_moves_the_last_mark_instead_of_the_outputs():
    readings = [{"s": 3, "a": 0}, {"s": 8, "a": 2}, {"s": 12, "a": 2}]
    cpu = _Cpu()
    span = time_outputs(_Watch(readings), cpu, _alive_for(3), ["s"], _never_late, done_topic="a", poll_s=0)
    assert (span.first_out, span.last_out, span.last_done) == (3, 12, 2)
    assert cpu.marks == [("first", 1), ("last", 2)]


def test_the_check_sees_whether_output_has_started_and_can_stop_the_wait():
    seen = []

    def check(elapsed_s, started):
        seen.append(started)
        if len(seen) == 3:
            raise RuntimeError("too long")

    readings = [{"s": 0}, {"s": 2}, {"s": 2}]
    with pytest.raises(RuntimeError, match="too long"):
        time_outputs(_Watch(readings), _Cpu(), lambda: True, ["s"], check, poll_s=0)
    assert seen == [False, False, True]
