"""Optimistic gradient descent and optimistic Adam, for saddle-point (min-max) problems."""

from __future__ import annotations

from typing import Any

import chex

from gradxform import _checks
from gradxform._base import GradientTransformation, ScalarOrSchedule, chain
from gradxform._transforms.adam import scale_by_adam
from gradxform._transforms.optimistic import scale_by_optimistic_gradient
from gradxform._transforms.scaling import scale_by_learning_rate


def _check_adam_moments(b1: Any, b2: Any, eps: Any, eps_root: Any, mu_dtype: Any) -> None:
    _checks.decay_rate("b1", b1, allow_schedule=False)
    _checks.decay_rate("b2", b2, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.non_negative("eps_root", eps_root, allow_schedule=False)
    _checks.canonical_dtype(mu_dtype, "mu_dtype")


def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule,
    alpha: chex.Numeric = 1.0,
    beta: chex.Numeric = 1.0,
) -> GradientTransformation:
    """Optimistic gradient descent (Popov, 1980; Daskalakis et al., 2018), generalized as by
    Mokhtari, Ozdaglar & Pattathil (2020).

    ::

        theta_t = theta_{t-1} - eta_t * ((alpha + beta) * g_t - beta * g_{t-1})     (g_0 = g_1)

    On a bilinear game ``min_x max_y x y`` plain gradient descent-ascent spirals outward;
    the optimistic correction ``-beta (g_t - g_{t-1})`` makes the last iterate converge.
    As ``optax.optimistic_gradient_descent``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      alpha: non-negative weight of the current gradient.
      beta: non-negative weight of the change of the gradient.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import optimistic_gradient_descent
      >>> tx = optimistic_gradient_descent(0.1)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([1.0]), state)
      >>> tx.update(jnp.array([3.0]), state)[0]  # -0.1 * (2 * 3 - 1)
      Array([-0.5], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    return chain(
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )


def optimistic_adam(
    learning_rate: chex.Numeric,
    optimism: chex.Numeric | None = None,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = True,
) -> GradientTransformation:
    """Optimistic Adam (Daskalakis, Ilyas, Syrgkanis & Zeng, 2018, "Training GANs with
    Optimism"), with optax's arguments.

    ::

        r_t = m^_t / (sqrt(v^_t + eps_root) + eps)         (Adam's direction, Nesterov by default)
        theta_t = theta_{t-1} - eta * r_t - o * (r_t - r_{t-1})       (r_0 = r_1)

    ``o = optimism`` defaults to ``eta``, as in the paper. As ``optax.optimistic_adam``:
    ``learning_rate`` is a number (a schedule is refused; :func:`optimistic_adam_v2`
    takes one), and the Nesterov first moment is the default.

    Args:
      learning_rate: ``eta``, a non-negative number.
      optimism: the non-negative ``o``; ``None``: ``eta``.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      mu_dtype: dtype of the first moment.
      nesterov: Nesterov first moment (optax's default), else Adam's.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import optimistic_adam
      >>> tx = optimistic_adam(0.1, optimism=1.0, nesterov=False)
      >>> u, _ = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
      >>> round(float(u[0]), 6)  # r_1 = 1: -0.1 * 1
      -0.1
    """
    if callable(learning_rate):
        raise ValueError(
            f"learning_rate={learning_rate!r} must be a number: optimistic_adam weighs the "
            f"direction by it; optimistic_adam_v2 takes a schedule"
        )
    _checks.non_negative("learning_rate", learning_rate)
    if optimism is not None:
        _checks.non_negative("optimism", optimism, allow_schedule=False)
    _check_adam_moments(b1, b2, eps, eps_root, mu_dtype)
    _checks.boolean("nesterov", nesterov)
    return chain(
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov
        ),
        scale_by_optimistic_gradient(
            alpha=learning_rate, beta=learning_rate if optimism is None else optimism
        ),
        scale_by_learning_rate(1.0),  # the sign flip; integer leaves pass through
    )


def optimistic_adam_v2(
    learning_rate: ScalarOrSchedule,
    *,
    alpha: chex.Numeric = 1.0,
    beta: chex.Numeric = 1.0,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    nesterov: bool = True,
) -> GradientTransformation:
    """Optimistic Adam (Daskalakis et al., 2018) with a learning rate that may be a schedule.

    ::

        r_t = m^_t / (sqrt(v^_t + eps_root) + eps)         (Adam's direction, Nesterov by default)
        theta_t = theta_{t-1} - eta_t * ((alpha + beta) * r_t - beta * r_{t-1})   (r_0 = r_1)

    ``optimistic_adam(eta, o)`` is ``optimistic_adam_v2(1.0, alpha=eta, beta=o)``. As
    ``optax.optimistic_adam_v2``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      alpha: non-negative weight of the current direction.
      beta: non-negative weight of the change of the direction.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      mu_dtype: dtype of the first moment.
      nesterov: Nesterov first moment (optax's default), else Adam's.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import optimistic_adam_v2
      >>> tx = optimistic_adam_v2(0.1, nesterov=False)
      >>> u, _ = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
      >>> round(float(u[0]), 6)  # r_1 = 1: -0.1 * 1
      -0.1
    """
    _checks.non_negative("learning_rate", learning_rate)
    _check_adam_moments(b1, b2, eps, eps_root, mu_dtype)
    _checks.boolean("nesterov", nesterov)
    return chain(
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov
        ),
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )
