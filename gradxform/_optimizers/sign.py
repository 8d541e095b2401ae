"""Sign methods: signSGD, Signum and Lion."""

from __future__ import annotations

from typing import Any

import chex

from gradxform import _checks
from gradxform._base import (
    GradientTransformation,
    Mask,
    ScalarOrSchedule,
    chain,
)
from gradxform._transforms.momentum import scale_by_momentum
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.sign import scale_by_lion, scale_by_sign
from gradxform._transforms.weight_decay import decoupled_decay


def lion(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.99,
    mu_dtype: Any | None = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: Mask = None,
    *,
    scale_decay_by_lr: bool = True,
) -> GradientTransformation:
    """Lion, EvoLved Sign Momentum (Chen et al., 2023, "Symbolic Discovery of Optimization
    Algorithms", Algorithm 2).

    ::

        c_t = b1 * m_{t-1} + (1 - b1) * g_t
        theta_t = theta_{t-1} - eta * (sign(c_t) + lambda * theta_{t-1})
        m_t = b2 * m_{t-1} + (1 - b2) * g_t

    As ``optax.lion`` and ``keras.optimizers.Lion(weight_decay=lambda)``. Every
    coordinate moves by exactly ``eta`` (plus the decay), so Lion's learning
    rate is typically 3-10 times smaller than AdamW's.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: interpolation factor in ``[0, 1)``.
      b2: momentum decay in ``[0, 1)``.
      mu_dtype: dtype of the momentum.
      weight_decay: non-negative decoupled decay ``lambda``, or a schedule of it.
      mask: which leaves to decay (tree of bools or a function of the params).
      scale_decay_by_lr: multiply the decay by the learning rate.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import lion
      >>> p = jnp.array([1.0, 1.0])
      >>> tx = lion(0.1, weight_decay=0.0)
      >>> tx.update(jnp.array([0.01, -5.0]), tx.init(p), p)[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.decay_rate("b1", b1, allow_schedule=False)
    _checks.decay_rate("b2", b2, allow_schedule=False)
    _checks.canonical_dtype(mu_dtype, "mu_dtype")
    _checks.non_negative("weight_decay", weight_decay)
    _checks.boolean("scale_decay_by_lr", scale_decay_by_lr)
    return chain(
        scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
        *decoupled_decay(learning_rate, weight_decay, mask, scale_decay_by_lr),
    )


def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """signSGD (Bernstein et al., 2018, "signSGD: Compressed Optimisation for Non-Convex Problems").

    ::

        theta_t = theta_{t-1} - eta * sign(g_t)

    As ``optax.sign_sgd``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import sign_sgd
      >>> tx = sign_sgd(0.5)
      >>> tx.update(jnp.array([-3.0, 0.0, 0.1]), tx.init(jnp.zeros(3)))[0]
      Array([ 0.5, -0. , -0.5], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


def signum(
    learning_rate: ScalarOrSchedule,
    beta: chex.Numeric = 0.9,
    accumulator_dtype: Any | None = None,
) -> GradientTransformation:
    """Signum, signSGD with momentum (Bernstein et al., 2018, Algorithm 3).

    ::

        m_t = beta * m_{t-1} + (1 - beta) * g_t
        theta_t = theta_{t-1} - eta * sign(m_t)

    As ``optax.signum``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      beta: momentum decay in ``[0, 1)``.
      accumulator_dtype: dtype of the momentum.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import signum
      >>> tx = signum(0.5)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([1.0]), state)
      >>> u, state = tx.update(jnp.array([-0.5]), state)
      >>> u  # m = 0.9 * 0.1 + 0.1 * (-0.5) = 0.04 > 0
      Array([-0.5], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.decay_rate("beta", beta, allow_schedule=False)
    _checks.canonical_dtype(accumulator_dtype, "accumulator_dtype")
    return chain(
        scale_by_momentum(beta, ema=True, accumulator_dtype=accumulator_dtype),
        scale_by_sign(),
        scale_by_learning_rate(learning_rate),
    )
