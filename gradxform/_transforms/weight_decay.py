"""Weight decay."""

from __future__ import annotations

from typing import NamedTuple

import chex

from gradxform import _checks, _tree
from gradxform._base import (
    EmptyState,
    GradientTransformation,
    Mask,
    ScalarOrSchedule,
    transformation,
)
from gradxform._transforms.scaling import scale_by_learning_rate

AddDecayedWeightsState = EmptyState
"""The state of :func:`add_decayed_weights` with a constant decay (optax's name for it)."""


class WeightDecaySchedule(NamedTuple):
    """The state of :func:`add_decayed_weights` with a scheduled decay: the step count."""

    count: chex.Array


def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0, mask: Mask = None
) -> GradientTransformation:
    """Add ``weight_decay * params`` to the updates: ``u <- u + lambda_t * theta``.

    Placed before the learning-rate scaling of an adaptive method this is
    *decoupled* weight decay (Loshchilov & Hutter, 2019, "Decoupled Weight
    Decay Regularization"): the decay is multiplied by the learning rate but not
    divided by the adaptive denominator, as in torch.optim.AdamW and optax.
    Placed first, before the adaptive scaling, it is classic L2 regularisation.

    ``weight_decay`` may be a schedule ``step -> lambda_t`` (``t = 0`` at the
    first update); the state then counts the updates
    (:class:`WeightDecaySchedule`), as in optax.

    Args:
      weight_decay: non-negative decay rate ``lambda``, or a schedule of it.
      mask: a tree of bools with the structure of the params (or a function of
        the params returning one); leaves marked ``False`` are not decayed.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.add_decayed_weights(0.5)
      >>> p = jnp.array([2.0])
      >>> tx.update(jnp.array([1.0]), tx.init(p), p)[0]
      Array([2.], dtype=float32)
    """
    _checks.non_negative("weight_decay", weight_decay)
    scheduled = callable(weight_decay)

    def init_fn(params):
        del params
        return WeightDecaySchedule(count=_tree.zero_count()) if scheduled else EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if updates is None:  # no updates at all (optax returns None too)
            return None, _next(state)
        _checks.check_params(updates, params, "add_decayed_weights")
        decay = _checks.resolve_mask(mask, params, "add_decayed_weights")
        rate = weight_decay(state.count) if scheduled else weight_decay  # type: ignore[operator]

        def step(u, p, on):
            if not on:
                return u
            dtype = _tree.promote(_tree.compute_dtype(u.dtype), p.dtype)
            wd = _tree.astype(rate, dtype)
            return _tree.astype(_tree.astype(u, dtype) + wd * _tree.astype(p, dtype), u.dtype)

        return _tree.map_inexact(step, updates, params, decay), _next(state)

    def _next(state):
        return WeightDecaySchedule(count=_tree.safe_increment(state.count)) if scheduled else state

    per_leaf = None if mask is None else "add_decayed_weights(mask=...)"
    return transformation(init_fn, update_fn, per_leaf=per_leaf)


def decoupled_decay(
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule,
    mask: Mask,
    scale_decay_by_lr: bool,
) -> tuple[GradientTransformation, ...]:
    """The tail of a decoupled-decay chain.

    ``-eta (d + lambda theta)`` with ``scale_decay_by_lr``, else ``-eta d - lambda theta``.
    """
    if scale_decay_by_lr:
        return (add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))
    return (
        scale_by_learning_rate(learning_rate, flip_sign=False),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(1.0),  # negation; integer leaves pass through
    )
