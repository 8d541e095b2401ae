"""Optimizers with per-leaf statistics: LAMB, LARS and Adafactor."""

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
from gradxform._transforms.adam import scale_by_adam
from gradxform._transforms.clipping import clip_by_block_rms
from gradxform._transforms.layerwise import (
    scale_by_factored_rms,
    scale_by_param_block_rms,
    scale_by_trust_ratio,
)
from gradxform._transforms.momentum import scale_by_momentum
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.weight_decay import add_decayed_weights


def lamb(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-6,
    eps_root: chex.Numeric = 0.0,
    weight_decay: chex.Numeric = 0.0,
    mask: Mask = None,
    *,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """LAMB, layer-wise adaptive moments (You et al., 2020, "Large Batch Optimization for Deep
    Learning: Training BERT in 76 minutes", Algorithm 2).

    ::

        r_t = m^_t / (sqrt(v^_t + eps_root) + eps) + lambda * theta_{t-1}   (Adam + decay)
        theta_t = theta_{t-1} - eta * ||theta_{t-1}|| / ||r_t|| * r_t         (per leaf)

    with ratio 1 when either norm is zero. As ``optax.lamb``, and as
    ``keras.optimizers.Lamb`` without weight decay (keras decays the weights
    before the step instead of adding ``lambda * theta`` to ``r_t``).

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      weight_decay: non-negative ``lambda``.
      mask: which leaves to decay (tree of bools or a function of the params).
      mu_dtype: dtype of the first moment.
      nu_dtype: dtype of the second moment (``jnp.float32`` keeps float16 params safe).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import lamb
      >>> p = jnp.array([3.0, 4.0])
      >>> tx = lamb(0.1, eps=0.0)
      >>> tx.update(jnp.array([1.0, -1.0]), tx.init(p), p)[0]  # r = (1, -1): ratio 5 / sqrt(2)
      Array([-0.35355338,  0.35355338], dtype=float32)
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_trust_ratio(),
        scale_by_learning_rate(learning_rate),
    )


def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: chex.Numeric = 0.0,
    weight_decay_mask: Mask = None,
    trust_coefficient: chex.Numeric = 1e-3,
    eps: chex.Numeric = 0.0,
    trust_ratio_mask: Mask = None,
    momentum: chex.Numeric = 0.9,
    nesterov: bool = False,
    *,
    accumulator_dtype: Any | None = None,
) -> GradientTransformation:
    """LARS, layer-wise adaptive rate scaling (You, Gitman & Ginsburg, 2017, "Large Batch
    Training of Convolutional Networks", Algorithm 1).

    ::

        d_t = g_t + lambda * theta_{t-1}
        local_lr = trust_coefficient * ||theta_{t-1}|| / (||d_t|| + eps)   (per leaf; 1 if 0)
        v_t = momentum * v_{t-1} + eta * local_lr * d_t
        theta_t = theta_{t-1} - v_t          (nesterov: - (eta local_lr d_t + momentum v_t))

    As ``optax.lars``.

    Args:
      learning_rate: global ``eta``, a non-negative float, JAX scalar or schedule.
      weight_decay: non-negative ``lambda``.
      weight_decay_mask: which leaves to decay.
      trust_coefficient: positive LARS coefficient.
      eps: non-negative term added to the update norm.
      trust_ratio_mask: which leaves to scale by the trust ratio.
      momentum: momentum in ``[0, 1)``.
      nesterov: Nesterov momentum.
      accumulator_dtype: dtype of the momentum buffer.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import lars
      >>> p = jnp.array([3.0, 4.0])
      >>> tx = lars(1.0, trust_coefficient=0.1)
      >>> tx.update(jnp.array([1.2, 1.6]), tx.init(p), p)[0]  # 0.1 * 5 / 2 = 0.25 times g
      Array([-0.3, -0.4], dtype=float32)
    """
    _checks.decay_rate("momentum", momentum, allow_schedule=False)
    return chain(
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_trust_ratio(trust_coefficient, eps, trust_ratio_mask),
        scale_by_learning_rate(learning_rate),
        scale_by_momentum(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype),
    )


def adafactor(
    learning_rate: ScalarOrSchedule,
    decay_rate: chex.Numeric = 0.8,
    eps: chex.Numeric = 1e-30,
    clipping_threshold: chex.Numeric | None = 1.0,
    min_scale: chex.Numeric = 1e-3,
    *,
    min_dim_size_to_factor: int = 128,
    factored: bool = True,
    multiply_by_parameter_scale: bool = True,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Adafactor (Shazeer & Stern, 2018, "Adafactor: Adaptive Learning Rates with Sublinear
    Memory Cost", Algorithms 4 and 5, without momentum).

    ::

        V_t = factored (matrices) or full average of g**2 + eps, decay 1 - t**(-decay_rate)
        U_t = g_t / sqrt(V_t)
        U^_t = U_t / max(1, RMS(U_t) / clipping_threshold)                   (per leaf)
        theta_t = theta_{t-1} - eta * max(min_scale, RMS(theta_{t-1})) * U^_t (per leaf)

    As ``optax.adafactor`` for parameters of at most two dimensions (optax
    factors the two largest axes, this the last two) and as
    ``keras.optimizers.Adafactor`` with ``min_dim_size_to_factor=1`` while
    ``eta <= 1 / sqrt(t)`` (keras takes ``min(eta, 1 / sqrt(t))``; pass that
    schedule as ``learning_rate`` to follow it past that point).

    Args:
      learning_rate: ``eta`` (the paper's relative step ``rho_t``), a
        non-negative float, JAX scalar or schedule.
      decay_rate: exponent of the second-moment decay (0.8).
      eps: ``epsilon_1``, added to the squared gradient.
      clipping_threshold: ``d`` of the update clipping, or ``None`` for none.
      min_scale: ``epsilon_2``, the floor of the parameter scale.
      min_dim_size_to_factor: factor only matrices whose last two axes are at
        least this long.
      factored: whether to factor at all.
      multiply_by_parameter_scale: scale steps by ``max(min_scale, RMS(theta))``.
      nu_dtype: dtype of the second-moment statistics.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import adafactor
      >>> p = jnp.array([0.0, 4.0])
      >>> tx = adafactor(0.1, eps=0.0)
      >>> tx.update(jnp.array([2.0, -0.5]), tx.init(p), p)[0]  # U = sign(g); RMS(p) = 2.828
      Array([-0.28284273,  0.28284273], dtype=float32)
    """
    parts = [
        scale_by_factored_rms(
            decay_rate,
            eps,
            min_dim_size_to_factor=min_dim_size_to_factor,
            factored=factored,
            nu_dtype=nu_dtype,
        )
    ]
    if clipping_threshold is not None:
        parts.append(clip_by_block_rms(clipping_threshold))
    if multiply_by_parameter_scale:
        parts.append(scale_by_param_block_rms(min_scale))
    parts.append(scale_by_learning_rate(learning_rate))
    return chain(*parts)
