"""DoG and DoWG: SGD with a distance-over-gradients step size (see ``_transforms.distance``)."""

from __future__ import annotations

from typing import Any

import chex

from gradxform import _checks
from gradxform._base import GradientTransformation, Mask, ScalarOrSchedule, chain, identity
from gradxform._transforms.distance import scale_by_dog, scale_by_dowg
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.weight_decay import add_decayed_weights


def _decay(weight_decay: Any, mask: Mask) -> GradientTransformation:
    if weight_decay is None:
        return identity()
    _checks.non_negative("weight_decay", weight_decay, allow_schedule=False)
    return add_decayed_weights(weight_decay, mask)


def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: tuple[str, chex.Numeric] = ("heuristic", 1e-6),
    eps: chex.Numeric = 1e-8,
    weight_decay: chex.Numeric | None = None,
    mask: Mask = None,
) -> GradientTransformation:
    """DoG: SGD with the Distance over Gradients step size (Ivgi, Hinder & Carmon, 2023,
    "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size Schedule").

    ::

        g_t <- g_t + lambda x_t                     (weight_decay, if not None)
        r_t = max(r_{t-1}, ||x_t - x_0||),  G_t = G_{t-1} + ||g_t||**2
        x_{t+1} = x_t - s_t * r_t / sqrt(G_t + eps) * g_t

    ``s_t`` is ``learning_rate`` (1: the parameter-free method; a schedule multiplies
    DoG's step). ``init_step`` sets ``r_0`` (see :func:`scale_by_dog`). The authors
    recommend averaging the iterates (:func:`ema_params`).

    Args:
      learning_rate: ``s_t``, a non-negative float, JAX scalar or schedule.
      init_step: ``("heuristic", alpha)`` (``r_0 = alpha (1 + ||x_0||)``),
        ``("distance", r_0)`` or ``("learning_rate", eta_1)``.
      eps: non-negative term added to ``G_t`` under the root.
      weight_decay: ``None`` (none) or a non-negative ``lambda`` added as ``lambda x_t``
        to the gradient.
      mask: which leaves to decay (tree of bools or a function of the params).

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> f = lambda x: jnp.sum(x**2)
      >>> params = jnp.array([1.0, 2.0, 3.0])
      >>> tx = gx.dog(init_step=("distance", 0.1))
      >>> updates, state = tx.update(jax.grad(f)(params), tx.init(params), params)
      >>> gx.apply_updates(params, updates)  # a first step of length r_0 = 0.1
      Array([0.9732739, 1.9465477, 2.9198217], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    return chain(
        _decay(weight_decay, mask),
        scale_by_dog(init_step, eps),
        scale_by_learning_rate(learning_rate),
    )


def dowg(
    learning_rate: ScalarOrSchedule = 1.0,
    init_estim_sq_dist: chex.Numeric | None = None,
    eps: chex.Numeric = 1e-4,
    weight_decay: chex.Numeric | None = None,
    mask: Mask = None,
) -> GradientTransformation:
    """DoWG: SGD with the Distance over Weighted Gradients step size (Khaled, Mishchenko &
    Jin, 2023, "DoWG Unleashed: An Efficient Universal Parameter-Free Gradient Descent
    Method").

    ::

        g_t <- g_t + lambda x_t                     (weight_decay, if not None)
        r_t**2 = max(r_{t-1}**2, ||x_t - x_0||**2),  v_t = v_{t-1} + r_t**2 ||g_t||**2
        x_{t+1} = x_t - s_t * r_t**2 / (sqrt(v_t) + eps) * g_t

    ``s_t`` is ``learning_rate`` (1: the parameter-free method).

    Args:
      learning_rate: ``s_t``, a non-negative float, JAX scalar or schedule.
      init_estim_sq_dist: positive ``r_0**2``; ``None`` takes ``eps``.
      eps: positive term added to the denominator (and the default ``r_0**2``).
      weight_decay: ``None`` (none) or a non-negative ``lambda`` added as ``lambda x_t``
        to the gradient.
      mask: which leaves to decay (tree of bools or a function of the params).

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> f = lambda x: jnp.sum(x**2)
      >>> params = jnp.array([1.0, 2.0, 3.0])
      >>> tx = gx.dowg()
      >>> updates, state = tx.update(jax.grad(f)(params), tx.init(params), params)
      >>> gx.apply_updates(params, updates)  # eta = 1e-4 / (sqrt(1e-4 * 56) + 1e-4)
      Array([0.99733096, 1.9946619 , 2.991993  ], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    return chain(
        _decay(weight_decay, mask),
        scale_by_dowg(init_estim_sq_dist, eps),
        scale_by_learning_rate(learning_rate),
    )
