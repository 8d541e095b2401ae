"""A small MLP on scikit-learn's bundled digits data (no download), for demos and tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform._base import GradientTransformation, apply_updates


class Split(NamedTuple):
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class TrainResult(NamedTuple):
    test_accuracy: float
    final_loss: float
    seconds: float
    losses: list[float]
    state: Any = None  # the optimizer's final state


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """The 8x8 digits (1797 images, 10 classes), standardised, split train/test."""
    try:
        from sklearn.datasets import load_digits as sk_load
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the digits demo needs scikit-learn: pip install 'gradxform[demo]'"
        ) from e
    data = sk_load()
    x = data.data.astype(np.float32) / 16.0
    y = data.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    x = (x - mean) / std
    return Split(x[train], y[train], x[test], y[test])


def init_mlp(key: jax.Array, sizes: tuple[int, ...] = (64, 128, 10)) -> dict[str, Any]:
    """He-initialised weights of an MLP with ReLU hidden layers."""
    params = {}
    keys = jax.random.split(key, len(sizes) - 1)
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
        params[f"layer{i}"] = {
            "kernel": jax.random.normal(k, (n_in, n_out)) * jnp.sqrt(2.0 / n_in),
            "bias": jnp.zeros((n_out,)),
        }
    return params


def mlp(params: dict[str, Any], x: jax.Array) -> jax.Array:
    """Logits of the MLP."""
    layers = [params[k] for k in sorted(params)]
    for layer in layers[:-1]:
        x = jax.nn.relu(x @ layer["kernel"] + layer["bias"][None, :])
    return x @ layers[-1]["kernel"] + layers[-1]["bias"][None, :]


def cross_entropy(params: dict[str, Any], x: jax.Array, y: jax.Array) -> jax.Array:
    logits = mlp(params, x)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def accuracy(params: dict[str, Any], x: np.ndarray, y: np.ndarray) -> float:
    return float(jnp.mean(jnp.argmax(mlp(params, jnp.asarray(x)), axis=1) == jnp.asarray(y)))


def train(
    tx: GradientTransformation,
    data: Split,
    *,
    epochs: int = 30,
    batch_size: int = 64,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] | None = None,
    eval_params: Callable[[Any, Any], Any] | None = None,
) -> TrainResult:
    """Train the MLP with ``tx``; one jitted, donated step per mini-batch.

    ``eval_params(params, state)`` gives the parameters to test (for Schedule-Free,
    ``lambda p, s: gx.schedule_free_eval_params(s, p)``); by default the trained ones.
    """
    params = init_mlp(jax.random.key(seed))
    state = tx.init(params)

    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(cross_entropy)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state, loss

    step = jax.jit(step, donate_argnums=(0, 1))
    rng = np.random.default_rng(seed)
    n = len(data.x_train) // batch_size * batch_size
    losses: list[float] = []
    start = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(data.x_train))[:n].reshape(-1, batch_size)
        epoch_loss = jnp.zeros([])
        for idx in order:
            params, state, loss = step(params, state, data.x_train[idx], data.y_train[idx])
            epoch_loss = epoch_loss + loss
        losses.append(float(epoch_loss) / len(order))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    seconds = time.perf_counter() - start
    tested = params if eval_params is None else eval_params(params, state)
    return TrainResult(
        accuracy(tested, data.x_test, data.y_test), losses[-1], seconds, losses, state
    )
