"""COCOB-Backprop: coin betting without a learning rate (see ``_transforms.cocob``)."""

from __future__ import annotations

import chex

from gradxform import _checks
from gradxform._base import GradientTransformation, Mask, ScalarOrSchedule, chain
from gradxform._transforms.cocob import scale_by_cocob
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.weight_decay import add_decayed_weights


def cocob(
    learning_rate: ScalarOrSchedule = 1.0,
    alpha: chex.Numeric = 100.0,
    eps: chex.Numeric = 1e-8,
    weight_decay: chex.Numeric = 0.0,
    mask: Mask = None,
) -> GradientTransformation:
    """COCOB-Backprop (Orabona & Tommasi, 2017, "Training Deep Networks without Learning
    Rates Through Coin Betting", Algorithm 2).

    ::

        g_t <- s_t * (g_t + lambda x_t)
        x_{t+1} = x_0 + theta_t / (L_t max(G_t + L_t, alpha L_t)) * (L_t + Reward_t)

    with ``theta``, ``L``, ``G`` and ``Reward`` the sums and maxima of
    :func:`scale_by_cocob`, coordinate by coordinate. As in optax, ``learning_rate``
    ``s_t`` multiplies the gradients before the bet (1: the parameter-free method).

    Args:
      learning_rate: ``s_t``, a non-negative float, JAX scalar or schedule.
      alpha: non-negative bet limit ``alpha`` (the paper uses 100).
      eps: non-negative initial ``L_0``.
      weight_decay: non-negative L2 coefficient ``lambda``.
      mask: which leaves to decay (tree of bools or a function of the params).

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> f = lambda x: jnp.sum(x**2)
      >>> params = jnp.array([1.0, -2.0])
      >>> tx = gx.cocob()
      >>> updates, state = tx.update(jax.grad(f)(params), tx.init(params), params)
      >>> updates  # the first bet: -sign(g) / alpha
      Array([-0.01,  0.01], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.non_negative("weight_decay", weight_decay, allow_schedule=False)
    return chain(
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate, flip_sign=False),
        scale_by_cocob(alpha, eps),
    )
