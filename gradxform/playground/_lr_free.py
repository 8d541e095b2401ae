"""Optimizers that need no schedule or no learning rate, raced on the digits MLP.

``python -m gradxform lr-free`` trains, on the same data and initialisation:
Schedule-Free AdamW with no schedule against AdamW with warmup + cosine; Prodigy and
D-Adaptation AdamW at ``learning_rate=1.0`` against Adam at a tuned constant rate. The
rates that need tuning are chosen by :func:`gradxform.lr_sweep` on the training split
(validation loss on a held-out fifth of it), never by hand.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, NamedTuple

import jax

import gradxform as gx
from gradxform.playground._console import print_table, progress
from gradxform.playground._digits import Split, load_digits, train
from gradxform.playground._sweep import digits_sweep

GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
BATCH = 64


class Contender(NamedTuple):
    name: str
    learning_rate: str  # as shown in the table
    schedule: str
    tx: gx.GradientTransformation
    eval_params: Any = None  # (params, state) -> the parameters to evaluate


def tuned_rate(factory: Any, data: Split, steps: int, **kwargs: Any) -> float:
    """The rate of :data:`GRID` with the lowest validation loss after ``steps`` steps (one
    compiled sweep, :func:`gradxform.playground._sweep.digits_sweep`)."""
    return digits_sweep(factory, data, GRID, steps, **kwargs).best


def estimated_rate(state: Any) -> float | None:
    """The learning rate a learning-rate-free optimizer found: its state's ``estim_lr``."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        if any(getattr(key, "name", None) == "estim_lr" for key in path):
            return float(leaf)
    return None


def contenders(data: Split, epochs: int) -> list[Contender]:
    steps = epochs * (len(data.x_train) // BATCH)
    warmup = max(steps // 10, 1)
    adamw_peak = tuned_rate(gx.adamw, data, steps)
    adam_rate = tuned_rate(gx.adam, data, steps)
    free_rate = tuned_rate(gx.schedule_free_adamw, data, steps, warmup_steps=warmup)
    cosine = gx.warmup_cosine_decay_schedule(adamw_peak / 100, adamw_peak, warmup, steps)
    return [
        Contender("adamw", f"{adamw_peak:g} (swept)", "warmup + cosine", gx.adamw(cosine)),
        Contender(
            "schedule_free_adamw",
            f"{free_rate:g} (swept)",
            f"none ({warmup} warmup steps)",
            gx.schedule_free_adamw(free_rate, warmup_steps=warmup),
            lambda params, state: gx.schedule_free_eval_params(state, params),
        ),
        Contender("adam", f"{adam_rate:g} (swept)", "constant", gx.adam(adam_rate)),
        Contender("prodigy", "1.0", "constant", gx.prodigy(1.0)),
        Contender("dadapt_adamw", "1.0", "constant", gx.dadapt_adamw(1.0)),
    ]


def cmd_lr_free(args: argparse.Namespace) -> list[list[Any]]:
    data = load_digits()
    rows = []
    for c in contenders(data, args.epochs):
        bar = progress(args.epochs, f"{c.name:>20}")
        start = time.perf_counter()
        result = train(
            c.tx,
            data,
            epochs=args.epochs,
            on_epoch=lambda *_, bar=bar: bar.update(1),
            eval_params=c.eval_params,
        )
        seconds = time.perf_counter() - start
        bar.close()
        found = estimated_rate(result.state)
        rows.append(
            [
                c.name,
                c.learning_rate,
                c.schedule,
                "-" if found is None else f"{found:.3g}",
                f"{result.test_accuracy:.4f}",
                f"{seconds:.1f}",
            ]
        )
    print(f"digits, {args.epochs} epochs, batch {BATCH}; swept rates from {GRID}")
    header = ["optimizer", "learning rate", "schedule", "rate found", "test accuracy", "wall s"]
    print_table(header, rows)
    return rows
