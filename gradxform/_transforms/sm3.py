"""SM3: an AdaGrad-like second moment kept as one accumulator per axis of each leaf."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, transformation


class ScaleBySM3State(NamedTuple):
    """Per leaf, a list of accumulators (one per axis) ``mu``, and the momentum ``nu`` (optax's)."""

    mu: chex.ArrayTree
    nu: chex.ArrayTree


def _zeros_without_others(p: Any, axis: int) -> chex.Array:
    """Zeros of shape ``(p.shape[axis],)`` in ``p``'s dtype (and, under jit, its layout)."""
    others = tuple(i for i in range(len(p.shape)) if i != axis)
    dtype = _tree.dtype_of(p)
    return jnp.zeros_like(jax.eval_shape(lambda x: jnp.sum(x, axis=others), p), dtype=dtype)


def _accumulators(p: Any) -> list[chex.Array]:
    if not _tree.is_inexact(p):
        return []
    if len(p.shape) == 0:
        return [jnp.zeros_like(p, dtype=_tree.dtype_of(p))]
    return [_zeros_without_others(p, i) for i in range(len(p.shape))]


def _expanded(v: chex.Array, ndim: int, axis: int) -> chex.Array:
    """A per-axis accumulator reshaped to broadcast along ``axis`` of a rank-``ndim`` leaf."""
    return jnp.reshape(v, [1] * axis + [v.shape[0]] + [1] * (ndim - axis - 1))


def scale_by_sm3(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 1.0,
    eps: chex.Numeric = 1e-8,
) -> GradientTransformation:
    """SM3-II's memory-efficient adaptive scaling (Anil, Gupta, Koren & Singer, 2019,
    "Memory-Efficient Adaptive Optimization", Algorithm SM3-II), with momentum.

    A leaf of rank ``k >= 2`` keeps one accumulator per axis, ``mu^(r)`` of length
    ``n_r`` (the cover of the paper is the set of slices of each axis); a vector keeps
    one value per coordinate, as AdaGrad does, and so does a scalar::

        nu'_t(i) = c * g_t(i)**2 + b2 * min_r mu^(r)_{t-1}(i_r)      (c = 1 if b2 = 1, else 1 - b2)
        mu^(r)_t(j) = max over the slice i_r = j of nu'_t(i)
        x_t(i) = g_t(i) / sqrt(nu'_t(i) + eps)    (0 where nu'_t(i) = 0)
        m_t = b1 * m_{t-1} + (1 - b1) * x_t,      u_t = m_t

    With ``b2 = 1`` (the default) ``nu'`` is the paper's running sum; ``b2 < 1`` makes
    it a moving average, as optax allows. As ``optax.scale_by_sm3``, except that scalar
    leaves are accepted (optax's fails on them). Real parameters only, as optax.

    Args:
      b1: momentum decay in ``[0, 1)``.
      b2: decay of the accumulators, in ``[0, 1]``; 1 sums them.
      eps: non-negative term added to ``nu'`` inside the root.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_sm3
      >>> tx = scale_by_sm3(b1=0.0, eps=0.0)
      >>> state = tx.init(jnp.zeros((2, 2)))
      >>> u, state = tx.update(jnp.array([[3.0, 0.0], [0.0, 1.0]]), state)
      >>> u  # the first step of SM3 is the sign of the gradient
      Array([[1., 0.],
             [0., 1.]], dtype=float32)
      >>> state.mu  # row and column maxima of g**2
      [Array([9., 1.], dtype=float32), Array([9., 1.], dtype=float32)]
    """
    _checks.decay_rate("b1", b1, allow_schedule=False)
    _checks.number("b2", b2, low=0.0, high=1.0, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    summed = isinstance(b2, int | float) and b2 == 1

    def init_fn(params):
        return ScaleBySM3State(mu=jax.tree.map(_accumulators, params), nu=_tree.zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_updates(updates, state.nu, "scale_by_sm3")

        def leaf(g, accumulators, m):
            g32 = _tree.to_compute(g)
            dtype = g32.dtype
            k = g32.ndim
            vs = [_tree.to_compute(v).astype(dtype) for v in accumulators]
            if k < 2:
                previous = vs[0]
            else:
                previous = functools.reduce(
                    jnp.minimum, [_expanded(v, k, r) for r, v in enumerate(vs)]
                )
            decay = jnp.asarray(b2, dtype)
            c = jnp.ones([], dtype) if summed else 1 - decay
            nu_prime = c * g32 * g32 + decay * previous
            positive = nu_prime > 0
            safe = jnp.where(positive, nu_prime, jnp.ones([], dtype))
            x = jnp.where(positive, g32 / jnp.sqrt(safe + jnp.asarray(eps, dtype)), 0)
            m_new = _tree.lincomb(b1, m, 1 - jnp.asarray(b1), x.astype(dtype))
            if k < 2:
                new_acc = [nu_prime]
            else:
                new_acc = [
                    jnp.max(nu_prime, axis=tuple(i for i in range(k) if i != r), initial=0)
                    for r in range(k)
                ]
            new_acc = [a.astype(v.dtype) for a, v in zip(new_acc, accumulators, strict=True)]
            return _tree.cast_like(m_new, g), new_acc, m_new

        def per_leaf(g, accumulators, m):
            if not _tree.is_inexact(g):
                return g, accumulators, m
            return leaf(g, accumulators, m)

        out, mu, nu = _tree.map_unzip(per_leaf, updates, state.mu, state.nu)
        return out, ScaleBySM3State(mu=mu, nu=nu)

    # The accumulators are per-axis statistics of each leaf.
    return transformation(init_fn, update_fn, per_leaf="scale_by_sm3")
