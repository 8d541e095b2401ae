"""Adam and its decoupled-weight-decay variant AdamW."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex

from gradxform._base import GradientTransformation, ScalarOrSchedule, chain
from gradxform.transforms.decay import add_decayed_weights
from gradxform.transforms.moments import scale_by_adam
from gradxform.transforms.scaling import scale_by_learning_rate


def adam(learning_rate: ScalarOrSchedule, b1: chex.Numeric = 0.9, b2: chex.Numeric = 0.999,
         eps: chex.Numeric = 1e-8, eps_root: chex.Numeric = 0.0, *, nesterov: bool = False,
         mu_dtype: Any | None = None) -> GradientTransformation:
    """Adam (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization").

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * g_t**2
        theta_t = theta_{t-1} - eta * m_t / (1 - b1**t)
                                  / (sqrt(v_t / (1 - b2**t) + eps_root) + eps)

    Identical to ``torch.optim.Adam(lr, betas=(b1, b2), eps)`` and ``optax.adam``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      nesterov: Nesterov first moment (NAdam in optax's simplified form).
      mu_dtype: dtype of the first moment (for example ``jnp.bfloat16`` to save memory).

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> params = {"w": jnp.array([1.0, -1.0])}
      >>> tx = gx.adam(0.1)
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([0.3, -0.2])}
      >>> updates, state = tx.update(grads, state, params)
      >>> gx.apply_updates(params, updates)
      {'w': Array([ 0.9, -0.9], dtype=float32)}
    """
    return chain(scale_by_adam(b1, b2, eps, eps_root, nesterov=nesterov, mu_dtype=mu_dtype),
                 scale_by_learning_rate(learning_rate))


def adamw(learning_rate: ScalarOrSchedule, b1: chex.Numeric = 0.9, b2: chex.Numeric = 0.999,
          eps: chex.Numeric = 1e-8, eps_root: chex.Numeric = 0.0,
          weight_decay: chex.Numeric = 1e-4,
          mask: chex.ArrayTree | Callable[[Any], Any] | None = None, *,
          nesterov: bool = False, mu_dtype: Any | None = None) -> GradientTransformation:
    """AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    ::

        d_t = m^_t / (sqrt(v^_t + eps_root) + eps)      (Adam's direction)
        theta_t = theta_{t-1} - eta * (d_t + lambda * theta_{t-1})

    The decay ``lambda`` is multiplied by the learning rate, as in
    ``torch.optim.AdamW`` and ``optax.adamw`` (the paper's schedule multiplier
    is the learning-rate schedule itself). Note the default ``weight_decay``
    follows optax (1e-4); torch's default is 1e-2.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      weight_decay: non-negative ``lambda``.
      mask: which leaves to decay (tree of bools or a function of the params).
      nesterov: Nesterov first moment.
      mu_dtype: dtype of the first moment.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> params = jnp.array([1.0])
      >>> tx = gx.adamw(0.5, weight_decay=0.5)
      >>> updates, _ = tx.update(jnp.array([2.0]), tx.init(params), params)
      >>> updates.round(5)  # -0.5 * (sign(2.0) + 0.5 * 1.0): Adam's first step is the sign
      Array([-0.75], dtype=float32)
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, nesterov=nesterov, mu_dtype=mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
