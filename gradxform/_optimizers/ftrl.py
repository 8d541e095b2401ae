"""Follow The Regularized Leader."""

from __future__ import annotations

from typing import Any

import chex

from gradxform import _checks
from gradxform._base import (
    GradientTransformation,
    ScalarOrSchedule,
    chain,
)
from gradxform._transforms.ftrl import scale_by_ftrl


def ftrl(
    learning_rate: ScalarOrSchedule,
    learning_rate_power: chex.Numeric = -0.5,
    initial_accumulator_value: chex.Numeric = 0.1,
    l1: chex.Numeric = 0.0,
    l2: chex.Numeric = 0.0,
    l2_shrinkage: chex.Numeric = 0.0,
    beta: chex.Numeric = 0.0,
    *,
    proximal_center: str = "origin",
    accumulator_dtype: Any | None = None,
) -> GradientTransformation:
    """FTRL-Proximal (McMahan et al., 2013, "Ad Click Prediction: a View from the Trenches").

    ::

        n_t = n_{t-1} + g_t**2,   sigma_t = (sqrt(n_t) - sqrt(n_{t-1})) / alpha
        z_t = z_{t-1} + g_t + 2 l2_shrinkage w_t - sigma_t w_t
        w_{t+1} = 0 if |z_t| <= l1 else -(z_t - l1 sign(z_t)) / ((beta + sqrt(n_t)) / alpha + 2 l2)

    (``sqrt`` is the power ``-learning_rate_power``.) Weights whose
    accumulated gradient ``|z|`` stays within ``l1`` are exactly zero.
    Identical to ``keras.optimizers.Ftrl`` with the same arguments
    (``l1_regularization_strength``, ``l2_regularization_strength``,
    ``l2_shrinkage_regularization_strength``). See :func:`scale_by_ftrl` for
    ``proximal_center``.

    Args:
      learning_rate: positive ``alpha``, a float, JAX scalar or schedule.
      learning_rate_power: non-positive power; -0.5 is the paper's.
      initial_accumulator_value: non-negative ``n_0``.
      l1: non-negative L1 strength.
      l2: non-negative L2 strength.
      l2_shrinkage: non-negative L2 shrinkage strength.
      beta: non-negative ``beta``.
      proximal_center: ``"origin"`` (paper, keras) or ``"params"``.
      accumulator_dtype: dtype of ``n`` and ``z``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradxform as gx
      >>> from gradxform import ftrl
      >>> w = jnp.zeros(2)
      >>> tx = ftrl(1.0, initial_accumulator_value=0.0, l1=1.0)
      >>> u, _ = tx.update(jnp.array([0.5, -4.0]), tx.init(w), w)
      >>> gx.apply_updates(w, u)  # (0, -(-4 + 1) / 4)
      Array([0.  , 0.75], dtype=float32)
    """
    _checks.positive("learning_rate", learning_rate)
    _checks.number("learning_rate_power", learning_rate_power, high=0.0, allow_schedule=False)
    _checks.non_negative(
        "initial_accumulator_value", initial_accumulator_value, allow_schedule=False
    )
    for name, value in (("l1", l1), ("l2", l2), ("l2_shrinkage", l2_shrinkage), ("beta", beta)):
        _checks.non_negative(name, value, allow_schedule=False)
    _checks.one_of("proximal_center", proximal_center, ("origin", "params"))
    _checks.canonical_dtype(accumulator_dtype, "accumulator_dtype")
    return chain(
        scale_by_ftrl(
            learning_rate=learning_rate,
            learning_rate_power=learning_rate_power,
            initial_accumulator_value=initial_accumulator_value,
            l1=l1,
            l2=l2,
            l2_shrinkage=l2_shrinkage,
            beta=beta,
            proximal_center=proximal_center,
            accumulator_dtype=accumulator_dtype,
        )
    )
