"""`yuqing run` (what `make run` calls): the live demo climbs to high within minutes."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.flink
def test_run_shows_the_sample_crisis_reaching_high_then_stops_everything(stack_settings):
    run = subprocess.run(
        [sys.executable, "-m", "yuqing", "run", "--plain", "--hours", "2", "--speedup", "60", "--duration", "170"],
        capture_output=True, timeout=600, cwd=REPO)
    out, err = run.stdout.decode(), run.stderr.decode()
    assert run.returncode == 0, err[-3000:]
    # the crisis brand of the sample (first brand, privacy) is paged as high
    assert re.search(r"ALERT raised\s+high\s+快送/privacy", out), out[-3000:]
    assert not re.search(r"ALERT raised\s+high\s+(青柠云盘|优品手机|星云支付)/", out), out[-3000:]
    first_high = re.search(r"first HIGH (\d+) s after start", err)
    assert first_high and int(first_high.group(1)) < 170
    pages = int(re.search(r"(\d+) on-call pages", err).group(1))
    assert pages >= 1
    # nothing it started is left running
    run_dir = sorted((stack_settings.state_dir / "runs").iterdir())[-1]
    left = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True).stdout.split()
    assert left == []
