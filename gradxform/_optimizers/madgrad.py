"""MADGRAD as a named optimizer."""

from __future__ import annotations

from gradxform import _checks
from gradxform._base import GradientTransformation, ScalarOrSchedule, chain
from gradxform._transforms.madgrad import check_madgrad_args, scale_by_madgrad
from gradxform._transforms.weight_decay import add_decayed_weights


def madgrad(
    learning_rate: ScalarOrSchedule,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    eps: float = 1e-6,
) -> GradientTransformation:
    """MADGRAD (Defazio & Jelassi, 2021, "Adaptivity without Compromise: A Momentumized,
    Adaptive, Dual Averaged Gradient Method for Stochastic Optimization").

    ::

        g_k <- g_k + weight_decay * x_k             (L2, added to the gradient)
        x_{k+1} = x_k + u_k                         (u_k: see scale_by_madgrad)

    As ``optax.contrib.madgrad`` and the authors' ``madgrad.MADGRAD(lr, momentum,
    weight_decay, eps)``; see :func:`scale_by_madgrad` for where ``x_0`` comes from.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      momentum: in ``[0, 1)``.
      weight_decay: non-negative L2 coefficient.
      eps: non-negative term added to the learning rate and to the cube root.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import madgrad
      >>> p = jnp.ones(1)
      >>> tx = madgrad(1.0, momentum=0.0, weight_decay=1.0, eps=0.0)
      >>> tx.update(jnp.array([7.0]), tx.init(p), p)[0]  # g = 7 + 1: -8 / cbrt(64)
      Array([-2.], dtype=float32)
    """
    check_madgrad_args(learning_rate, momentum, eps)
    _checks.non_negative("weight_decay", weight_decay, allow_schedule=False)
    return chain(
        add_decayed_weights(weight_decay),
        scale_by_madgrad(learning_rate=learning_rate, momentum=momentum, eps=eps),
    )
