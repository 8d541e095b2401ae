"""Lookahead (Zhang, Lucas, Hinton & Ba, 2019, "Lookahead Optimizer: k steps forward, 1 step
back"): ``lookahead`` with optax's slow and fast parameters, and ``lookahead_in_state`` with
the slow weights in the state."""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformationExtraArgs,
    transformation,
    with_extra_args_support,
)


def _check_arguments(name: str, fast: Any, sync_period: Any, slow_step_size: Any) -> Any:
    _checks.transformation(name, fast)
    _checks.integer("sync_period", sync_period, low=1)
    _checks.number("slow_step_size", slow_step_size, low=0.0, high=1.0, allow_schedule=False)
    return with_extra_args_support(fast)


# ------------------------------------------------------------------------- lookahead


class LookaheadState(NamedTuple):
    """The fast optimizer's state and the fast steps taken since the last sync (int32)."""

    fast_state: Any
    steps_since_sync: chex.Array


class LookaheadParams(NamedTuple):
    """The parameters of :func:`lookahead`: the fast weights (take the gradients with these)
    and the slow weights (evaluate with these)."""

    fast: chex.ArrayTree
    slow: chex.ArrayTree

    @classmethod
    def init_synced(cls, params: chex.ArrayTree) -> LookaheadParams:
        """Fast and slow weights both equal to ``params``."""
        return cls(fast=params, slow=params)


def lookahead(
    fast_optimizer: Any,
    sync_period: int,
    slow_step_size: chex.Numeric,
    reset_state: bool = False,
) -> GradientTransformationExtraArgs:
    """Lookahead (Zhang, Lucas, Hinton & Ba, 2019) on :class:`LookaheadParams`, as optax's.

    The params are ``LookaheadParams(fast, slow)`` (start from
    ``LookaheadParams.init_synced(params)``); the gradients are taken at
    ``params.fast`` and ``fast_optimizer`` moves the fast weights. Every
    ``k = sync_period`` fast steps, with ``theta`` the fast weights after the
    fast step and ``phi`` the slow ones::

        phi <- phi + alpha * (theta - phi)          (alpha = slow_step_size)
        theta <- phi

    The updates are a ``LookaheadParams`` of fast and slow updates, so
    ``apply_updates(params, updates)`` moves both (do not transform them
    further). The differences are computed in at least float32, and a
    non-sync step's slow update is exactly zero. ``reset_state=True`` puts the
    fast optimizer's state back to its ``init`` at each sync; by default it
    carries over, as in the paper's experiments. :func:`lookahead_in_state`
    is the same algorithm on plain params, with the slow weights in the state.

    Args:
      fast_optimizer: the inner ("fast") optimizer.
      sync_period: ``k``, the number of fast steps between syncs (int >= 1).
      slow_step_size: ``alpha`` in ``[0, 1]``.
      reset_state: reset the fast optimizer's state at each sync.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import LookaheadParams, apply_updates, lookahead, scale
      >>> tx = lookahead(scale(-1.0), sync_period=2, slow_step_size=0.5)
      >>> params = LookaheadParams.init_synced(jnp.array([0.0]))
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(jnp.array([1.0]), state, params)
      ...     params = apply_updates(params, updates)
      >>> params.slow                  # fast weights reach -2; slow: 0 + 0.5 * (-2 - 0)
      Array([-1.], dtype=float32)
    """
    fast = _check_arguments("fast_optimizer", fast_optimizer, sync_period, slow_step_size)
    if not isinstance(reset_state, bool):
        raise TypeError(f"reset_state={reset_state!r} must be a bool")

    def init_fn(params):
        return LookaheadState(
            fast_state=fast.init(params.fast if isinstance(params, LookaheadParams) else params),
            steps_since_sync=_tree.zero_count(),
        )

    def step(u, f, s, sync):
        """The fast and slow updates of one leaf."""
        f, s = jnp.asarray(f), jnp.asarray(s)
        if not _tree.is_inexact(u):
            return u, jnp.zeros_like(s)
        dtype = _tree.promote(_tree.compute_dtype(f.dtype), u.dtype, s.dtype)
        diff = f.astype(dtype) + u.astype(dtype) - s.astype(dtype)
        alpha = jnp.asarray(slow_step_size, dtype)
        fast_u = jnp.where(sync, u.astype(dtype) - (1 - alpha) * diff, u.astype(dtype))
        slow_u = jnp.where(sync, alpha * diff, jnp.zeros_like(diff))
        return fast_u.astype(u.dtype), slow_u.astype(s.dtype)

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(params, LookaheadParams):
            raise ValueError(
                "lookahead needs params=LookaheadParams(fast, slow) (start from "
                "LookaheadParams.init_synced(params)); for plain params use lookahead_in_state"
            )
        _checks.check_same_layout(updates, params.fast, what="updates", against="params.fast")
        fast_updates, fast_state = fast.update(updates, state.fast_state, params.fast, **extra_args)
        sync = state.steps_since_sync == sync_period - 1
        fast_u, slow_u = _tree.map_unzip(
            lambda u, f, s: step(u, f, s, sync), fast_updates, params.fast, params.slow
        )
        if reset_state:
            fast_state = _tree.select_tree(sync, fast.init(params.fast), fast_state)
        steps = (state.steps_since_sync + 1) % sync_period
        return LookaheadParams(fast=fast_u, slow=slow_u), LookaheadState(
            fast_state=fast_state, steps_since_sync=steps.astype(jnp.int32)
        )

    return transformation(init_fn, update_fn, inner=(fast,))


# ---------------------------------------------------------------- lookahead_in_state


class LookaheadInStateState(NamedTuple):
    """Fast steps since the first update, the slow weights, and the fast optimizer's state."""

    count: chex.Array
    slow: chex.ArrayTree
    fast_state: Any


def lookahead_in_state(
    fast: Any,
    sync_period: int = 5,
    slow_step_size: chex.Numeric = 0.5,
    *,
    slow_dtype: Any | None = None,
) -> GradientTransformationExtraArgs:
    """Lookahead (Zhang, Lucas, Hinton & Ba, 2019) on plain params, the slow weights in the state.

    The params are the *fast* weights ``theta``, moved by ``fast``; the
    state keeps the *slow* weights ``phi`` (``phi = theta_0`` at the first
    update). Every ``k = sync_period`` fast steps::

        phi <- phi + alpha * (theta_k - phi)          (alpha = slow_step_size)
        theta <- phi

    i.e. on a sync step the returned update is ``phi_new - theta``, so that
    ``apply_updates`` lands on the new slow weights (up to the rounding of one
    addition in the parameters' dtype). The fast optimizer's state carries
    over the sync, as in the paper's experiments. This is :func:`lookahead`'s
    algorithm without a change of the params' structure, so it drops into any
    training loop and composes with every wrapper; the slow weights are read
    from ``state.slow``. Non-finite fast updates propagate into the slow
    weights at the next sync; wrap the result in
    :func:`gradxform.apply_if_finite` to skip such steps.

    Args:
      fast: the inner ("fast") optimizer.
      sync_period: ``k``, the number of fast steps between syncs (int >= 1).
      slow_step_size: ``alpha`` in ``[0, 1]``.
      slow_dtype: dtype of the slow weights; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import lookahead_in_state, scale
      >>> tx = lookahead_in_state(scale(-1.0), sync_period=2, slow_step_size=0.5)
      >>> p = jnp.array([0.0])
      >>> state = tx.init(p)
      >>> for _ in range(2):
      ...     u, state = tx.update(jnp.array([1.0]), state, p)
      ...     p = p + u
      >>> p                                 # fast weights reach -2; slow: 0 + 0.5 * (-2 - 0)
      Array([-1.], dtype=float32)
    """
    fast = _check_arguments("fast", fast, sync_period, slow_step_size)
    slow_dtype = _checks.canonical_dtype(slow_dtype, "slow_dtype")

    def init_fn(params):
        return LookaheadInStateState(
            count=_tree.zero_count(),
            slow=_tree.zeros_like(params, slow_dtype),
            fast_state=fast.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        _checks.check_params(updates, params, "lookahead_in_state")
        fast_updates, fast_state = fast.update(updates, state.fast_state, params, **extra_args)
        first = state.count == 0
        sync = (state.count % sync_period) == sync_period - 1

        def step(u, p, s):
            if not _tree.is_inexact(u):
                return u, s
            dtype = _tree.promote(_tree.compute_dtype(p.dtype), u.dtype, s.dtype)
            p32 = p.astype(dtype)
            slow = jnp.where(first, p32, s.astype(dtype))
            alpha = jnp.asarray(slow_step_size).astype(dtype)
            new_slow = jnp.where(sync, slow + alpha * (p32 + u.astype(dtype) - slow), slow)
            out = jnp.where(sync, new_slow - p32, u.astype(dtype))
            return out.astype(u.dtype), new_slow.astype(s.dtype)

        out, slow = _tree.map_unzip(step, fast_updates, params, state.slow)
        return out, LookaheadInStateState(
            count=_tree.safe_increment(state.count), slow=slow, fast_state=fast_state
        )

    return transformation(init_fn, update_fn, inner=(fast,))
