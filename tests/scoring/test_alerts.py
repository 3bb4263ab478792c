"""Hysteresis: rise at once, fall only below threshold - margin for N windows, no flapping."""
import json

import pytest

from scoring.alerts import AlertState, alert_id, next_level
from scoring.risk import AlertConfig

MIN = 60_000
CFG = AlertConfig(margin=0.05, cooldown_windows=3)


def run(scores, state=AlertState()):
    levels, events = [], []
    for i, score in enumerate(scores):
        state, event = next_level(state, score, (i + 1) * MIN, MIN, cfg=CFG)
        levels.append(state.level[0])  # l / m / h
        events.append(event and f"{event[0]}{state.level[0]}")  # e.g. "rh" raised to high
    return "".join(levels), [e for e in events if e], state


@pytest.mark.parametrize("name, scores, levels, events", [
    ("quiet", [0.1, 0.2, 0.3], "lll", []),
    ("rise is immediate, straight to high", [0.1, 0.7], "lh", ["rh"]),
    ("rise in two steps", [0.45, 0.5, 0.65], "mmh", ["rm", "rh"]),
    ("hovering at the high threshold does not flap", [0.61, 0.59, 0.61, 0.58, 0.6, 0.57], "hhhhhh", ["rh"]),
    ("dip below margin shorter than cooldown", [0.7, 0.5, 0.5, 0.7, 0.5, 0.5], "hhhhhh", ["rh"]),
    ("falls after 3 windows below threshold - margin", [0.7, 0.5, 0.5, 0.5, 0.5], "hhhmm", ["rh", "lm"]),
    ("falls from high straight to low", [0.7, 0.1, 0.1, 0.1], "hhhl", ["rh", "ll"]),
    ("a window inside the margin resets the count", [0.7, 0.5, 0.5, 0.56, 0.5, 0.5, 0.5], "hhhhhhm", ["rh", "lm"]),
])
def test_hysteresis_table(name, scores, levels, events):
    got_levels, got_events, _ = run(scores)
    assert (got_levels, got_events) == (levels, events), name


def test_episode_keeps_first_detection_and_state_serialises():
    _, _, state = run([0.45, 0.5, 0.7])
    assert state.first_detected_ms == 1 * MIN  # the medium rise started the episode
    assert AlertState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    state, event = next_level(state, 0.0, 10 * MIN, MIN, cfg=CFG)
    # 5 empty windows (no posts, never emitted) count as windows below the threshold
    assert event == "lowered" and state.level == "low" and state.first_detected_ms is None


def test_alert_id_is_stable_per_episode():
    assert alert_id("快送", "privacy", MIN) == alert_id("快送", "privacy", MIN)
    assert alert_id("快送", "privacy", MIN) != alert_id("快送", "privacy", 2 * MIN)
    assert alert_id("快送", "privacy", MIN) != alert_id("快送", "outage", MIN)
