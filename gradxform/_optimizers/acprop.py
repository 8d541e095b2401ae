"""ACProp as a named optimizer."""

from __future__ import annotations

from typing import Any

import chex

from gradxform import _checks
from gradxform._base import GradientTransformation, Mask, ScalarOrSchedule, chain
from gradxform._transforms.acprop import scale_by_acprop
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.weight_decay import add_decayed_weights


def acprop(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-16,
    eps_root: chex.Numeric = 1e-16,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask = None,
    *,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """ACProp (Zhuang et al., 2021, "Momentum Centering and Asynchronous Update for Adaptive
    Gradient Methods"), with decoupled weight decay.

    ::

        theta_t = theta_{t-1} - eta_t * (u_t + lambda * theta_{t-1})   (u_t: see scale_by_acprop)

    As ``optax.contrib.acprop``: the decay ``lambda`` is multiplied by the learning rate.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: decay of the first moment, in ``[0, 1)``.
      b2: decay of the belief, in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added to the belief at every step.
      weight_decay: non-negative ``lambda``, or a schedule of it.
      mask: which leaves to decay (tree of bools or a function of the params).
      mu_dtype: dtype of the first moment.
      nu_dtype: dtype of the belief.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import acprop
      >>> p = jnp.array([2.0])
      >>> tx = acprop(0.1, eps=0.0, weight_decay=0.5)
      >>> tx.update(jnp.array([3.0]), tx.init(p), p)[0]  # -0.1 * (3 / 1 + 0.5 * 2)
      Array([-0.4], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_acprop(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
