"""The learning-rate range test (Smith, 2017, "Cyclical Learning Rates for Training
Neural Networks", section 3.3; popularised by fastai's ``lr_find``)."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, Schedule, apply_updates


@dataclasses.dataclass(frozen=True)
class LRRangeTest:
    """What a range test measured, up to and including the step that diverged.

    Attributes:
      learning_rates: the learning rate of each step.
      losses: the raw training loss at each step.
      smoothed_losses: bias-corrected exponential moving average of the losses.
      steepest: the learning rate where the smoothed loss falls fastest
        against ``log(lr)`` (the suggestion).
      min_over_10: the learning rate of the lowest smoothed loss, divided by 10.
      diverged_at: index of the step whose smoothed loss exceeded
        ``diverge_threshold`` times the best, or None.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    steepest: float
    min_over_10: float
    diverged_at: int | None

    @property
    def suggestion(self) -> float:
        """The suggested learning rate: the steepest-descent point."""
        return self.steepest

    def plot(self, path: str | pathlib.Path | None = None, ax: Any = None) -> Any:
        """Draw this result with :func:`gradxform.playground.plot_lr_range_test` (matplotlib)."""
        from gradxform.playground import plot_lr_range_test

        return plot_lr_range_test(self, path, ax)


def range_schedule(min_lr: float, max_lr: float, num_steps: int, mode: str = "exp") -> Schedule:
    """The learning rate of step ``t``: geometric (``exp``) or linear from min to max."""
    span = max(num_steps - 1, 1)

    def schedule(count: chex.Numeric) -> chex.Array:
        frac = jnp.minimum(jnp.asarray(count).astype(jnp.float32) / span, 1.0)
        if mode == "exp":
            return min_lr * jnp.exp(frac * float(np.log(max_lr / min_lr)))
        return min_lr + (max_lr - min_lr) * frac

    return schedule


def find_learning_rate(
    loss_fn: Callable[[Any, Any], jax.Array],
    params: Any,
    batches: Any,
    optimizer_factory: Callable[..., GradientTransformation],
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exp",
    smoothing: float = 0.98,
    diverge_threshold: float = 4.0,
) -> LRRangeTest:
    """Train with a learning rate rising each step and record the loss (LR range test).

    The learning rate of step ``t`` is ``min_lr * (max_lr / min_lr)**(t / (n - 1))``
    (``mode='exp'``) or rises linearly (``mode='linear'``). The smoothed loss is
    ``s_t = a_t / (1 - smoothing**(t+1))`` with ``a_t = smoothing * a_{t-1} +
    (1 - smoothing) * loss_t``. Once ``s_t > diverge_threshold * min(s)`` (or a
    loss is not finite) the run has diverged: parameters stop changing and the
    result ends at that step. All steps run in one jitted ``lax.scan``.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: initial parameters (not modified).
      batches: a tree of arrays with a leading batch axis; step ``t`` uses
        batch ``t mod len``.
      optimizer_factory: called with ``learning_rate=`` a schedule, e.g. ``gx.adam``.
      min_lr, max_lr: the range, ``0 < min_lr < max_lr``.
      num_steps: number of steps (at least 3).
      mode: ``'exp'`` or ``'linear'``.
      smoothing: EMA decay in ``[0, 1)`` for the smoothed loss.
      diverge_threshold: stop when the smoothed loss exceeds this multiple of the best (> 1).

    Returns:
      An :class:`LRRangeTest` with the curve and the suggestions.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> loss = lambda p, b: 0.5 * 4.0 * jnp.sum((p - b) ** 2)  # curvature 4
      >>> r = find_learning_rate(loss, jnp.ones(3), jnp.zeros((1, 3)), gx.sgd,
      ...                        min_lr=1e-4, max_lr=10.0, num_steps=60)
      >>> bool(r.suggestion < 0.5)  # plain GD on curvature 4 is stable below 2/4
      True
    """
    _checks.positive("min_lr", min_lr, allow_schedule=False)
    _checks.number("max_lr", max_lr, low=float(min_lr), low_open=True, allow_schedule=False)
    _checks.integer("num_steps", num_steps, low=3)
    _checks.one_of("mode", mode, ("exp", "linear"))
    _checks.decay_rate("smoothing", smoothing, allow_schedule=False)
    _checks.number(
        "diverge_threshold", diverge_threshold, low=1.0, low_open=True, allow_schedule=False
    )
    batches = jax.tree.map(jnp.asarray, batches)
    leaves = jax.tree.leaves(batches)
    if not leaves:
        raise ValueError("batches must contain at least one array")
    n_batches = int(np.shape(leaves[0])[0])
    schedule = range_schedule(min_lr, max_lr, num_steps, mode)
    tx = optimizer_factory(learning_rate=schedule)

    def body(carry, t):
        params, state, avg, best, diverged = carry
        batch = jax.tree.map(lambda b: b[t % n_batches], batches)
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, new_state = tx.update(grads, state, params)
        new_params = apply_updates(params, updates)
        loss32 = jnp.asarray(loss).astype(jnp.float32)
        avg = _tree.update_moment(avg, loss32, smoothing)
        smooth = _tree.bias_correction(avg, smoothing, _tree.safe_increment(t))
        now_diverged = diverged | ~jnp.isfinite(loss32) | (smooth > diverge_threshold * best)
        best = jnp.where(now_diverged, best, jnp.minimum(best, smooth))
        carry = (
            _tree.select_tree(~now_diverged, new_params, params),
            _tree.select_tree(~now_diverged, new_state, state),
            avg,
            best,
            now_diverged,
        )
        return carry, (schedule(t), loss32, smooth, now_diverged)

    init = (
        params,
        tx.init(params),
        jnp.zeros([], jnp.float32),
        jnp.array(jnp.inf, jnp.float32),
        jnp.array(False),
    )
    run = jax.jit(lambda c: jax.lax.scan(body, c, jnp.arange(num_steps, dtype=jnp.int32))[1])
    lrs, losses, smooth, diverged = (np.asarray(x) for x in run(init))
    hits = np.flatnonzero(diverged)
    diverged_at = int(hits[0]) if hits.size else None
    end = num_steps if diverged_at is None else diverged_at + 1
    lrs, losses, smooth = lrs[:end], losses[:end], smooth[:end]
    # Suggestions come from the stable part, without its first tenth (the
    # moving average has seen few batches there, so its slope is noise).
    stable = smooth[:diverged_at] if diverged_at is not None else smooth
    skip = num_steps // 10
    window_lrs, window = lrs[skip : len(stable)], stable[skip:]
    finite = np.isfinite(window)
    if finite.sum() >= 3:
        filled = np.where(finite, window, np.max(window[finite]))
        steepest = float(window_lrs[int(np.argmin(np.gradient(filled, np.log(window_lrs))))])
        lowest = float(window_lrs[int(np.argmin(filled))])
    else:
        steepest = lowest = float(lrs[0])
    return LRRangeTest(lrs, losses, smooth, steepest, lowest / 10.0, diverged_at)
