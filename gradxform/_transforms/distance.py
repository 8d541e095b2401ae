"""Distance-based step sizes: DoG and DoWG, the step size of a distance over gradients.

Both scale the whole update tree by one scalar: the largest distance travelled from the
starting point ``x_0`` divided by a running norm of the gradients. Their scalars live in
the state in the lowest floating-point dtype of the params (as optax keeps them), and
are computed in at least float32.

``x_0`` is taken from the params of the first update rather than at ``init``, so that
``init`` depends on shapes and dtypes only (``jax.ShapeDtypeStruct`` works, as for every
gradxform transformation). When ``init`` and the first ``update`` see the same params,
the usual case, the result is optax's.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, transformation

_INIT_STEPS = ("distance", "learning_rate", "heuristic")


def scalar_dtype(params: chex.ArrayTree) -> np.dtype:
    """The dtype of a scalar statistic of ``params``: their lowest real floating-point dtype.

    float32 when the params have no floating-point leaf.
    """
    dtypes = [
        _tree.real_dtype(_tree.dtype_of(x))
        for _, x in _tree.leaf_paths(params)
        if _tree.is_inexact(x)
    ]
    return min(dtypes, key=lambda d: d.itemsize, default=np.dtype(jnp.float32))


def distance(a: chex.ArrayTree, b: chex.ArrayTree) -> chex.Array:
    """``||a - b||``, the l2 norm over the floating-point leaves, in at least float32."""
    return _tree.global_norm(
        _tree.map_inexact(lambda x, y: _tree.to_compute(x) - _tree.to_compute(y), a, b)
    )


def _scalar(value: Any, dtype: Any) -> chex.Array:
    return jnp.asarray(value, _tree.compute_dtype(dtype))


class DoGState(NamedTuple):
    """Whether no update was made yet, the starting point ``x_0``, the largest distance
    ``r_t`` from it and the sum of squared gradient norms ``G_t``."""

    is_init_step: chex.Array
    init_params: chex.ArrayTree
    max_dist: chex.Array
    sum_sq_norm_grads: chex.Array


def _check_init_step(init_step: Any) -> tuple[str, Any]:
    if not isinstance(init_step, tuple | list) or len(init_step) != 2:
        raise TypeError(
            f"init_step={init_step!r} must be a pair (kind, value), kind one of "
            f"{', '.join(map(repr, _INIT_STEPS))}"
        )
    kind, value = init_step
    _checks.one_of("init_step", kind, _INIT_STEPS)
    _checks.positive(f"init_step=({kind!r}, value)", value, allow_schedule=False)
    return kind, value


def scale_by_dog(
    init_step: tuple[str, chex.Numeric],
    eps: chex.Numeric = 1e-8,
) -> GradientTransformation:
    """Scale by Distance over Gradients (Ivgi, Hinder & Carmon, 2023, "DoG is SGD's Best
    Friend: A Parameter-Free Dynamic Step Size Schedule").

    ::

        r_t = max(r_{t-1}, ||x_t - x_0||)          r_0 from init_step (below)
        G_t = G_{t-1} + ||g_t||**2                G_0 = 0
        eta_t = r_t / sqrt(G_t + eps)
        u_t = eta_t * g_t

    The norms are over the whole tree. ``init_step`` is optax's pair ``(kind, value)``:
    ``("distance", r)`` sets ``r_0 = r``; ``("heuristic", alpha)`` sets
    ``r_0 = alpha * (1 + ||x_0||)`` (the paper's suggestion, alpha = 1e-6, or 1e-4 with
    batch normalisation); ``("learning_rate", eta)`` takes ``eta_1 = eta`` for the first
    step and ``r_0 = 0``. ``x_0`` is the params of the first update.

    Args:
      init_step: ``(kind, value)``, kind one of ``"distance"``, ``"learning_rate"``,
        ``"heuristic"``; value positive.
      eps: non-negative term added to ``G_t`` under the root.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_dog(("distance", 0.5))
      >>> params = jnp.array([1.0, 2.0])
      >>> tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)[0]  # 0.5 / 5 * g
      Array([0.3, 0.4], dtype=float32)
    """
    kind, value = _check_init_step(init_step)
    _checks.non_negative("eps", eps, allow_schedule=False)

    def init_fn(params):
        dtype = scalar_dtype(params)
        r0 = value if kind == "distance" else 0.0
        return DoGState(
            is_init_step=jnp.ones([], jnp.bool_),
            init_params=_tree.zeros_like(params),
            max_dist=jnp.asarray(r0, dtype),
            sum_sq_norm_grads=jnp.zeros([], dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "scale_by_dog")
        _checks.check_updates(updates, state.init_params, "scale_by_dog", allow_complex=True)
        first = state.is_init_step
        x0 = _tree.select_tree(first, params, state.init_params)
        dtype = state.max_dist.dtype
        previous = _scalar(state.max_dist, dtype)
        if kind == "heuristic":
            start = _scalar(value, dtype) * (1 + _tree.global_norm(params).astype(previous.dtype))
            previous = jnp.where(first, start.astype(previous.dtype), previous)
        max_dist = jnp.maximum(previous, distance(x0, params).astype(previous.dtype))
        sum_sq = _scalar(state.sum_sq_norm_grads, dtype)
        sum_sq = sum_sq + (_tree.global_norm(updates) ** 2).astype(sum_sq.dtype)
        eta = max_dist / jnp.sqrt(sum_sq + _scalar(eps, dtype))
        if kind == "learning_rate":
            eta = jnp.where(first, _scalar(value, dtype), eta)
        return _tree.scale_tree(updates, eta), DoGState(
            is_init_step=jnp.zeros([], jnp.bool_),
            init_params=x0,
            max_dist=max_dist.astype(dtype),
            sum_sq_norm_grads=sum_sq.astype(dtype),
        )

    return transformation(init_fn, update_fn)


class DoWGState(NamedTuple):
    """The starting point ``x_0``, the weighted sum of squared gradient norms ``v_t`` and
    the largest squared distance ``r_t**2`` from ``x_0``."""

    init_params: chex.ArrayTree
    weighted_sq_norm_grads: chex.Array
    estim_sq_dist: chex.Array


def scale_by_dowg(
    init_estim_sq_dist: chex.Numeric | None = None,
    eps: chex.Numeric = 1e-4,
) -> GradientTransformation:
    """Scale by Distance over Weighted Gradients (Khaled, Mishchenko & Jin, 2023, "DoWG
    Unleashed: An Efficient Universal Parameter-Free Gradient Descent Method").

    ::

        r_t**2 = max(r_{t-1}**2, ||x_t - x_0||**2)     r_0**2 = init_estim_sq_dist (or eps)
        v_t = v_{t-1} + r_t**2 * ||g_t||**2           v_0 = 0
        eta_t = r_t**2 / (sqrt(v_t) + eps)
        u_t = eta_t * g_t

    The norms are over the whole tree. ``x_0`` is the params of the first update with a
    nonzero gradient (before it, ``v`` is 0 and nothing has moved).

    Args:
      init_estim_sq_dist: positive initial estimate ``r_0**2`` of the squared distance to
        a solution; ``None`` takes ``eps``.
      eps: positive term added to the denominator (and the default ``r_0**2``).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_dowg(init_estim_sq_dist=1.0, eps=0.0)
      >>> params = jnp.array([1.0, 2.0])
      >>> tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)[0]  # 1 / sqrt(25) * g
      Array([0.6, 0.8], dtype=float32)
    """
    if init_estim_sq_dist is not None:
        _checks.positive("init_estim_sq_dist", init_estim_sq_dist, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    if init_estim_sq_dist is None:  # eps is also r_0**2: zero would never move
        _checks.positive("eps", eps, allow_schedule=False)
    r0_sq = eps if init_estim_sq_dist is None else init_estim_sq_dist

    def init_fn(params):
        dtype = scalar_dtype(params)
        return DoWGState(
            init_params=_tree.zeros_like(params),
            weighted_sq_norm_grads=jnp.zeros([], dtype),
            estim_sq_dist=jnp.asarray(r0_sq, dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "scale_by_dowg")
        _checks.check_updates(updates, state.init_params, "scale_by_dowg", allow_complex=True)
        dtype = state.estim_sq_dist.dtype
        weighted = _scalar(state.weighted_sq_norm_grads, dtype)
        x0 = _tree.select_tree(weighted == 0, params, state.init_params)
        previous = _scalar(state.estim_sq_dist, dtype)
        estim = jnp.maximum(previous, (distance(x0, params) ** 2).astype(previous.dtype))
        weighted = weighted + estim * (_tree.global_norm(updates) ** 2).astype(weighted.dtype)
        eta = estim / (jnp.sqrt(weighted) + _scalar(eps, dtype))
        return _tree.scale_tree(updates, eta), DoWGState(
            init_params=x0,
            weighted_sq_norm_grads=weighted.astype(dtype),
            estim_sq_dist=estim.astype(dtype),
        )

    return transformation(init_fn, update_fn)
