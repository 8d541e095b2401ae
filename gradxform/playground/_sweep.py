"""``python -m gradxform lr-sweep``: train the digits MLP once per learning rate, all rates in
one compiled program (:func:`gradxform.lr_sweep`), and pick the best on held-out data."""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradxform as gx
from gradxform.playground._console import print_table
from gradxform.playground._digits import Split, cross_entropy, init_mlp, load_digits
from gradxform.playground._plots import _save, pyplot

GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)
BATCH = 64


def digits_sweep(factory: Any, data: Split, rates: Any, steps: int, **kwargs: Any) -> gx.LRSweep:
    """:func:`gradxform.lr_sweep` on the digits MLP: trained on four fifths of the training
    split (batches in a fixed shuffled order), scored by the cross-entropy on the last fifth
    (the test split is never seen)."""
    n_valid = len(data.x_train) // 5
    valid_x, valid_y = jnp.asarray(data.x_train[:n_valid]), jnp.asarray(data.y_train[:n_valid])
    x, y = data.x_train[n_valid:], data.y_train[n_valid:]
    order = np.random.default_rng(1).permutation(len(x))[: len(x) // BATCH * BATCH]
    idx = order.reshape(-1, BATCH)
    return gx.lr_sweep(
        lambda p, b: cross_entropy(p, b[0], b[1]),
        init_mlp(jax.random.key(0)),
        (jnp.asarray(x[idx]), jnp.asarray(y[idx])),
        factory,
        rates,
        num_steps=steps,
        eval_fn=lambda p: cross_entropy(p, valid_x, valid_y),
        **kwargs,
    )


def plot_lr_sweep(
    result: gx.LRSweep, path: str | pathlib.Path | None = None, axes: Any = None
) -> Any:
    """Two panels: the validation score (or final training loss) against the swept value,
    the best marked; and every run's training loss, coloured by its value."""
    plt = pyplot()
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    else:
        fig = axes[0].figure
    left, right = axes
    score = result.scores if result.scores is not None else result.final_losses
    label = "validation score" if result.scores is not None else "final training loss"
    finite = np.isfinite(score) & ~result.diverged
    left.plot(result.values[finite], score[finite], "o-")
    if result.diverged.any():
        top = np.max(score[finite]) if finite.any() else 1.0
        left.plot(result.values[result.diverged], np.full(result.diverged.sum(), top), "rx")
    if np.isfinite(result.best):
        left.axvline(result.best, color="green", ls="--", label=f"best {result.best:g}")
        left.legend()
    left.set(xscale="log", xlabel=result.hyperparam, ylabel=label)
    colours = plt.get_cmap("viridis")(np.linspace(0, 1, len(result.values)))
    for value, losses, colour in zip(result.values, result.losses, colours, strict=True):
        right.plot(losses, color=colour, label=f"{value:g}")
    right.set(yscale="log", xlabel="step", ylabel="training loss")
    right.legend(title=result.hyperparam, fontsize="small")
    if path is not None:
        return _save(fig, path)
    return fig


def cmd_lr_sweep(args: argparse.Namespace) -> float:
    from gradxform.playground.cli import CliError, optimizer_factories

    factories = optimizer_factories()
    if args.optimizer not in factories:
        raise CliError(
            f"unknown optimizer {args.optimizer!r}; choose one of: {', '.join(factories)}"
        )
    try:
        rates = [float(r) for r in args.rates.split(",")] if args.rates else list(GRID)
    except ValueError:
        raise CliError(f"--rates {args.rates!r} must be comma-separated numbers") from None
    data = load_digits()
    steps = args.epochs * (len(data.x_train) * 4 // 5 // BATCH)
    result = digits_sweep(factories[args.optimizer], data, rates, steps)
    assert result.scores is not None  # digits_sweep scores on the validation fifth
    path = plot_lr_sweep(result, pathlib.Path(args.out) / f"lr_sweep_{args.optimizer}.png")
    print(f"{args.optimizer} on digits: {len(rates)} rates x {steps} steps, one compiled program")
    rows = [
        [
            f"{v:g}" + (" (best)" if v == result.best else ""),
            f"{f:.4f}",
            "diverged" if d else f"{s:.4f}",
        ]
        for v, f, s, d in zip(
            result.values, result.final_losses, result.scores, result.diverged, strict=True
        )
    ]
    print_table(["learning rate", "final training loss", "validation loss"], rows)
    print(f"wrote {path}")
    return result.best
