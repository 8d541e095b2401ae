"""Sign-based scalings: signSGD / Signum and Lion."""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, init_empty_state, transformation


def scale_by_sign() -> GradientTransformation:
    """Replace every update by its sign (Bernstein et al., 2018, "signSGD").

    ::

        u_t = sign(g_t)        (sign(0) = 0)

    Real leaves only: a complex update raises a ``TypeError`` (``jnp.sign`` of a
    complex number is ``z / |z|``, not the sign of its real and imaginary parts).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_sign
      >>> tx = scale_by_sign()
      >>> tx.update(jnp.array([-3.0, 0.0, 0.5]), tx.init(jnp.zeros(3)))[0]
      Array([-1.,  0.,  1.], dtype=float32)
    """

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        # jnp.sign(z) = z / |z| for complex z is not the sign of the real view.
        _checks.check_real(updates, what="scale_by_sign updates")
        return _tree.map_inexact(jnp.sign, updates), state

    return transformation(init_empty_state, update_fn)


class ScaleByLionState(NamedTuple):
    """The momentum ``m`` (an average of the gradients with decay ``b2``)."""

    mu: chex.ArrayTree


def scale_by_lion(
    b1: chex.Numeric = 0.9, b2: chex.Numeric = 0.99, *, mu_dtype: Any | None = None
) -> GradientTransformation:
    """Lion's sign of an interpolated momentum (Chen et al., 2023, "Symbolic Discovery of
    Optimization Algorithms").

    ::

        c_t = b1 * m_{t-1} + (1 - b1) * g_t
        u_t = sign(c_t)
        m_t = b2 * m_{t-1} + (1 - b2) * g_t

    Args:
      b1: interpolation factor for the update, in ``[0, 1)``.
      b2: decay of the momentum, in ``[0, 1)``.
      mu_dtype: dtype of ``m``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_lion
      >>> tx = scale_by_lion()
      >>> state = tx.init(jnp.zeros(2))
      >>> u, state = tx.update(jnp.array([1.0, -1.0]), state)
      >>> u, state = tx.update(jnp.array([-0.05, -0.05]), state)
      >>> u  # c = 0.9 * (0.01, -0.01) + 0.1 * (-0.05, -0.05) = (0.004, -0.014)
      Array([ 1., -1.], dtype=float32)
    """
    _checks.decay_rate("b1", b1, allow_schedule=False)
    _checks.decay_rate("b2", b2, allow_schedule=False)
    mu_dtype = _checks.canonical_dtype(mu_dtype, "mu_dtype")

    def init_fn(params):
        return ScaleByLionState(mu=_tree.zeros_like(params, mu_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_updates(updates, state.mu, "scale_by_lion")
        interpolated = _tree.update_moment(
            _tree.map_inexact(_tree.to_compute, state.mu), updates, b1
        )
        out = _tree.map_inexact(lambda g, c: jnp.sign(c).astype(g.dtype), updates, interpolated)
        return out, ScaleByLionState(mu=_tree.update_moment(state.mu, updates, b2))

    return transformation(init_fn, update_fn)
