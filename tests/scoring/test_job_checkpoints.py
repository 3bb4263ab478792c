"""The live job's checkpoint settings reach Flink: a slow or failed checkpoint at watchlist
scale must not restart the job (Flink's default tolerates no failed checkpoint)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scoring.job import JobConfig, checkpoint_options
from yuqing.pipeline import child_env

ROOT = Path(__file__).resolve().parents[2]

# Built in a child process: building the environment starts Flink's gateway JVM and sets
# process-wide variables (temp dir, worker mode) that must not leak into other tests.
PROBE = """
import json, sys
from pathlib import Path
from core.config import Settings
from scoring.job import JobConfig, create_environments
cfg = JobConfig(watchlist_path="unused.yaml", **json.loads(sys.argv[2]))
env, _ = create_environments(Settings(state_dir=Path(sys.argv[1])), cfg, Path(sys.argv[1]) / "chk")
c = env.get_checkpoint_config()
print(json.dumps({"interval_ms": c.get_checkpoint_interval(), "timeout_ms": c.get_checkpoint_timeout(),
                  "min_pause_ms": c.get_min_pause_between_checkpoints(),
                  "tolerable": c.get_tolerable_checkpoint_failure_number()}))
"""


def test_defaults_tolerate_failed_checkpoints_with_a_timeout_and_a_pause():
    cfg = JobConfig(watchlist_path="unused.yaml")
    assert cfg.checkpoint_interval_s == 30
    assert checkpoint_options(cfg) == {
        "execution.checkpointing.timeout": "600 s",
        "execution.checkpointing.min-pause": "10 s",
        "execution.checkpointing.tolerable-failed-checkpoints": "5",
    }


@pytest.mark.parametrize("field, value", [("checkpoint_timeout_s", 0), ("checkpoint_min_pause_s", -1),
                                          ("tolerable_failed_checkpoints", -2)])
def test_impossible_checkpoint_settings_fail_with_one_line(field, value):
    with pytest.raises(ValueError, match="checkpoint_timeout_s must be positive") as info:
        JobConfig(watchlist_path="unused.yaml", **{field: value}).check()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("overrides, expected", [
    ({}, {"interval_ms": 30_000, "timeout_ms": 600_000, "min_pause_ms": 10_000, "tolerable": 5}),
    ({"checkpoint_interval_s": 5, "checkpoint_timeout_s": 120, "checkpoint_min_pause_s": 2,
      "tolerable_failed_checkpoints": 9},
     {"interval_ms": 5_000, "timeout_ms": 120_000, "min_pause_ms": 2_000, "tolerable": 9}),
])
def test_the_job_environment_carries_the_checkpoint_settings(tmp_path, overrides, expected):
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path), json.dumps(overrides)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env=child_env())  # not the variables of a Flink job an earlier test ran in-process
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == expected
