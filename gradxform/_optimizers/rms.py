"""Optimizers on RMS-type second moments: AdaGrad, RMSProp and AdaDelta."""

from __future__ import annotations

from typing import Any

import chex

from gradxform import _checks
from gradxform._base import (
    GradientTransformation,
    Mask,
    ScalarOrSchedule,
    chain,
    identity,
)
from gradxform._optimizers.sgd import _check_momentum, _momentum
from gradxform._transforms.rms import scale_by_adadelta, scale_by_adagrad, scale_by_rms
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.weight_decay import add_decayed_weights


def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: chex.Numeric = 0.1,
    eps: chex.Numeric = 1e-7,
    *,
    eps_in_sqrt: bool = True,
) -> GradientTransformation:
    """AdaGrad (Duchi, Hazan & Singer, 2011, "Adaptive Subgradient Methods").

    ::

        s_t = s_{t-1} + g_t**2,   s_0 = initial_accumulator_value
        theta_t = theta_{t-1} - eta * g_t / sqrt(s_t + eps)

    With ``eps_in_sqrt=False`` the step is ``eta * g_t / (sqrt(s_t) + eps)``,
    which with ``initial_accumulator_value=0, eps=1e-10`` is torch.optim.Adagrad.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      initial_accumulator_value: non-negative start of the sum of squares.
      eps: non-negative stability term.
      eps_in_sqrt: whether ``eps`` is added inside the square root.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.adagrad(1.0, initial_accumulator_value=0.0, eps=0.0)
      >>> tx.update(jnp.array([3.0, -4.0]), tx.init(jnp.zeros(2)))[0]
      Array([-1.,  1.], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.non_negative(
        "initial_accumulator_value", initial_accumulator_value, allow_schedule=False
    )
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.boolean("eps_in_sqrt", eps_in_sqrt)
    return chain(
        scale_by_adagrad(
            initial_accumulator_value=initial_accumulator_value, eps=eps, eps_in_sqrt=eps_in_sqrt
        ),
        scale_by_learning_rate(learning_rate),
    )


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: chex.Numeric = 0.9,
    eps: chex.Numeric = 1e-8,
    initial_scale: chex.Numeric = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: chex.Numeric | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> GradientTransformation:
    """RMSProp (Tieleman & Hinton, 2012, Lecture 6.5), optionally centered and with momentum.

    ::

        nu_t = decay * nu_{t-1} + (1 - decay) * g_t**2
        s_t  = nu_t - mu_t**2 if centered (mu_t the EMA of g_t) else nu_t
        d_t  = g_t / sqrt(s_t + eps)   (eps_in_sqrt=False: g_t / (sqrt(s_t) + eps))
        theta_t = theta_{t-1} - eta * d_t               without momentum
        b_t = momentum * b_{t-1} + eta * d_t,  theta_t = theta_{t-1} - b_t   with it

    ``eps_in_sqrt=False`` with ``initial_scale=0`` is torch.optim.RMSprop
    (``alpha=decay``); the centered form is Graves (2013). With
    ``bias_correction=True`` the moving averages are divided by ``1 - decay**t``
    (optax's option).

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      decay: averaging decay in ``[0, 1)`` (torch's ``alpha``).
      eps: non-negative stability term.
      initial_scale: initial value of ``nu``.
      eps_in_sqrt: whether ``eps`` is added inside the square root.
      centered: divide by an estimate of the variance instead of the raw second moment.
      momentum: momentum coefficient in ``[0, 1)``, or ``None``.
      nesterov: Nesterov momentum (needs ``momentum``).
      bias_correction: divide the averages by ``1 - decay**t``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.rmsprop(0.01, decay=0.75, eps=0.0)
      >>> tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))[0]
      Array([-0.02], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.decay_rate("decay", decay, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.non_negative("initial_scale", initial_scale, allow_schedule=False)
    for name, flag in (
        ("eps_in_sqrt", eps_in_sqrt),
        ("centered", centered),
        ("bias_correction", bias_correction),
    ):
        _checks.boolean(name, flag)
    _check_momentum(momentum, nesterov, None)
    return chain(
        scale_by_rms(
            decay=decay,
            eps=eps,
            initial_scale=initial_scale,
            eps_in_sqrt=eps_in_sqrt,
            bias_correction=bias_correction,
            centered=centered,
        ),
        scale_by_learning_rate(learning_rate),
        _momentum(momentum, nesterov, None),
    )


def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: chex.Numeric = 0.9,
    eps: chex.Numeric = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Mask = None,
    *,
    accumulator_dtype: Any | None = None,
) -> GradientTransformation:
    """AdaDelta (Zeiler, 2012, "ADADELTA: An Adaptive Learning Rate Method", Algorithm 1).

    ::

        g~_t      = g_t + lambda * theta_{t-1}                  (coupled L2, if lambda > 0)
        E[g^2]_t  = rho * E[g^2]_{t-1} + (1 - rho) * g~_t**2
        d_t       = sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g~_t
        E[dx^2]_t = rho * E[dx^2]_{t-1} + (1 - rho) * d_t**2
        theta_t   = theta_{t-1} - eta * d_t

    The paper has no learning rate: ``learning_rate=None`` (the default, as in
    optax) applies ``-d_t`` unscaled, which is ``eta = 1``. Identical to
    ``torch.optim.Adadelta(lr, rho, eps, weight_decay)``, ``optax.adadelta`` and
    (without weight decay) ``keras.optimizers.Adadelta``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule, or
        ``None`` for the paper's unscaled step.
      rho: averaging decay in ``[0, 1)``.
      eps: positive stability term.
      weight_decay: non-negative coupled L2 coefficient ``lambda`` (needs the
        params), or a schedule of it.
      weight_decay_mask: which leaves to decay (tree of bools or a function of the params).
      accumulator_dtype: dtype of both running averages.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import adadelta
      >>> tx = adadelta(rho=0.5, eps=0.25)
      >>> tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))[0]  # -sqrt(0.25 / 0.75)
      Array([-0.57735026], dtype=float32)
    """
    if learning_rate is not None:
        _checks.non_negative("learning_rate", learning_rate)
    _checks.decay_rate("rho", rho, allow_schedule=False)
    _checks.positive("eps", eps, allow_schedule=False)
    _checks.non_negative("weight_decay", weight_decay)
    _checks.canonical_dtype(accumulator_dtype, "accumulator_dtype")
    decay = (
        identity()
        if _checks.is_literal_zero(weight_decay)
        else add_decayed_weights(weight_decay, weight_decay_mask)
    )
    return chain(
        decay,
        scale_by_adadelta(rho=rho, eps=eps, accumulator_dtype=accumulator_dtype),
        scale_by_learning_rate(1.0 if learning_rate is None else learning_rate),
    )
