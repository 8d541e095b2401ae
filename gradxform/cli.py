"""Command line: ``python -m gradxform train ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import gradxform

OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam", "adamw")


def _optimizers() -> dict[str, object]:
    return {name: getattr(gradxform, name) for name in OPTIMIZERS}


def _train(args: argparse.Namespace) -> int:
    from gradxform import _digits

    factories = _optimizers()
    if args.optimizer not in factories:
        print(f"unknown optimizer {args.optimizer!r}; choose one of: "
              f"{', '.join(sorted(factories))}", file=sys.stderr)
        return 2
    factory = factories[args.optimizer]
    tx = factory(args.learning_rate)  # type: ignore[operator]
    data = _digits.load_digits()
    print(f"digits: {len(data.x_train)} train / {len(data.x_test)} test images; "
          f"{args.optimizer}(learning_rate={args.learning_rate}), {args.epochs} epochs")
    result = _digits.train(tx, data, epochs=args.epochs)
    print(f"final train loss {result.final_loss:.4f}")
    print(f"test accuracy {result.test_accuracy:.4f}  ({result.seconds:.1f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gradxform",
                                     description="gradxform demos")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train an MLP on the scikit-learn digits data")
    train.add_argument("--optimizer", default="adamw")
    train.add_argument("--learning-rate", type=float, default=3e-3)
    train.add_argument("--epochs", type=int, default=30)
    train.set_defaults(func=_train)
    args = parser.parse_args(argv)
    return int(args.func(args))
