"""Layer-wise trust-ratio scaling (LARS, LAMB)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import EmptyState, GradientTransformation


def _norm(x: chex.Array) -> chex.Array:
    x32 = _tree.to_compute(x)
    return jnp.sqrt(jnp.sum(jnp.square(x32)))


def scale_by_trust_ratio(trust_coefficient: chex.Numeric = 1.0, eps: chex.Numeric = 0.0,
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
      >>> from gradxform.transforms.trust_ratio import scale_by_trust_ratio
      >>> tx = scale_by_trust_ratio()
      >>> p = jnp.array([3.0, 4.0])
      >>> tx.update(jnp.array([0.0, 0.5]), tx.init(p), p)[0]  # 5 / 0.5 = 10
      Array([0., 5.], dtype=float32)
    """
    _checks.positive("trust_coefficient", trust_coefficient, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)

    def init_fn(params):
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _tree.check_params(updates, params, "scale_by_trust_ratio", allow_complex=False)
        on = _tree.resolve_mask(mask, params, "scale_by_trust_ratio")

        def step(u, p, active):
            if not active:
                return u
            p_norm, u_norm = _norm(p), _norm(u)
            dtype = _tree.promote(p_norm.dtype, u_norm.dtype)
            p_norm, u_norm = p_norm.astype(dtype), u_norm.astype(dtype)
            ratio = (jnp.asarray(trust_coefficient).astype(dtype) * p_norm
                     / (u_norm + jnp.asarray(eps).astype(dtype)))
            ratio = jnp.where((p_norm == 0) | (u_norm == 0), jnp.ones([], dtype), ratio)
            return (_tree.to_compute(u).astype(dtype) * ratio).astype(u.dtype)

        return _tree.map_inexact(step, updates, params, on), state

    return GradientTransformation(init_fn, update_fn)

