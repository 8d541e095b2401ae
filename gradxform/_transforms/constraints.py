"""Constraints on the parameters: keep them non-negative."""

from __future__ import annotations

import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import EmptyState, GradientTransformation, init_empty_state, transformation

NonNegativeParamsState = EmptyState
"""The state of :func:`keep_params_nonnegative` (optax's name for it): an :class:`EmptyState`."""


def keep_params_nonnegative() -> GradientTransformation:
    """Change the updates so that the parameters stay non-negative after the step.

    ::

        u <- -theta    where theta + u < 0
        u <- u         elsewhere

    so ``apply_updates(theta, u) >= 0`` (a parameter that would cross zero
    stops at zero). Put it last in a chain, after the learning rate. As in
    optax, a parameter that is already negative is moved to zero. Needs the
    params; integer and boolean leaves pass through.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.keep_params_nonnegative()
      >>> p = jnp.array([1.0, 0.5, 2.0])
      >>> u, _ = tx.update(jnp.array([-2.0, 0.25, -1.0]), tx.init(p), p)
      >>> gx.apply_updates(p, u)
      Array([0.  , 0.75, 1.  ], dtype=float32)
    """

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "keep_params_nonnegative", allow_complex=False)

        def one(u, p):
            dtype = _tree.promote(u.dtype, p.dtype)
            pc, uc = p.astype(dtype), u.astype(dtype)
            return jnp.where(pc + uc < 0, -pc, uc).astype(u.dtype)

        return _tree.map_inexact(one, updates, params), state

    return transformation(init_empty_state, update_fn)
