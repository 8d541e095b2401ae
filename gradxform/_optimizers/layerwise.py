"""Optimizers with per-leaf statistics: LAMB, LARS and Adafactor."""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp
import numpy as np

from gradxform import _checks
from gradxform._base import (
    GradientTransformation,
    Mask,
    ScalarOrSchedule,
    chain,
    identity,
)
from gradxform._optimizers.adam import _check_adam
from gradxform._transforms.adam import scale_by_adam
from gradxform._transforms.clipping import clip_by_block_rms
from gradxform._transforms.layerwise import (
    scale_by_factored_rms,
    scale_by_param_block_rms,
    scale_by_trust_ratio,
)
from gradxform._transforms.momentum import ema, scale_by_momentum
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.weight_decay import add_decayed_weights


def lamb(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-6,
    eps_root: chex.Numeric = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
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
    _check_adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    _checks.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_trust_ratio(),
        scale_by_learning_rate(learning_rate),
    )


def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Mask | bool = True,
    trust_coefficient: chex.Numeric = 1e-3,
    eps: chex.Numeric = 0.0,
    trust_ratio_mask: Mask | bool = True,
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
      weight_decay: non-negative ``lambda``, or a schedule of it.
      weight_decay_mask: which leaves to decay (a tree of bools or a function
        of the params returning one); ``True``: all, ``False``: none.
      trust_coefficient: positive LARS coefficient.
      eps: non-negative term added to the update norm.
      trust_ratio_mask: which leaves to scale by the trust ratio (as
        ``weight_decay_mask``).
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
    _checks.non_negative("learning_rate", learning_rate)
    _checks.non_negative("weight_decay", weight_decay)
    _checks.positive("trust_coefficient", trust_coefficient, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.decay_rate("momentum", momentum, allow_schedule=False)
    _checks.boolean("nesterov", nesterov)
    _checks.canonical_dtype(accumulator_dtype, "accumulator_dtype")
    decay_mask = _whole_mask(weight_decay_mask)
    ratio_mask = _whole_mask(trust_ratio_mask)
    return chain(
        add_decayed_weights(0.0 if decay_mask is False else weight_decay, decay_mask or None),
        (
            identity()
            if ratio_mask is False
            else scale_by_trust_ratio(
                trust_coefficient=trust_coefficient, eps=eps, mask=ratio_mask or None
            )
        ),
        scale_by_learning_rate(learning_rate),
        scale_by_momentum(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype),
    )


def _whole_mask(mask: Any) -> Any:
    """One bool for the whole tree: ``True`` is None (every leaf); ``False`` kept."""
    if isinstance(mask, bool | np.bool_):
        return None if mask else False
    return mask


def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: chex.Numeric = 0.8,
    decay_offset: chex.Numeric = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: chex.Numeric | None = 1.0,
    momentum: chex.Numeric | None = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate: ScalarOrSchedule | None = None,
    eps: chex.Numeric = 1e-30,
    factored: bool = True,
    weight_decay_mask: Mask = None,
    *,
    min_scale: chex.Numeric = 1e-3,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Adafactor (Shazeer & Stern, 2018, "Adafactor: Adaptive Learning Rates with Sublinear
    Memory Cost", Algorithms 4 and 5).

    ::

        V_t = factored (two axes >= min_dim_size_to_factor) or full average of |g|**2 + eps,
              decay b_t = 1 - (t - decay_offset)**(-decay_rate)          (scale_by_factored_rms)
        U_t = g_t / sqrt(V_t)
        U^_t = U_t / max(1, RMS(U_t) / clipping_threshold)             (per leaf)
        U^_t <- eta_t * max(min_scale, RMS(theta_{t-1})) * U^_t        (per leaf)
        m_t = momentum * m_{t-1} + (1 - momentum) * U^_t               (if momentum)
        theta_t = theta_{t-1} - (m_t + weight_decay_rate * theta_{t-1})

    The arguments, their order and the chain are optax's: each stage is left out
    when its argument switches it off (``learning_rate=None``: no scaling, the
    paper's relative step with ``eta = 1``; ``clipping_threshold=None``: no update
    clipping; ``multiply_by_parameter_scale=False``; ``momentum=None``;
    ``weight_decay_rate=None``). As ``keras.optimizers.Adafactor`` with
    ``min_dim_size_to_factor=1`` while ``eta <= 1 / sqrt(t)`` (keras takes
    ``min(eta, 1 / sqrt(t))``; pass that schedule as ``learning_rate`` to follow
    it past that point).

    Args:
      learning_rate: ``eta`` (the paper's relative step ``rho_t``), a
        non-negative float, JAX scalar or schedule; or ``None``.
      min_dim_size_to_factor: factor only leaves whose second longest axis is
        at least this long.
      decay_rate: exponent of the second-moment decay (0.8).
      decay_offset: subtracted from the step count in the decay (fine-tuning).
      multiply_by_parameter_scale: scale steps by ``max(min_scale, RMS(theta))``.
      clipping_threshold: ``d`` of the update clipping, or ``None`` for none.
      momentum: decay in ``[0, 1)`` of a moving average of the updates, or ``None``.
      dtype_momentum: dtype of that average.
      weight_decay_rate: non-negative decoupled decay (not scaled by ``eta``),
        a schedule of it, or ``None``.
      eps: ``epsilon_1``, added to the squared gradient.
      factored: whether to factor at all.
      weight_decay_mask: which leaves to decay (tree of bools or a function of the params).
      min_scale: ``epsilon_2``, the floor of the parameter scale.
      nu_dtype: dtype of the second-moment statistics.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import adafactor
      >>> p = jnp.array([0.0, 4.0])
      >>> tx = adafactor(0.1, eps=0.0)
      >>> tx.update(jnp.array([2.0, -0.5]), tx.init(p), p)[0]  # U = sign(g); RMS(p) = 2.828
      Array([-0.28284273,  0.28284273], dtype=float32)
    """
    if learning_rate is not None:
        _checks.non_negative("learning_rate", learning_rate)
    _checks.integer("min_dim_size_to_factor", min_dim_size_to_factor, low=1)
    _checks.non_negative("decay_rate", decay_rate, allow_schedule=False)
    _checks.finite("decay_offset", decay_offset, allow_schedule=False)
    _checks.boolean("multiply_by_parameter_scale", multiply_by_parameter_scale)
    if clipping_threshold is not None:
        _checks.non_negative("clipping_threshold", clipping_threshold, allow_schedule=False)
    if momentum is not None:
        _checks.decay_rate("momentum", momentum, allow_schedule=False)
    _checks.canonical_dtype(dtype_momentum, "dtype_momentum")
    if weight_decay_rate is not None:
        _checks.non_negative("weight_decay_rate", weight_decay_rate)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.boolean("factored", factored)
    _checks.non_negative("min_scale", min_scale, allow_schedule=False)
    _checks.canonical_dtype(nu_dtype, "nu_dtype")
    parts = [
        scale_by_factored_rms(
            factored=factored,
            decay_rate=decay_rate,
            step_offset=decay_offset,
            min_dim_size_to_factor=min_dim_size_to_factor,
            epsilon=eps,
            nu_dtype=nu_dtype,
        )
    ]
    if clipping_threshold is not None:
        parts.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        parts.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        parts.append(scale_by_param_block_rms(min_scale))
    if momentum is not None:
        parts.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        parts.append(add_decayed_weights(weight_decay_rate, weight_decay_mask))
    parts.append(scale_by_learning_rate(1.0))  # descent: the negation; integer leaves pass through
    return chain(*parts)
