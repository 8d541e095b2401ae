"""ADOPT, AdEMAMix, simplified AdEMAMix, Adan, NovoGrad and MARS: chains of their scalings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex

from gradxform import _checks
from gradxform._base import GradientTransformation, Mask, ScalarOrSchedule, chain
from gradxform._transforms.adam_refinements import (
    adopt_clip_value,
    scale_by_ademamix,
    scale_by_adopt,
    scale_by_simplified_ademamix,
)
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.weight_decay import add_decayed_weights


def adopt(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.9999,
    eps: chex.Numeric = 1e-6,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[chex.Array], chex.Array] = adopt_clip_value,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """ADOPT (Taniguchi et al., 2024, "ADOPT: Modified Adam Can Converge with Any beta2 with
    the Optimal Rate").

    ::

        step 0:  v_0 = g_0**2,  theta_1 = theta_0
        step t:  m_t = b1 m_{t-1} + (1 - b1) clip(g_t / max(sqrt(v_{t-1}), eps), clip_value_fn(t))
                 theta_{t+1} = theta_t - eta * m_t
                 v_t = b2 v_{t-1} + (1 - b2) g_t**2

    See :func:`scale_by_adopt`. ``optax.contrib.adopt`` with the same arguments; the
    pytorch-optimizer ``ADOPT`` counts steps from 1, so its clip is
    ``clip_value_fn=lambda t: (t + 1) ** 0.25`` here.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative floor of ``sqrt(v)``.
      mu_dtype: dtype of the first moment.
      nesterov: Nesterov form of the first moment.
      use_clipping: clip the normalised gradient.
      clip_value_fn: the clipping value as a function of the step count.
      nu_dtype: dtype of the second moment.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.adopt(0.1)
      >>> state = tx.init(jnp.zeros(2))
      >>> u, state = tx.update(jnp.array([1.0, -4.0]), state)
      >>> u  # the first step only measures v
      Array([-0., -0.], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    return chain(
        scale_by_adopt(
            b1=b1,
            b2=b2,
            eps=eps,
            mu_dtype=mu_dtype,
            nesterov=nesterov,
            use_clipping=use_clipping,
            clip_value_fn=clip_value_fn,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


def ademamix(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 5.0,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask = None,
    *,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """AdEMAMix (Pagliardini, Ablin & Grangier, 2024, "The AdEMAMix Optimizer: Better,
    Faster, Older").

    ::

        m1_t = b1 m1_{t-1} + (1 - b1) g_t,   m2_t = b3_t m2_{t-1} + (1 - b3_t) g_t
        v_t = b2 v_{t-1} + (1 - b2) g_t**2
        theta_t = theta_{t-1} - eta * ((m1_t / (1 - b1**t) + alpha_t m2_t)
                                       / (sqrt(v_t / (1 - b2**t) + eps_root) + eps)
                                       + lambda theta_{t-1})

    See :func:`scale_by_ademamix` (and the paper's warm-up schedules of ``alpha`` and
    ``b3`` there). ``optax.contrib.ademamix`` with the same arguments; the
    pytorch-optimizer ``AdEMAMix(weight_decouple=True)`` with its schedules shifted by
    one step (it counts from 1).

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: fast first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      b3: slow first-moment decay in ``[0, 1)``, or a schedule.
      alpha: weight of the slow moment, or a schedule.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      mu_dtype: dtype of the moments (of ``v`` too unless ``nu_dtype``).
      weight_decay: non-negative decoupled decay ``lambda`` (times ``eta``).
      mask: which leaves to decay.
      nu_dtype: dtype of the second moment.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.ademamix(1.0, b3=0.5, alpha=2.0, eps=0.0)
      >>> p = jnp.zeros(1)
      >>> tx.update(jnp.array([3.0]), tx.init(p), p)[0].round(4)  # -(3 + 2 * 1.5) / 3
      Array([-2.], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_ademamix(
            b1=b1,
            b2=b2,
            b3=b3,
            alpha=alpha,
            eps=eps,
            eps_root=eps_root,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def simplified_ademamix(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.99,
    b2: chex.Numeric = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask = None,
) -> GradientTransformation:
    """Simplified AdEMAMix (Morwani et al., 2025, "Connections between Schedule-Free
    Optimizers, AdEMAMix, and Accelerated SGD Variants").

    ::

        m_t = b1 m_{t-1} + g_t,   n_t = b2 n_{t-1} + (1 - b2) g_t**2
        theta_t = theta_{t-1} - eta * ((m_t + alpha_t g_t) / (sqrt(n_t / (1 - b2**t) + eps_root)
                                       + eps) + lambda theta_{t-1})

    See :func:`scale_by_simplified_ademamix`. ``optax.contrib.simplified_ademamix``
    with the same arguments.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: momentum decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      alpha: weight of the gradient, or a schedule.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      weight_decay: non-negative decoupled decay ``lambda`` (times ``eta``).
      mask: which leaves to decay.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.simplified_ademamix(0.1, alpha=1.0, eps=0.0)
      >>> p = jnp.zeros(1)
      >>> tx.update(jnp.array([2.0]), tx.init(p), p)[0]  # -0.1 (2 + 2) / 2
      Array([-0.2], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_simplified_ademamix(b1=b1, b2=b2, alpha=alpha, eps=eps, eps_root=eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
