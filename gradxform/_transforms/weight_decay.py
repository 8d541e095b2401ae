"""Weight decay."""

from __future__ import annotations

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
    Mask,
    ScalarOrSchedule,
    init_empty_state,
    transformation,
)
from gradxform._transforms.scaling import scale, scale_by_learning_rate


def add_decayed_weights(
    weight_decay: chex.Numeric = 0.0, mask: Mask = None
) -> GradientTransformation:
    """Add ``weight_decay * params`` to the updates: ``u <- u + lambda * theta``.

    Placed before the learning-rate scaling of an adaptive method this is
    *decoupled* weight decay (Loshchilov & Hutter, 2019, "Decoupled Weight
    Decay Regularization"): the decay is multiplied by the learning rate but not
    divided by the adaptive denominator, as in torch.optim.AdamW and optax.
    Placed first, before the adaptive scaling, it is classic L2 regularisation.

    Args:
      weight_decay: non-negative decay rate ``lambda``.
      mask: a tree of bools with the structure of the params (or a function of
        the params returning one); leaves marked ``False`` are not decayed.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.add_decayed_weights(0.5)
      >>> p = jnp.array([2.0])
      >>> tx.update(jnp.array([1.0]), tx.init(p), p)[0]
      Array([2.], dtype=float32)
    """
    _checks.non_negative("weight_decay", weight_decay, allow_schedule=False)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "add_decayed_weights")
        decay = _checks.resolve_mask(mask, params, "add_decayed_weights")

        def step(u, p, on):
            if not on:
                return u
            dtype = _tree.promote(_tree.compute_dtype(u.dtype), p.dtype)
            wd = jnp.asarray(weight_decay).astype(dtype)
            return (u.astype(dtype) + wd * p.astype(dtype)).astype(u.dtype)

        return _tree.map_inexact(step, updates, params, decay), state

    per_leaf = None if mask is None else "add_decayed_weights(mask=...)"
    return transformation(init_empty_state, update_fn, per_leaf=per_leaf)


def decoupled_decay(
    learning_rate: ScalarOrSchedule, weight_decay: chex.Numeric, mask: Mask, scale_decay_by_lr: bool
) -> tuple[GradientTransformation, ...]:
    """The tail of a decoupled-decay chain.

    ``-eta (d + lambda theta)`` with ``scale_decay_by_lr``, else ``-eta d - lambda theta``.
    """
    if scale_decay_by_lr:
        return (add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))
    return (
        scale_by_learning_rate(learning_rate, flip_sign=False),
        add_decayed_weights(weight_decay, mask),
        scale(-1.0),
    )
