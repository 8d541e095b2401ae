"""SM3 as a named optimizer."""

from __future__ import annotations

import chex

from gradxform import _checks
from gradxform._base import GradientTransformation, ScalarOrSchedule, chain
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.sm3 import scale_by_sm3


def sm3(learning_rate: ScalarOrSchedule, momentum: chex.Numeric = 0.9) -> GradientTransformation:
    """SM3 (Anil, Gupta, Koren & Singer, 2019, "Memory-Efficient Adaptive Optimization").

    ::

        theta_t = theta_{t-1} - eta_t * m_t        (m_t: see scale_by_sm3, b2 = 1)

    An AdaGrad-like method whose second-moment memory is one vector per axis of each
    leaf (``n + m`` numbers for an ``n x m`` matrix instead of ``n m``). As
    ``optax.sm3`` (which also accepts a schedule here) and ``pytorch_optimizer.SM3(lr,
    momentum=momentum, beta=0.0, eps=1e-8)``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      momentum: decay of the momentum of the scaled gradients, in ``[0, 1)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import sm3
      >>> tx = sm3(0.1, momentum=0.0)
      >>> tx.update(jnp.array([4.0, -0.5]), tx.init(jnp.zeros(2)))[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.decay_rate("momentum", momentum, allow_schedule=False)
    return chain(scale_by_sm3(momentum), scale_by_learning_rate(learning_rate))
