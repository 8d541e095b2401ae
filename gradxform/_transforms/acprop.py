"""ACProp: AdaBelief's centred second moment, applied asynchronously."""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp

from gradxform import _tree
from gradxform._base import GradientTransformation, transformation
from gradxform._transforms.adam import (
    check_moment_args,
    check_moment_updates,
    direction,
    init_moments,
)
from gradxform._transforms.adam_variants import ScaleByBeliefState


def scale_by_acprop(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-16,
    eps_root: chex.Numeric = 1e-16,
    *,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """ACProp's scaling (Zhuang, Ding, Tang, Dvornek, Tatikonda & Duncan, 2021, "Momentum
    Centering and Asynchronous Update for Adaptive Gradient Methods").

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        s_t = b2 * s_{t-1} + (1 - b2) * |g_t - m_{t-1}|**2 + eps_root
        u_t = g_t / (sqrt(s_{t-1} / (1 - b2**(t-1))) + eps)      (u_1 = g_1 / (1 + eps))

    The denominator is that of the previous step ("asynchronous": it does not contain
    ``g_t``), and the second moment is centred on the first moment, as AdaBelief's. As
    ``optax.contrib.scale_by_acprop``, whose state this is (:class:`ScaleByBeliefState`):
    the belief is centred on ``m_{t-1}``, the first moment before this step's gradient,
    and the numerator is the gradient itself. Complex gradients are supported as
    AdaBelief's are.

    Args:
      b1: decay of the first moment, in ``[0, 1)``.
      b2: decay of the belief ``s``, in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added to ``s`` at every step.
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      nu_dtype: dtype of ``s``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_acprop
      >>> tx = scale_by_acprop(b1=0.5, b2=0.5, eps=0.0, eps_root=0.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([4.0]), state)  # first step: the gradient itself
      >>> u, state = tx.update(jnp.array([3.0]), state)  # s_1 = 0.5 * 16, s^_1 = 16
      >>> u
      Array([0.75], dtype=float32)
    """
    mu_dtype, nu_dtype = check_moment_args(b1, b2, eps, eps_root, mu_dtype, nu_dtype)

    def init_fn(params):
        return ScaleByBeliefState(*init_moments(params, mu_dtype, nu_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_moment_updates(updates, state.mu, "scale_by_acprop", mu_dtype)
        first = state.count == 0
        count = _tree.safe_increment(state.count)
        mu = _tree.update_moment(state.mu, updates, b1, 1)

        def surprise(g, m):
            g32, m32 = _tree.to_compute(g), _tree.to_compute(m)
            dtype = _tree.promote(g32.dtype, m32.dtype)
            return g32.astype(dtype) - m32.astype(dtype)

        previous = _tree.map_inexact(_tree.real_part, state.nu)
        nu32 = _tree.update_moment(previous, _tree.map_inexact(surprise, updates, state.mu), b2, 2)
        nu32 = _tree.map_inexact(lambda s: s + jnp.asarray(eps_root).astype(s.dtype), nu32)
        # The previous step's belief, bias-corrected; 1 before any step (u_1 = g_1 / (1 + eps)).
        nu_hat = _tree.map_inexact(
            lambda s: jnp.where(first, jnp.ones([], s.dtype), s),
            _tree.bias_correction(previous, b2, state.count),
        )
        out = direction(updates, _tree.map_inexact(_tree.to_compute, updates), nu_hat, eps, 0.0)
        nu = _tree.map_inexact(_tree.cast_like, nu32, state.nu)
        return out, ScaleByBeliefState(count=count, mu=mu, nu=nu)

    return transformation(init_fn, update_fn)
