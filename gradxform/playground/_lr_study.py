"""How good is the range test's suggestion? Train the digits MLP at it and at every rate of
a grid, from the same initialisation and batch order, and compare test accuracies."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import gradxform as gx
from gradxform.playground._digits import Split, cross_entropy, init_mlp, load_digits, mlp

# Half-decade steps from 1e-5 to 3: every optimizer's best digits rate lies inside.
GRID = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
BATCH = 64


def study_optimizers() -> dict[str, Callable[..., gx.GradientTransformation]]:
    """The optimizers of the study, by name."""
    return {
        "adam": gx.adam,
        "sgd": gx.sgd,
        "momentum": lambda learning_rate: gx.sgd(learning_rate, momentum=0.9),
        "lion": gx.lion,
    }


# Optimizers whose update is a sign: every coordinate moves by the full rate.
SIGN_BASED = frozenset({"lion", "signum", "sign_sgd"})


class StudyRow(NamedTuple):
    optimizer: str
    seed: int
    rate: float  # the range test's rate, used as documented (LRRangeTest.constant_rate)
    accuracy: float  # test accuracy after training at that constant rate
    best_rate: float  # the grid rate with the best test accuracy
    best_accuracy: float
    diverged: bool  # whether training at that rate diverged


def _epoch_batches(data: Split, seed: int, epochs: int) -> tuple[jax.Array, jax.Array]:
    rng = np.random.default_rng(seed)
    n = len(data.x_train) // BATCH * BATCH
    idx = np.concatenate(
        [rng.permutation(len(data.x_train))[:n].reshape(-1, BATCH) for _ in range(epochs)]
    )
    return jnp.asarray(data.x_train[idx]), jnp.asarray(data.y_train[idx])


def _loss(p: Any, b: Any) -> jax.Array:
    return cross_entropy(p, b[0], b[1])


def pick_rate(
    factory: Callable[..., gx.GradientTransformation],
    data: Split,
    seed: int = 0,
    *,
    sign_based: bool = False,
    **range_test: Any,
) -> float:
    """The constant rate the range test gives ``factory`` on the digits MLP: one epoch of
    the training split (batch order and initialisation from ``seed``), then
    :meth:`gradxform.LRRangeTest.constant_rate` (a tenth for a sign-based optimizer)."""
    params = init_mlp(jax.random.key(seed))
    one_epoch = _epoch_batches(data, seed, 1)
    found = gx.find_learning_rate(_loss, params, one_epoch, factory, **range_test)
    return found.constant_rate(sign_based=sign_based)


def accuracies_at(
    factory: Callable[..., gx.GradientTransformation],
    data: Split,
    rates: Sequence[float],
    epochs: int,
    seed: int = 0,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Test accuracy after ``epochs`` epochs at each constant rate (0 where a run diverged),
    and whether each diverged: one :func:`gradxform.lr_sweep` (``chunk_size`` rates at a
    time), the initialisation and batch order of :func:`gradxform.playground.train_digits`
    with the same ``seed``."""
    x_test, y_test = jnp.asarray(data.x_test), jnp.asarray(data.y_test)

    def minus_accuracy(p: Any) -> jax.Array:
        return -jnp.mean(jnp.argmax(mlp(p, x_test), axis=1) == y_test)

    batches = _epoch_batches(data, seed, epochs)
    sweep = gx.lr_sweep(
        _loss,
        init_mlp(jax.random.key(seed)),
        batches,
        factory,
        rates,
        num_steps=len(batches[0]),
        eval_fn=minus_accuracy,
        chunk_size=chunk_size,
    )
    assert sweep.scores is not None
    return np.where(sweep.diverged, 0.0, -sweep.scores), sweep.diverged


def suggestion_study(
    optimizers: Iterable[str] = ("adam", "sgd", "momentum", "lion"),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    epochs: int = 30,
    grid: Sequence[float] = GRID,
    data: Split | None = None,
    **range_test: Any,
) -> list[StudyRow]:
    """For each optimizer and seed (the initialisation and the batch order): the rate of
    :func:`pick_rate` (``range_test`` are :func:`gradxform.find_learning_rate`'s arguments;
    its defaults otherwise), then ``epochs`` epochs at that rate and at each rate of
    ``grid`` (:func:`accuracies_at`, all rates in one compiled program), scored on the
    test split."""
    data = load_digits() if data is None else data
    factories = study_optimizers()
    rows = []
    for name in optimizers:
        for seed in seeds:
            sign_based = name in SIGN_BASED
            picked = pick_rate(factories[name], data, seed, sign_based=sign_based, **range_test)
            rates = [picked, *grid]
            accuracy, diverged = accuracies_at(factories[name], data, rates, epochs, seed)
            best = 1 + int(np.argmax(accuracy[1:]))
            rows.append(
                StudyRow(
                    name,
                    seed,
                    float(rates[0]),
                    float(accuracy[0]),
                    float(rates[best]),
                    float(accuracy[best]),
                    bool(diverged[0]),
                )
            )
    return rows
