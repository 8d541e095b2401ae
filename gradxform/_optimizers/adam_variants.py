"""Adamax(W), RAdam, AdaBelief and Yogi."""

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
from gradxform._optimizers.adam import _check_adam
from gradxform._transforms.adam_variants import (
    scale_by_adamax,
    scale_by_belief,
    scale_by_radam,
    scale_by_yogi,
)
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.weight_decay import decoupled_decay


def adamax(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    *,
    eps_in_max: bool = False,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Adamax, Adam with the infinity norm (Kingma & Ba, 2015, section 7.1).

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        u_t = max(b2 * u_{t-1}, |g_t|)
        theta_t = theta_{t-1} - eta * m_t / (1 - b1**t) / (u_t + eps)

    As ``optax.adamax`` and ``keras.optimizers.Adamax``; with ``eps_in_max=True``
    (``u_t = max(b2 * u_{t-1}, |g_t| + eps)``, no ``eps`` in the division) as
    ``torch.optim.Adamax``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: decay of the infinity norm in ``[0, 1)``.
      eps: non-negative stability term.
      eps_in_max: put ``eps`` inside the maximum (torch).
      mu_dtype: dtype of the first moment.
      nu_dtype: dtype of the second moment (``jnp.float32`` keeps float16 params safe).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import adamax
      >>> tx = adamax(0.1)
      >>> tx.update(jnp.array([4.0, -0.5]), tx.init(jnp.zeros(2)))[0]  # first step: -eta * sign
      Array([-0.1,  0.1], dtype=float32)
    """
    _check_adam(learning_rate, b1, b2, eps, 0.0, mu_dtype, nu_dtype)
    return chain(
        scale_by_adamax(
            b1=b1, b2=b2, eps=eps, eps_in_max=eps_in_max, mu_dtype=mu_dtype, nu_dtype=nu_dtype
        ),
        scale_by_learning_rate(learning_rate),
    )


def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Mask = None,
    *,
    eps_in_max: bool = False,
    scale_decay_by_lr: bool = True,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Adamax with decoupled weight decay (Kingma & Ba, 2015; Loshchilov & Hutter, 2019).

    ::

        d_t = m_t / (1 - b1**t) / (u_t + eps)            (Adamax's direction)
        theta_t = theta_{t-1} - eta * (d_t + lambda * theta_{t-1})

    As ``optax.adamaxw`` and ``keras.optimizers.Adamax(weight_decay=lambda)``.
    With ``scale_decay_by_lr=False`` the decay is ``lambda * theta`` without ``eta``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: decay of the infinity norm in ``[0, 1)``.
      eps: non-negative stability term.
      weight_decay: non-negative ``lambda``, or a schedule of it.
      mask: which leaves to decay (tree of bools or a function of the params).
      eps_in_max: put ``eps`` inside the maximum (torch's Adamax).
      scale_decay_by_lr: multiply the decay by the learning rate.
      mu_dtype: dtype of the first moment.
      nu_dtype: dtype of the second moment (``jnp.float32`` keeps float16 params safe).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import adamaxw
      >>> p = jnp.array([2.0])
      >>> tx = adamaxw(0.1, weight_decay=0.5)
      >>> tx.update(jnp.array([3.0]), tx.init(p), p)[0]  # -0.1 * (1 + 0.5 * 2)
      Array([-0.2], dtype=float32)
    """
    _check_adam(learning_rate, b1, b2, eps, 0.0, mu_dtype, nu_dtype)
    _checks.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_adamax(
            b1=b1, b2=b2, eps=eps, eps_in_max=eps_in_max, mu_dtype=mu_dtype, nu_dtype=nu_dtype
        ),
        *decoupled_decay(learning_rate, weight_decay, mask, scale_decay_by_lr),
    )


def radam(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    threshold: chex.Numeric = 5.0,
    *,
    nesterov: bool = False,
    eps_uncorrected: bool = False,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """RAdam, Rectified Adam (Liu et al., 2020, "On the Variance of the Adaptive Learning Rate
    and Beyond").

    ::

        rho_inf = 2 / (1 - b2) - 1,   rho_t = rho_inf - 2 t b2**t / (1 - b2**t)
        r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        if rho_t > threshold: theta_t = theta_{t-1} - eta r_t m^_t / (sqrt(v^_t + eps_root) + eps)
        otherwise:            theta_t = theta_{t-1} - eta m^_t

    As ``optax.radam``; with ``eps_uncorrected=True`` as ``torch.optim.RAdam``
    (whose ``eps`` is added before the bias correction of ``v``).

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      threshold: rectify once ``rho_t > threshold`` (at least 4).
      nesterov: Nesterov first moment (as in :func:`adam`).
      eps_uncorrected: add ``eps`` to ``sqrt(v_t)`` before the bias correction (torch).
      mu_dtype: dtype of the first moment.
      nu_dtype: dtype of the second moment (``jnp.float32`` keeps float16 params safe).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import radam
      >>> tx = radam(0.1)
      >>> tx.update(jnp.array([3.0]), tx.init(jnp.zeros(1)))[0].round(6)  # -eta * m^_1 = -eta * g
      Array([-0.3], dtype=float32)
    """
    _check_adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    _checks.number("threshold", threshold, low=4.0, allow_schedule=False)
    _checks.boolean("nesterov", nesterov)
    return chain(
        scale_by_radam(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            threshold=threshold,
            nesterov=nesterov,
            eps_uncorrected=eps_uncorrected,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-16,
    eps_root: chex.Numeric = 1e-16,
    *,
    nesterov: bool = False,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """AdaBelief (Zhuang et al., 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
    Observed Gradients", Algorithm 2).

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        s_t = b2 * s_{t-1} + (1 - b2) * (g_t - m_t)**2 + eps_root
        theta_t = theta_{t-1} - eta * m_t / (1 - b1**t) / (sqrt(s_t / (1 - b2**t)) + eps)

    As ``optax.adabelief``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: decay of the belief in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added to ``s`` at every step.
      nesterov: Nesterov first moment (as in :func:`adam`).
      mu_dtype: dtype of the first moment.
      nu_dtype: dtype of the second moment (``jnp.float32`` keeps float16 params safe).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import adabelief
      >>> tx = adabelief(0.1, b1=0.5, b2=0.5, eps=0.0, eps_root=0.0)
      >>> tx.update(jnp.array([4.0]), tx.init(jnp.zeros(1)))[0]  # -0.1 * 4 / sqrt(4)
      Array([-0.2], dtype=float32)
    """
    _check_adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    _checks.boolean("nesterov", nesterov)
    return chain(
        scale_by_belief(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            nesterov=nesterov,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


def yogi(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-3,
    *,
    eps_root: chex.Numeric = 0.0,
    initial_accumulator_value: chex.Numeric = 1e-6,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Yogi (Zaheer et al., 2018, "Adaptive Methods for Nonconvex Optimization"), with Adam's
    bias correction.

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        v_t = v_{t-1} - (1 - b2) * sign(v_{t-1} - g_t**2) * g_t**2
        theta_t = theta_{t-1} - eta * m_t / (1 - b1**t) / (sqrt(v_t / (1 - b2**t) + eps_root) + eps)

    As ``optax.yogi``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: rate of the second moment in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      initial_accumulator_value: non-negative ``v_0``.
      mu_dtype: dtype of the first moment.
      nu_dtype: dtype of the second moment (``jnp.float32`` keeps float16 params safe).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import yogi
      >>> tx = yogi(0.1, b1=0.0, b2=0.75, eps=0.0, initial_accumulator_value=0.0)
      >>> tx.update(jnp.array([-2.0]), tx.init(jnp.zeros(1)))[0].round(6)  # -0.1 * -2 / 2
      Array([0.1], dtype=float32)
    """
    _check_adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    _checks.non_negative(
        "initial_accumulator_value", initial_accumulator_value, allow_schedule=False
    )
    return chain(
        scale_by_yogi(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            initial_accumulator_value=initial_accumulator_value,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )
