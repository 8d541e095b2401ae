"""Transformations that need a statistic of each leaf: Adafactor's factored moments,
the parameter-scale step and the layer-wise trust ratio (LARS, LAMB).

Under :func:`gradxform.flat` these run on the per-leaf tree, never on a
concatenated buffer. Adafactor's update clipping is :func:`gradxform.clip_by_block_rms`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
    init_empty_state,
    transformation,
)


class FactoredMoments(NamedTuple):
    """Row and column averages of the squared gradient of one matrix (or stack of matrices).

    For a parameter of shape ``(..., n, m)``: ``v_row`` has shape ``(..., n)``
    and ``v_col`` shape ``(..., m)``.
    """

    v_row: chex.Array
    v_col: chex.Array


class ScaleByFactoredRmsState(NamedTuple):
    """Step count and, per parameter, its second-moment statistics ``v``.

    ``v`` has the structure of the params; in place of each factored
    parameter it holds a :class:`FactoredMoments`, in place of any other the
    full average (an array of the parameter's shape).
    """

    count: chex.Array
    v: chex.ArrayTree


def scale_by_factored_rms(
    decay_rate: chex.Numeric = 0.8,
    eps: chex.Numeric = 1e-30,
    *,
    min_dim_size_to_factor: int = 128,
    factored: bool = True,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Divide by a factored estimate of the root mean square gradient (Shazeer & Stern, 2018,
    "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", Algorithms 4 and 5).

    ::

        b_t = 1 - t**(-decay_rate)                     (b_1 = 0)
        G2  = g_t**2 + eps
        matrices (the last two axes, both >= min_dim_size_to_factor):
          R_t = b_t R_{t-1} + (1 - b_t) mean(G2, axis=-1)       (row averages)
          C_t = b_t C_{t-1} + (1 - b_t) mean(G2, axis=-2)       (column averages)
          V_t = R_t C_t^T / mean(R_t)
        other leaves:
          V_t = b_t V_{t-1} + (1 - b_t) G2
        u_t = g_t / sqrt(V_t)

    The factored estimate needs ``n + m`` numbers for an ``n x m`` matrix
    instead of ``n m``.

    Args:
      decay_rate: non-negative exponent of the decay schedule (the paper's 0.8).
      eps: non-negative term added to the squared gradient (``epsilon_1``).
      min_dim_size_to_factor: factor only when both of the last two axes are at
        least this long (at least 1).
      factored: whether to factor matrices at all.
      nu_dtype: dtype of the averages; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_factored_rms
      >>> tx = scale_by_factored_rms(eps=0.0, min_dim_size_to_factor=1)
      >>> g = jnp.array([[1.0, 1.0], [2.0, 2.0]])
      >>> tx.update(g, tx.init(g))[0]  # R = (1, 4), C = (2.5, 2.5): V = R C / 2.5 = R
      Array([[1., 1.],
             [1., 1.]], dtype=float32)
    """
    _checks.non_negative("decay_rate", decay_rate, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.integer("min_dim_size_to_factor", min_dim_size_to_factor, low=1)
    nu_dtype = _checks.canonical_dtype(nu_dtype, "nu_dtype")

    def is_factored(shape: tuple[int, ...]) -> bool:
        return factored and len(shape) >= 2 and min(shape[-2:]) >= min_dim_size_to_factor

    def leaf_state(p):
        shape = tuple(jnp.shape(p))
        own = jnp.dtype(p.dtype)
        if not _tree.is_inexact(p):
            return jnp.zeros(shape, own)
        dtype = nu_dtype if nu_dtype is not None else own
        if is_factored(shape):
            return FactoredMoments(
                v_row=jnp.zeros(shape[:-1], dtype), v_col=jnp.zeros(shape[:-2] + shape[-1:], dtype)
            )
        return jnp.zeros(shape, dtype)

    def init_fn(params):
        return ScaleByFactoredRmsState(count=_tree.zero_count(), v=jax.tree.map(leaf_state, params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_updates(updates, _param_layout(state.v), "scale_by_factored_rms")
        count = _tree.safe_increment(state.count)
        t = count.astype(jnp.float32)
        decay = 1 - jnp.exp(-jnp.asarray(decay_rate, jnp.float32) * jnp.log(t))

        def leaf(g, v):
            if not _tree.is_inexact(g):
                return g, v
            g32 = _tree.to_compute(g)
            g2 = jnp.square(g32) + jnp.asarray(eps).astype(g32.dtype)
            if isinstance(v, FactoredMoments):
                r = _tree.update_moment(_tree.to_compute(v.v_row), jnp.mean(g2, axis=-1), decay)
                c = _tree.update_moment(_tree.to_compute(v.v_col), jnp.mean(g2, axis=-2), decay)
                dtype = _tree.promote(r.dtype, c.dtype, g32.dtype)
                r, c = r.astype(dtype), c.astype(dtype)
                v_hat = (r / jnp.mean(r, axis=-1, keepdims=True))[..., :, None] * c[..., None, :]
                u = g32.astype(dtype) / jnp.sqrt(v_hat)
                return u.astype(g.dtype), FactoredMoments(
                    r.astype(v.v_row.dtype), c.astype(v.v_col.dtype)
                )
            full = _tree.update_moment(_tree.to_compute(v), g2, decay)
            u = g32.astype(full.dtype) / jnp.sqrt(full)
            return u.astype(g.dtype), full.astype(v.dtype)

        u, v = _tree.map_unzip(leaf, updates, state.v)
        return u, ScaleByFactoredRmsState(count=count, v=v)

    return transformation(init_fn, update_fn, per_leaf="scale_by_factored_rms")


def _is_factored_leaf(x: Any) -> bool:
    return isinstance(x, FactoredMoments)


def _param_layout(v: chex.ArrayTree) -> chex.ArrayTree:
    """The shapes and dtypes of the params, recovered from the statistics."""

    def layout(x):
        if isinstance(x, FactoredMoments):
            shape = tuple(x.v_row.shape) + tuple(x.v_col.shape[-1:])
            return jax.ShapeDtypeStruct(shape, x.v_row.dtype)
        return jax.ShapeDtypeStruct(tuple(x.shape), x.dtype)

    return jax.tree.map(layout, v, is_leaf=_is_factored_leaf)


def scale_by_param_block_rms(min_scale: chex.Numeric = 1e-3) -> GradientTransformation:
    """Multiply each leaf's update by the root mean square of its parameter (relative step size).

    ::

        u <- u * max(min_scale, RMS(theta))     per leaf (Shazeer & Stern, 2018, Alg. 4, epsilon_2)

    Args:
      min_scale: non-negative floor of the scale (``epsilon_2``).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_param_block_rms
      >>> tx = scale_by_param_block_rms()
      >>> p = jnp.array([3.0, 4.0, 0.0, 0.0])  # RMS = 2.5
      >>> tx.update(jnp.ones(4), tx.init(p), p)[0]
      Array([2.5, 2.5, 2.5, 2.5], dtype=float32)
    """
    _checks.non_negative("min_scale", min_scale, allow_schedule=False)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "scale_by_param_block_rms", allow_complex=False)

        def step(u, p):
            rms = _tree.leaf_rms(p)
            dtype = _tree.promote(rms.dtype, _tree.compute_dtype(u.dtype))
            factor = jnp.maximum(jnp.asarray(min_scale).astype(dtype), rms.astype(dtype))
            return (u.astype(dtype) * factor).astype(u.dtype)

        return _tree.map_inexact(step, updates, params), state

    return transformation(init_empty_state, update_fn, per_leaf="scale_by_param_block_rms")


def scale_by_trust_ratio(
    trust_coefficient: chex.Numeric = 1.0,
    eps: chex.Numeric = 0.0,
    mask: chex.ArrayTree | Callable[[Any], Any] | None = None,
) -> GradientTransformation:
    """Scale each leaf's update by the ratio of the parameter norm to the update norm.

    ::

        u <- u * trust_coefficient * ||theta|| / (||u|| + eps)

    per leaf ("layer"), with ratio 1 when ``||theta||`` or ``||u||`` is zero
    (You et al., 2017, "Large Batch Training of Convolutional Networks" (LARS);
    You et al., 2020, "Large Batch Optimization for Deep Learning" (LAMB)).

    Args:
      trust_coefficient: positive multiplier of the ratio (LARS' ``eta``).
      eps: non-negative term added to the update norm.
      mask: a tree of bools with the structure of the params (or a function of
        the params returning one); leaves marked ``False`` are left unscaled.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_trust_ratio
      >>> tx = scale_by_trust_ratio()
      >>> p = jnp.array([3.0, 4.0])
      >>> tx.update(jnp.array([0.0, 0.5]), tx.init(p), p)[0]  # 5 / 0.5 = 10
      Array([0., 5.], dtype=float32)
    """
    _checks.positive("trust_coefficient", trust_coefficient, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "scale_by_trust_ratio", allow_complex=False)
        on = _checks.resolve_mask(mask, params, "scale_by_trust_ratio")

        def step(u, p, active):
            if not active:
                return u
            p_norm, u_norm = _tree.leaf_norm(p), _tree.leaf_norm(u)
            dtype = _tree.promote(p_norm.dtype, u_norm.dtype)
            p_norm, u_norm = p_norm.astype(dtype), u_norm.astype(dtype)
            ratio = (
                jnp.asarray(trust_coefficient).astype(dtype)
                * p_norm
                / (u_norm + jnp.asarray(eps).astype(dtype))
            )
            ratio = jnp.where((p_norm == 0) | (u_norm == 0), jnp.ones([], dtype), ratio)
            return (_tree.to_compute(u).astype(dtype) * ratio).astype(u.dtype)

        return _tree.map_inexact(step, updates, params, on), state

    return transformation(init_empty_state, update_fn, per_leaf="scale_by_trust_ratio")
