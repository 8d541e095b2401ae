"""The one-compile hyperparameter sweep: K training runs ``vmap``-ed in one jitted scan."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, apply_updates


@dataclasses.dataclass(frozen=True)
class LRSweep:
    """What :func:`lr_sweep` measured: one training run per swept value.

    Attributes:
      hyperparam: the name of the swept hyperparameter.
      values: the swept values, shape ``(K,)``.
      losses: the training loss of each run at each step, shape ``(K, num_steps)``;
        NaN from the step a run's loss stopped being finite.
      final_losses: each run's mean training loss over its last tenth of steps
        (at least one step); ``inf`` for a run that diverged.
      scores: ``eval_fn`` of each run's final parameters, shape ``(K,)``, or None.
      diverged: whether each run's loss stopped being finite.
      best: the value of the run with the lowest score (or, without ``eval_fn``,
        the lowest final loss) among the runs that did not diverge; NaN if all did.
    """

    hyperparam: str
    values: np.ndarray
    losses: np.ndarray
    final_losses: np.ndarray
    scores: np.ndarray | None
    diverged: np.ndarray
    best: float


def lr_sweep(
    loss_fn: Callable[[Any, Any], jax.Array],
    params: Any,
    batches: Any,
    optimizer_factory: Callable[..., GradientTransformation],
    values: Any,
    *,
    num_steps: int,
    hyperparam: str = "learning_rate",
    eval_fn: Callable[[Any], jax.Array] | None = None,
    chunk_size: int | None = None,
    **kwargs: Any,
) -> LRSweep:
    """Train once per value of a hyperparameter, all runs in one compiled program.

    "Try 0.1, 0.01 and 0.001" without a Python loop: the optimizer is wrapped in
    :func:`inject_hyperparams`, its state is copied once per value with
    ``state.hyperparams[hyperparam]`` set to that value, and the ``K`` runs are
    ``jax.vmap``-ed over that state inside one jitted ``lax.scan``. Every run starts from
    ``params`` and sees the same batches (step ``t`` uses batch ``t mod len``), so
    the runs differ only in the swept value. The program is compiled once, whatever
    ``K`` and ``chunk_size``.

    Memory grows with the number of runs held at once: ``K`` (or ``chunk_size``)
    copies of the parameters, gradients and optimizer state. ``chunk_size`` runs the
    values that many at a time through the same compiled program (the last chunk is
    padded with repeats of its last value).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: initial parameters (not modified).
      batches: a tree of arrays with a leading batch axis.
      optimizer_factory: the optimizer, e.g. ``gx.adam``; called through
        ``inject_hyperparams`` with ``hyperparam`` and ``kwargs``.
      values: the values to try (a sequence or 1-D array of finite numbers).
      num_steps: training steps per run (at least 1).
      hyperparam: the swept argument of ``optimizer_factory``: any numeric one
        (``"learning_rate"``, ``"b1"``, ``"weight_decay"``, ...).
      eval_fn: ``eval_fn(params) -> scalar`` to minimise, evaluated on each run's final
        parameters (a validation loss; return ``-accuracy`` to pick by accuracy).
      chunk_size: run at most this many values at once (default: all).
      **kwargs: the optimizer's other arguments.

    Returns:
      An :class:`LRSweep` with the curves, the final losses, the scores and the best value.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> loss = lambda p, b: 0.5 * 4.0 * jnp.sum((p - b) ** 2)  # curvature 4
      >>> r = gx.lr_sweep(loss, jnp.ones(3), jnp.zeros((1, 3)), gx.sgd,
      ...                 [0.01, 0.1, 0.25, 0.6], num_steps=20)
      >>> r.best  # 1/4 is exact for curvature 4; above 2/4 gradient descent diverges
      0.25
      >>> r.diverged.tolist()
      [False, False, False, False]
    """
    from gradxform._wrappers.hyperparams import inject_hyperparams

    _checks.integer("num_steps", num_steps, low=1)
    swept = np.asarray(values, dtype=np.float64)
    if swept.ndim != 1 or swept.size == 0 or not np.all(np.isfinite(swept)):
        raise ValueError(f"values={values!r} must be a non-empty 1-D sequence of finite numbers")
    if chunk_size is not None:
        _checks.integer("chunk_size", chunk_size, low=1)
    if eval_fn is not None and not callable(eval_fn):
        raise TypeError(f"eval_fn={eval_fn!r} must be callable: eval_fn(params) -> scalar")
    batches = jax.tree.map(jnp.asarray, batches)
    leaves = jax.tree.leaves(batches)
    if not leaves:
        raise ValueError("batches must contain at least one array")
    n_batches = int(np.shape(leaves[0])[0])
    accepted = inspect.signature(optimizer_factory).parameters
    if hyperparam not in accepted and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        raise ValueError(
            f"hyperparam={hyperparam!r} is not an argument of "
            f"{getattr(optimizer_factory, '__name__', optimizer_factory)!r}"
        )
    tx = inject_hyperparams(optimizer_factory)(**{hyperparam: float(swept[0])}, **kwargs)
    state0 = tx.init(params)
    if hyperparam not in state0.hyperparams:
        raise ValueError(
            f"hyperparam={hyperparam!r} is not a numeric argument of the optimizer "
            f"(its numeric arguments: {', '.join(sorted(state0.hyperparams))})"
        )
    dtype = jnp.asarray(state0.hyperparams[hyperparam]).dtype

    def run(value):
        state = state0._replace(hyperparams={**state0.hyperparams, hyperparam: value.astype(dtype)})

        def body(carry, t):
            params, state, dead = carry
            batch = jax.tree.map(lambda b: b[t % n_batches], batches)
            loss, grads = jax.value_and_grad(loss_fn)(params, batch)
            updates, new_state = tx.update(grads, state, params)
            loss32 = jnp.asarray(loss).astype(jnp.float32)
            dead = dead | ~jnp.isfinite(loss32)
            params = _tree.select_tree(dead, params, apply_updates(params, updates))
            state = _tree.select_tree(dead, state, new_state)
            return (params, state, dead), jnp.where(dead, jnp.nan, loss32)

        steps = jnp.arange(num_steps, dtype=jnp.int32)
        (final, _, dead), losses = jax.lax.scan(body, (params, state, jnp.array(False)), steps)
        score = jnp.asarray(eval_fn(final), jnp.float32) if eval_fn is not None else jnp.zeros([])
        return losses, score, dead

    compiled = jax.jit(jax.vmap(run))
    size = len(swept) if chunk_size is None else min(chunk_size, len(swept))
    padded = np.concatenate([swept, np.repeat(swept[-1:], -len(swept) % size)])
    out = [compiled(jnp.asarray(padded[i : i + size])) for i in range(0, len(padded), size)]
    losses, scores, diverged = (np.concatenate([np.asarray(o[j]) for o in out]) for j in range(3))
    losses, scores, diverged = losses[: len(swept)], scores[: len(swept)], diverged[: len(swept)]
    tail = losses[:, -max(1, num_steps // 10) :]
    final_losses = np.where(diverged, np.inf, tail.mean(axis=1))
    ranking = np.where(diverged, np.inf, scores if eval_fn is not None else final_losses)
    ranking = np.where(np.isnan(ranking), np.inf, ranking)
    best = float(swept[int(np.argmin(ranking))]) if np.isfinite(ranking).any() else float("nan")
    return LRSweep(
        hyperparam,
        swept,
        losses,
        final_losses,
        scores if eval_fn is not None else None,
        diverged,
        best,
    )
