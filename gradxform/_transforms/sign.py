"""Sign-based scalings: signSGD / Signum and Lion.

Real leaves only: the sign of a complex number has no single meaning
(``jnp.sign(z)`` is the phase ``z / |z|``, not the signs of the real and
imaginary parts that the real methods would take), so complex leaves raise.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, init_empty_state, transformation

_NO_COMPLEX_SIGN = (
    "the sign of a complex number has no single meaning: jnp.sign(z) is the phase z / |z|, "
    "not the signs of the real and imaginary parts"
)
_LION_MODES = ("hard", "smooth", "refined")


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
        _checks.check_real(updates, what="scale_by_sign updates", reason=_NO_COMPLEX_SIGN)
        return _tree.map_inexact(jnp.sign, updates), state

    return transformation(init_empty_state, update_fn)


class ScaleByLionState(NamedTuple):
    """Step count and the momentum ``mu`` (an average of the gradients with decay ``b2``)."""

    count: chex.Array
    mu: chex.ArrayTree


def scale_by_lion(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.99,
    mu_dtype: Any | None = None,
    *,
    mode: str = "hard",
    smooth_beta: chex.Numeric = 1.0,
) -> GradientTransformation:
    """Lion's sign of an interpolated momentum (Chen et al., 2023, "Symbolic Discovery of
    Optimization Algorithms").

    ::

        c_t = b1 * m_{t-1} + (1 - b1) * g_t
        u_t = sign(c_t)                                  mode="hard" (the paper's)
        u_t = tanh(smooth_beta * c_t)                    mode="smooth"
        u_t = c_t if |c_t| < 1 else sign(c_t)            mode="refined"
        m_t = b2 * m_{t-1} + (1 - b2) * g_t

    The modes and ``smooth_beta`` are optax's. Real leaves only: a complex
    update raises a ``TypeError`` naming its key path.

    Args:
      b1: interpolation factor for the update, in ``[0, 1)``.
      b2: decay of the momentum, in ``[0, 1)``.
      mu_dtype: real dtype of ``m``; default: each parameter's dtype.
      mode: ``"hard"``, ``"smooth"`` or ``"refined"`` (see above).
      smooth_beta: positive slope of the ``tanh`` of ``mode="smooth"``.

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
    mu_dtype = _checks.canonical_dtype(mu_dtype, "mu_dtype", real_only=_NO_COMPLEX_SIGN)
    _checks.one_of("mode", mode, _LION_MODES)
    _checks.positive("smooth_beta", smooth_beta, allow_schedule=False)

    def init_fn(params):
        _checks.check_real(params, what="scale_by_lion params", reason=_NO_COMPLEX_SIGN)
        return ScaleByLionState(count=_tree.zero_count(), mu=_tree.zeros_like(params, mu_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_updates(updates, state.mu, "scale_by_lion", allow_complex=True)
        _checks.check_real(updates, what="scale_by_lion updates", reason=_NO_COMPLEX_SIGN)
        interpolated = _tree.update_moment(
            _tree.map_inexact(_tree.to_compute, state.mu), updates, b1
        )

        def direction(g, c):
            if mode == "smooth":
                u = jnp.tanh(jnp.asarray(smooth_beta).astype(c.dtype) * c)
            elif mode == "refined":
                u = jnp.where(jnp.abs(c) < 1, c, jnp.sign(c))
            else:
                u = jnp.sign(c)
            return u.astype(g.dtype)

        out = _tree.map_inexact(direction, updates, interpolated)
        mu = _tree.update_moment(state.mu, updates, b2)
        return out, ScaleByLionState(count=_tree.safe_increment(state.count), mu=mu)

    return transformation(init_fn, update_fn)
