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
      losses: the raw training loss at each step (the mean over the runs).
      smoothed_losses: bias-corrected exponential moving average of the losses (it
        decides when the run has diverged; it lags behind the curve).
      centred_losses: the losses averaged over a window centred on each step
        (``window`` steps on each side, fewer at the ends): the curve without lag that
        the suggestions are read from.
      steepest: the learning rate where the centred loss falls fastest against
        ``log(lr)``, at or below the valley.
      min_over_10: the valley divided by 10 (Smith's rule, read without lag).
      diverged_at: index of the step whose smoothed loss exceeded
        ``diverge_threshold`` times the best, or None.
      valley: the learning rate of the lowest centred loss.
      rising_from: the first learning rate above the valley where the centred loss is
        back above its minimum by a tenth of what it fell before the valley (the end of
        the recorded range if it never is): from there on the rate is too large.
      drop: the fraction of the starting (centred) loss shed before the valley. Near 0
        the range missed the rates that train (the loss never fell: raise ``max_lr``,
        or lower ``min_lr`` if it rose from the start); the suggestion is then the
        smallest rate tried and not to be trusted.
      run_losses: the raw loss of each run at each step, shape ``(num_runs, steps)``.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    steepest: float
    min_over_10: float
    diverged_at: int | None
    centred_losses: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    valley: float = float("nan")
    rising_from: float = float("nan")
    drop: float = float("nan")
    run_losses: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def suggestion(self) -> float:
        """The suggested constant learning rate: a third of the valley (at least the
        smallest rate tried). For sign-based optimizers (``lion``, ``signum``,
        ``sign_sgd``) use a tenth of it: see :func:`find_learning_rate`."""
        return max(self.valley / 3.0, float(self.learning_rates[0]))

    def constant_rate(self, *, sign_based: bool = False) -> float:
        """The constant learning rate to train at: the suggestion, or a tenth of it for a
        sign-based optimizer (``lion``, ``signum``, ``sign_sgd``)."""
        return self.suggestion / 10.0 if sign_based else self.suggestion

    def plot(self, path: str | pathlib.Path | None = None, ax: Any = None) -> Any:
        """Draw this result with :func:`gradxform.playground.plot_lr_range_test` (matplotlib)."""
        from gradxform.playground import plot_lr_range_test

        return plot_lr_range_test(self, path, ax)


def centred_average(values: np.ndarray, window: int) -> np.ndarray:
    """Each value averaged with up to ``window`` neighbours on each side (no lag)."""
    values = np.asarray(values, np.float64)
    sums = np.concatenate([[0.0], np.cumsum(values)])
    idx = np.arange(len(values))
    lo, hi = np.maximum(idx - window, 0), np.minimum(idx + window + 1, len(values))
    return (sums[hi] - sums[lo]) / (hi - lo)


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
    *,
    num_runs: int = 1,
    window: int | None = None,
) -> LRRangeTest:
    """Train with a learning rate rising each step and record the loss (LR range test).

    Smith, 2017, "Cyclical Learning Rates for Training Neural Networks", section 3.3.
    The learning rate of step ``t`` is ``min_lr * (max_lr / min_lr)**(t / (n - 1))``
    (``mode='exp'``) or rises linearly (``mode='linear'``). ``num_runs`` runs start
    from ``params`` and see the batches in different orders (run ``r`` starts at batch
    ``r * len // num_runs``); they are ``vmap``-ed in one jitted ``lax.scan`` and the
    curve is their mean loss. The smoothed loss is ``s_t = a_t / (1 - smoothing**(t+1))``
    with ``a_t = smoothing * a_{t-1} + (1 - smoothing) * loss_t``; once ``s_t >
    diverge_threshold * min(s)`` (or a loss is not finite) the test has diverged: the
    parameters stop changing and the result ends at that step.

    The suggestion is read from the curve averaged over a centred window, which does
    not lag as the moving average does (the lag moves the moving average's minimum and
    steepest point to larger rates than the curve's): the valley is the rate of the
    lowest centred loss, and the suggestion, a third of it, is a rate where the loss
    still falls, never one in the region where it rises. Use it as a constant rate, or
    as the peak of a warmup + cosine schedule (measured both ways, below). A
    sign-based optimizer (``lion``, ``signum``, ``sign_sgd``) moves every coordinate by
    the full rate however small the gradient, so late in training it needs a rate about
    ten times smaller than the one at which its loss falls in a short test: use a tenth
    of the suggestion.

    How that was chosen (``notebooks/04_lr_range_test_digits.ipynb``,
    :func:`gradxform.playground.suggestion_study`): on the digits MLP, with ``adam``,
    ``sgd`` (with and without momentum) and ``lion``, five initialisations and batch
    orders each, the range test at its defaults, then 30 epochs at constant rates. Used
    as above, every suggestion reached within 0.8 points of the test accuracy of the best
    constant rate of a half-decade grid (1e-5 to 3), and none diverged; as the peak of
    ``warmup_cosine_decay_schedule`` (5% warmup, decay to 0) within 1.1 points. Other rules, as
    constant rates (worst gap in points, over the four optimizers): the moving average's
    steepest point (the former suggestion) 2.5, the centred steepest point 1.9, valley /
    10 3.6, valley / 30 3.1; no single fraction of the valley suited both ``sgd``
    (best near valley / 3) and ``lion`` (best near valley / 30).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: initial parameters (not modified).
      batches: a tree of arrays with a leading batch axis; step ``t`` uses
        batch ``t mod len`` (shifted by each run's start).
      optimizer_factory: called with ``learning_rate=`` a schedule, e.g. ``gx.adam``.
      min_lr, max_lr: the range, ``0 < min_lr < max_lr``.
      num_steps: number of steps (at least 3).
      mode: ``'exp'`` or ``'linear'``.
      smoothing: EMA decay in ``[0, 1)`` for the smoothed loss.
      diverge_threshold: stop when the smoothed loss exceeds this multiple of the best (> 1).
      num_runs: runs averaged into the curve (memory grows with it: one copy of the
        parameters and optimizer state per run).
      window: half-width in steps of the centred average (default ``num_steps // 20``,
        at least 1).

    Returns:
      An :class:`LRRangeTest` with the curve and the suggestions.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> loss = lambda p, b: 0.5 * 4.0 * jnp.sum((p - b) ** 2)  # curvature 4
      >>> r = find_learning_rate(loss, jnp.ones(3), jnp.zeros((1, 3)), gx.sgd,
      ...                        min_lr=1e-4, max_lr=10.0, num_steps=60)
      >>> bool(r.suggestion < 0.5 < r.rising_from)  # GD on curvature 4 is stable below 2/4
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
    _checks.integer("num_runs", num_runs, low=1)
    if window is not None:
        _checks.integer("window", window, low=1)
    batches = jax.tree.map(jnp.asarray, batches)
    leaves = jax.tree.leaves(batches)
    if not leaves:
        raise ValueError("batches must contain at least one array")
    n_batches = int(np.shape(leaves[0])[0])
    schedule = range_schedule(min_lr, max_lr, num_steps, mode)
    tx = optimizer_factory(learning_rate=schedule)
    starts = jnp.asarray([r * n_batches // num_runs for r in range(num_runs)], jnp.int32)

    def one_step(params, state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, state = tx.update(grads, state, params)
        return jnp.asarray(loss).astype(jnp.float32), apply_updates(params, updates), state

    def body(carry, t):
        params, state, avg, best, diverged = carry
        batch = jax.tree.map(lambda b: b[(t + starts) % n_batches], batches)
        run_losses, new_params, new_state = jax.vmap(one_step)(params, state, batch)
        loss = jnp.mean(run_losses)
        avg = _tree.update_moment(avg, loss, smoothing)
        smooth = _tree.bias_correction(avg, smoothing, _tree.safe_increment(t))
        now_diverged = diverged | ~jnp.isfinite(loss) | (smooth > diverge_threshold * best)
        best = jnp.where(now_diverged, best, jnp.minimum(best, smooth))
        carry = (
            _tree.select_tree(~now_diverged, new_params, params),
            _tree.select_tree(~now_diverged, new_state, state),
            avg,
            best,
            now_diverged,
        )
        return carry, (schedule(t), run_losses, smooth, now_diverged)

    stacked = jax.tree.map(lambda p: jnp.broadcast_to(p, (num_runs, *jnp.shape(p))), params)
    init = (
        stacked,
        jax.vmap(tx.init)(stacked),
        jnp.zeros([], jnp.float32),
        jnp.array(jnp.inf, jnp.float32),
        jnp.array(False),
    )
    run = jax.jit(lambda c: jax.lax.scan(body, c, jnp.arange(num_steps, dtype=jnp.int32))[1])
    lrs, run_losses, smooth, diverged = (np.asarray(x) for x in run(init))
    hits = np.flatnonzero(diverged)
    diverged_at = int(hits[0]) if hits.size else None
    end = num_steps if diverged_at is None else diverged_at + 1
    lrs, run_losses, smooth = lrs[:end], run_losses[:end].T, smooth[:end]
    losses = run_losses.mean(axis=0)
    # The suggestions come from the stable part: the steps before the divergence.
    stable = len(lrs) if diverged_at is None else max(diverged_at, 1)
    half = max(num_steps // 20, 1) if window is None else window
    centred = centred_average(losses[:stable], half)
    bottom = int(np.argmin(centred))
    fallen = centred[0] - centred[bottom]
    above = np.flatnonzero(centred[bottom:] > centred[bottom] + 0.1 * fallen)
    rising = float(lrs[bottom + above[0]]) if above.size else float(lrs[stable - 1])
    slope = np.gradient(centred, np.log(lrs[:stable])) if stable >= 2 else np.zeros(1)
    steepest = float(lrs[int(np.argmin(slope[: bottom + 1]))])
    valley = float(lrs[bottom])
    return LRRangeTest(
        learning_rates=lrs,
        losses=losses,
        smoothed_losses=smooth,
        steepest=steepest,
        min_over_10=max(valley / 10.0, float(lrs[0])),
        diverged_at=diverged_at,
        centred_losses=centred,
        valley=valley,
        rising_from=rising,
        drop=float(fallen / abs(centred[0])) if centred[0] != 0 else float("nan"),
        run_losses=run_losses,
    )
