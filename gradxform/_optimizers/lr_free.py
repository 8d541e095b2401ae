"""Learning-rate-free optimizers: Prodigy, D-Adapt AdamW and D-Adapt SGD.

Each is one transformation rather than a chain: the estimate ``d`` of the distance to
the solution enters the moments, the step and the weight decay together (see
``gradxform._transforms.lr_free``). Their states are optax's where optax has them.
"""

from __future__ import annotations

import math

import chex

from gradxform import _checks
from gradxform._base import GradientTransformationExtraArgs, ScalarOrSchedule
from gradxform._transforms.lr_free import (
    check_betas,
    check_estimate_args,
    check_growth_rate,
    dadapt_adamw_transformation,
    dadapt_sgd_transformation,
    prodigy_transformation,
)


def prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[chex.Numeric, chex.Numeric] = (0.9, 0.999),
    beta3: chex.Numeric | None = None,
    eps: chex.Numeric = 1e-8,
    estim_lr0: chex.Numeric = 1e-6,
    estim_lr_coef: chex.Numeric = 1.0,
    weight_decay: chex.Numeric = 0.0,
    safeguard_warmup: bool = False,
    *,
    use_bias_correction: bool = True,
) -> GradientTransformationExtraArgs:
    """Prodigy: AdamW with a learned step size (Mishchenko & Defazio, 2023).

    With ``d_t`` the estimate of the distance to the solution (``d_0 = estim_lr0``),
    ``eta_t = learning_rate(t)``, ``(beta1, beta2) = betas``, ``beta3`` (default
    ``sqrt(beta2)``) and ``x_0`` the params at the first update::

        dlr_t = d_t * eta_t * sqrt(1 - beta2**t) / (1 - beta1**t)
        m_t = beta1 m_{t-1} + (1 - beta1) d_t g_t
        v_t = beta2 v_{t-1} + (1 - beta2) d_t**2 g_t**2
        s_t = beta3 s_{t-1} + (d_t / d_0) dlr_t g_t      (d_t in place of dlr_t: safeguard)
        r_t = beta3 r_{t-1} + (d_t / d_0) dlr_t <g_t, x_0 - x_{t-1}>
        d_{t+1} = max(d_t, estim_lr_coef * r_t / ||s_t||_1)
        x_t = x_{t-1} - weight_decay * dlr_t x_{t-1} - dlr_t m_t / (sqrt(v_t) + d_{t+1} eps)

    The sums run over the whole tree. Arguments, defaults, state
    (:class:`ProdigyState`) and updates are those of ``optax.contrib.prodigy``, which is
    ``prodigyopt.Prodigy(use_bias_correction=True, decouple=True)``; the package's
    default, without the bias factor in ``dlr_t``, is ``use_bias_correction=False``.
    Its coupled L2 decay (``decouple=False``) is ``chain(add_decayed_weights(wd),
    prodigy(...))``. Until a gradient is non-zero (``||s||_1 = 0``) ``d`` is kept.

    Args:
      learning_rate: a non-negative scale of the learned step, or a schedule (a warmup
        and a decay to 0 from a peak of 1 is the paper's recommendation).
      betas: ``(beta1, beta2)``, the decays of Adam's moments, each in ``[0, 1)``.
      beta3: the decay of the estimate's sums in ``[0, 1)``; default ``sqrt(beta2)``.
      eps: non-negative term of the denominator (times ``d``).
      estim_lr0: ``d_0``, the positive initial (under-)estimate.
      estim_lr_coef: positive factor of each estimate (prodigyopt's ``d_coef``).
      weight_decay: non-negative decoupled decay, scaled by ``dlr_t``.
      safeguard_warmup: leave ``eta_t`` and the bias factor out of ``s_t`` (for warmup).
      use_bias_correction: Adam's bias factor in ``dlr_t`` (as optax); ``False`` is
        prodigyopt's default.

    Returns:
      A transformation whose state is a :class:`ProdigyState`.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.prodigy(estim_lr0=0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([0.5, -0.5]), state, params)
      >>> [round(float(u), 6) for u in updates]  # the first step: -d0 * sign(g)
      [-0.1, 0.1]

    References:
      Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free
      Learner", ICML 2024 (arXiv:2306.06101).
    """
    _checks.non_negative("learning_rate", learning_rate)
    check_betas(betas)
    if beta3 is not None:
        _checks.decay_rate("beta3", beta3, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    check_estimate_args(estim_lr0, "estim_lr_coef", estim_lr_coef)
    _checks.non_negative("weight_decay", weight_decay, allow_schedule=False)
    _checks.boolean("safeguard_warmup", safeguard_warmup)
    _checks.boolean("use_bias_correction", use_bias_correction)
    return prodigy_transformation(
        learning_rate,
        (betas[0], betas[1]),
        beta3,
        eps,
        estim_lr0,
        estim_lr_coef,
        weight_decay,
        bool(safeguard_warmup),
        bool(use_bias_correction),
    )


def dadapt_adamw(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[chex.Numeric, chex.Numeric] = (0.9, 0.999),
    eps: chex.Numeric = 1e-8,
    estim_lr0: chex.Numeric = 1e-6,
    weight_decay: chex.Numeric = 0.0,
    *,
    growth_rate: chex.Numeric = math.inf,
    use_bias_correction: bool = True,
) -> GradientTransformationExtraArgs:
    """D-Adapt AdamW: AdamW with a learned step size (Defazio & Mishchenko, 2023).

    With ``d_t`` the estimate of the distance to the solution (``d_0 = estim_lr0``),
    ``eta_t = learning_rate(t)``, ``(beta1, beta2) = betas`` and ``b = sqrt(beta2)``::

        dlr_t = d_t * eta_t * sqrt(1 - beta2**t) / (1 - beta1**t)
        r_t = b r_{t-1} + (1 - b) dlr_t <g_t, s_{t-1} / (sqrt(v_{t-1}) + eps)>
        m_t = beta1 m_{t-1} + (1 - beta1) dlr_t g_t
        v_t = beta2 v_{t-1} + (1 - beta2) g_t**2
        s_t = b s_{t-1} + (1 - b) dlr_t g_t
        d_{t+1} = max(d_t, min(r_t / ((1 - b) ||s_t||_1), growth_rate * d_t))
        x_t = x_{t-1} - weight_decay * dlr_t x_{t-1} - m_t / (sqrt(v_t) + eps)

    The sums run over the whole tree. Arguments, defaults, state
    (:class:`DAdaptAdamWState`) and updates are those of ``optax.contrib.dadapt_adamw``,
    which is ``dadaptation.DAdaptAdam(decouple=True, use_bias_correction=True)``; the
    package's default, without the bias factor, is ``use_bias_correction=False``, and
    its coupled decay (``decouple=False``) is ``chain(add_decayed_weights(wd),
    dadapt_adamw(...))``. Until a gradient is non-zero (``||s||_1 = 0``) ``d`` is kept.

    Args:
      learning_rate: a non-negative scale of the learned step, or a schedule.
      betas: ``(beta1, beta2)``, the decays of Adam's moments, each in ``[0, 1)``.
      eps: non-negative term added to ``sqrt(v)``.
      estim_lr0: ``d_0``, the positive initial (under-)estimate.
      weight_decay: non-negative decoupled decay, scaled by ``dlr_t``.
      growth_rate: the largest factor ``d`` may grow by in one step, at least 1
        (the package's ``growth_rate``; ``inf``, the default, is unrestricted).
      use_bias_correction: Adam's bias factor in ``dlr_t`` (as optax); ``False`` is the
        package's default.

    Returns:
      A transformation whose state is a :class:`DAdaptAdamWState`.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.dadapt_adamw(estim_lr0=0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([0.5, -0.5]), state, params)
      >>> [round(float(u), 6) for u in updates]  # the first step: -d0 * sign(g)
      [-0.1, 0.1]

    References:
      Defazio & Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023
      (arXiv:2301.07733).
    """
    _checks.non_negative("learning_rate", learning_rate)
    check_betas(betas)
    _checks.non_negative("eps", eps, allow_schedule=False)
    check_estimate_args(estim_lr0, None, None)
    _checks.non_negative("weight_decay", weight_decay, allow_schedule=False)
    check_growth_rate(growth_rate)
    _checks.boolean("use_bias_correction", use_bias_correction)
    return dadapt_adamw_transformation(
        learning_rate,
        (betas[0], betas[1]),
        eps,
        estim_lr0,
        weight_decay,
        growth_rate,
        bool(use_bias_correction),
    )


def dadapt_sgd(
    learning_rate: ScalarOrSchedule = 1.0,
    momentum: chex.Numeric = 0.0,
    weight_decay: chex.Numeric = 0.0,
    d0: chex.Numeric = 1e-6,
    growth_rate: chex.Numeric = math.inf,
) -> GradientTransformationExtraArgs:
    """D-Adapt SGD: SGD with a learned step size (Defazio & Mishchenko, 2023).

    Dual averaging with primal averaging for momentum (Algorithm 1 of the paper, with
    the momentum of its appendix). With ``d_t`` the estimate of the distance to the
    solution (``d_0 = d0``), ``eta_t = learning_rate(t)``, ``||g_0||`` the norm of the
    first non-zero gradient, ``g^_t = g_t + weight_decay * x_{t-1}`` and
    ``c = 1 - momentum``::

        dlr_t = d_t * eta_t / ||g_0||
        r_t = r_{t-1} + dlr_t <g^_t, s_{t-1}>
        s_t = s_{t-1} + dlr_t g^_t
        d_{t+1} = max(d_t, min(2 r_t / ||s_t||_2, growth_rate * d_t))
        z_t = x_0 - s_t
        x_t = (1 - c) x_{t-1} + c z_t

    The sums and norms run over the whole tree. ``||g_0||`` is the norm of the raw
    gradient, before weight decay, as in the ``dadaptation`` package's ``DAdaptSGD``,
    whose iterates this follows (its ``lr``, ``momentum``, ``weight_decay``, ``d0`` and
    ``growth_rate``). The state keeps ``z - x`` rather than ``x_0``, so the update is
    formed without subtracting the params. Until a gradient is non-zero nothing moves.

    Args:
      learning_rate: a non-negative scale of the learned step, or a schedule.
      momentum: the weight ``1 - c`` of the previous iterate, in ``[0, 1)``.
      weight_decay: non-negative L2 coefficient added to the gradient.
      d0: the positive initial (under-)estimate of the distance.
      growth_rate: the largest factor ``d`` may grow by in one step, at least 1
        (``inf``, the default, is unrestricted).

    Returns:
      A transformation whose state is a :class:`DAdaptSGDState`.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.dadapt_sgd(d0=0.5)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([3.0, -4.0]), state, params)
      >>> updates
      Array([-0.3,  0.4], dtype=float32)

    References:
      Defazio & Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023
      (arXiv:2301.07733).
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.decay_rate("momentum", momentum, allow_schedule=False)
    _checks.non_negative("weight_decay", weight_decay, allow_schedule=False)
    _checks.positive("d0", d0, allow_schedule=False)
    check_growth_rate(growth_rate)
    return dadapt_sgd_transformation(learning_rate, momentum, weight_decay, d0, growth_rate)
