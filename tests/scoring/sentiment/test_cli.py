"""The `yuqing sentiment` command contract (CONTRACTS §4), through the real console script."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

YUQING = Path(sys.executable).with_name("yuqing")


def run(args, stdin="", env=None, timeout=120):
    return subprocess.run([str(YUQING), *args], input=stdin.encode("utf-8"), capture_output=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module", autouse=True)
def console_script():
    if not YUQING.exists():
        pytest.fail(f"{YUQING} missing: pip install -e /work/main --no-deps")


def test_one_line_per_text_with_probability_first(small_model_path):
    lines = ["这家店味道很好，非常满意", "", "快递太慢了，非常失望", "   ", "飛機 http://t.cn/x 好"]
    res = run(["sentiment", "--model", str(small_model_path)], "\n".join(lines) + "\n")
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode().splitlines()
    assert len(out) == len(lines)
    probs = [float(line.split("\t")[0]) for line in out]
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert probs[0] > 0.5 > probs[2]
    assert out[0].split("\t")[1] == "pos" and out[2].split("\t")[1] == "neg"


def test_last_line_without_newline_and_crlf(small_model_path):
    res = run(["sentiment", "--model", str(small_model_path)], "包装精美\r\n态度恶劣")
    assert res.returncode == 0 and len(res.stdout.decode().splitlines()) == 2


def test_train_prints_metrics_and_saves_model(labeled_tsv, tmp_path):
    out = tmp_path / "mine.npz"
    res = run(["sentiment", "train", "--data", str(labeled_tsv), "--out", str(out)])
    assert res.returncode == 0, res.stderr.decode()
    fields = dict(line.split("\t") for line in res.stdout.decode().splitlines())
    assert float(fields["accuracy"]) >= 0.9 and float(fields["auc"]) >= 0.9
    assert out.is_file() and "held-out" in res.stderr.decode()
    res = run(["sentiment", "--model", str(out)], "非常满意\n")
    assert res.returncode == 0 and float(res.stdout.decode().split("\t")[0]) > 0.5


def test_bad_inputs_are_one_line_errors(tmp_path):
    res = run(["sentiment", "--model", str(tmp_path / "nope.npz")], "好\n")
    assert res.returncode == 1
    assert res.stderr.decode().strip().count("\n") == 0 and "does not exist" in res.stderr.decode()
    bad = tmp_path / "bad.tsv"
    bad.write_text("positive\t好\n", encoding="utf-8")
    res = run(["sentiment", "train", "--data", str(bad)])
    assert res.returncode == 1 and "bad.tsv:1" in res.stderr.decode()


def test_default_model_is_built_offline_and_works(tmp_path):
    # fresh state dir: the first call builds the default model there (no downloads)
    env = {"YUQING_STATE_DIR": str(tmp_path / "state")}
    texts = ["这家外卖很好吃", "这家外卖不好吃", "今天又加班[怒]", "周末去爬山[哈哈]",
             "用户数据泄露了，太垃圾，要投诉维权", "客服很耐心，问题解决了，点赞"]
    res = run(["sentiment"], "\n".join(texts) + "\n", env=env, timeout=300)
    assert res.returncode == 0, res.stderr.decode()
    assert (tmp_path / "state" / "models" / "sentiment-default.npz").is_file()
    p = [float(line.split("\t")[0]) for line in res.stdout.decode().splitlines()]
    assert p[0] > 0.5 > p[1], "negation should flip"
    assert p[3] > 0.5 > p[2], "emoticon codes carry polarity"
    assert p[4] < 0.5 < p[5]
