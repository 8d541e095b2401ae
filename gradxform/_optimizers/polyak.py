"""SGD with Polyak's step size (see ``_transforms.polyak``)."""

from __future__ import annotations

import chex

from gradxform import _checks
from gradxform._base import GradientTransformation, ScalarOrSchedule, chain
from gradxform._transforms.polyak import scale_by_polyak
from gradxform._transforms.scaling import scale_by_learning_rate


def polyak_sgd(
    max_learning_rate: chex.Numeric = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: chex.Numeric = 0.0,
    eps: chex.Numeric = 0.0,
    variant: str = "sps",
) -> GradientTransformation:
    """SGD with Polyak's step size, SPS_max (Loizou, Vaswani, Laradji & Lacoste-Julien,
    2021, "Stochastic Polyak Step-size for SGD"; Berrada, Zisserman & Kumar, 2020).

    ::

        u_t = -s_t g_t
        x_{t+1} = x_t + min(gap_t / (||u_t||**2 + eps), max_learning_rate) * u_t
        gap_t = f(x_t) - f_min  ("sps"),   max(f(x_t) - f_min, 0)  ("sps+")

    As in optax, the scaling ``s_t`` is applied first and Polyak's step is taken of the
    scaled gradient, so for ``s_t = 1`` the step is ``min((f - f_min) / (||g||**2 + eps),
    max_learning_rate) g``, the paper's SPS_max with ``c = 1``. No step is taken when
    ``||u_t||**2 + eps`` is below 2.2e-16. The loss is passed as
    ``update(..., value=loss)``.

    Args:
      max_learning_rate: positive cap ``gamma_b`` on the step size (``math.inf``: none).
      scaling: ``s_t``, a non-negative float, JAX scalar or schedule.
      f_min: a lower bound ``f*`` on the loss (0 for a model that interpolates its data).
      eps: non-negative term added to the squared norm.
      variant: ``"sps"`` or ``"sps+"`` (Garrigos et al., 2023: the positive part of the gap).

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> f = lambda x: jnp.sum(x**2)
      >>> params = jnp.array([1.0, 2.0, 3.0])
      >>> tx = gx.polyak_sgd()
      >>> loss, grads = jax.value_and_grad(f)(params)
      >>> updates, state = tx.update(grads, tx.init(params), params, value=loss)
      >>> gx.apply_updates(params, updates).round(4)  # 14 / 56 of the gradient
      Array([0.5, 1. , 1.5], dtype=float32)
    """
    _checks.non_negative("scaling", scaling)
    return chain(
        scale_by_learning_rate(scaling),
        scale_by_polyak(f_min=f_min, max_learning_rate=max_learning_rate, eps=eps, variant=variant),
    )
