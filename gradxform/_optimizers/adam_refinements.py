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
from gradxform._transforms.adam_refinements_more import (
    scale_by_adan,
    scale_by_mars,
    scale_by_novograd,
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


def adan(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.98,
    b2: chex.Numeric = 0.92,
    b3: chex.Numeric = 0.99,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask = None,
    *,
    diff_weight: str = "1-b2",
) -> GradientTransformation:
    """Adan, the adaptive Nesterov momentum algorithm (Xie et al., 2022, "Adan: Adaptive
    Nesterov Momentum Algorithm for Faster Optimizing Deep Models").

    ::

        d_t = g_t - g_{t-1} (0 at the first step)
        m_t = b1 m_{t-1} + (1 - b1) g_t,   v_t = b2 v_{t-1} + (1 - b2) d_t
        n_t = b3 n_{t-1} + (1 - b3) (g_t + w d_t)**2
        theta_t = theta_{t-1} - eta * ((m^_t + w v^_t) / (sqrt(n^_t + eps_root) + eps)
                                       + lambda theta_{t-1})

    See :func:`scale_by_adan`. With ``diff_weight="1-b2"`` (``w = 1 - b2``) this is
    ``optax.adan``; with ``diff_weight="b2"`` and ``eps_root=0`` it is
    pytorch-optimizer's ``Adan(weight_decouple=True)`` and the authors' code (whose
    default decay is the paper's proximal ``theta / (1 + eta lambda)`` instead).

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: decay of the gradient's moment in ``[0, 1)``.
      b2: decay of the difference's moment in ``[0, 1)``.
      b3: decay of the second moment in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      weight_decay: non-negative decoupled decay ``lambda`` (times ``eta``).
      mask: which leaves to decay.
      diff_weight: ``"1-b2"`` (optax) or ``"b2"`` (the paper's weight).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.adan(1.0, eps=0.0, eps_root=0.0)
      >>> p = jnp.zeros(2)
      >>> tx.update(jnp.array([2.0, -1.0]), tx.init(p), p)[0].round(4)  # the first step: -sign(g)
      Array([-1.,  1.], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_adan(b1=b1, b2=b2, b3=b3, eps=eps, eps_root=eps_root, diff_weight=diff_weight),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def novograd(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.25,
    eps: chex.Numeric = 1e-6,
    eps_root: chex.Numeric = 0.0,
    weight_decay: chex.Numeric = 0.0,
    *,
    grad_averaging: bool = False,
    mu_dtype: Any | None = None,
) -> GradientTransformation:
    """NovoGrad (Ginsburg et al., 2019, "Stochastic Gradient Methods with Layer-wise Adaptive
    Moments for Training of Deep Networks").

    ::

        v_t = b2 v_{t-1} + (1 - b2) ||g_t||**2   per leaf (v_1 = ||g_1||**2)
        m_t = b1 m_{t-1} + g_t / (sqrt(v_t + eps_root) + eps) + lambda theta_{t-1}   (m_1 = ...)
        theta_t = theta_{t-1} - eta * m_t

    See :func:`scale_by_novograd`. ``optax.novograd`` with the same arguments, and
    pytorch-optimizer's ``NovoGrad(betas=(b1, b2), weight_decay=lambda)`` (its default
    coupled decay); ``grad_averaging=True`` is its ``grad_averaging=True``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: momentum decay in ``[0, 1)``.
      b2: decay of the per-leaf second moment in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      weight_decay: non-negative ``lambda``, added to the normalised gradient.
      grad_averaging: damp the momentum's new term by ``1 - b1``.
      mu_dtype: dtype of the momentum.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.novograd(0.5, eps=0.0)
      >>> tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))[0]  # -0.5 g / ||g||
      Array([-0.3, -0.4], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    return chain(
        scale_by_novograd(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            weight_decay=weight_decay,
            mu_dtype=mu_dtype,
            grad_averaging=grad_averaging,
        ),
        scale_by_learning_rate(learning_rate),
    )


def mars(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.95,
    b2: chex.Numeric = 0.99,
    gamma: chex.Numeric = 0.025,
    eps: chex.Numeric = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask = None,
    *,
    max_norm: float | None = 1.0,
    eps_uncorrected: bool = False,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """MARS-AdamW (Yuan et al., 2024, "MARS: Unleashing the Power of Variance Reduction for
    Training Large Models").

    ::

        c_t = g_t + gamma b1 / (1 - b1) (g_t - g_{t-1}),  scaled to norm max_norm if longer
        m_t = b1 m_{t-1} + (1 - b1) c_t,   v_t = b2 v_{t-1} + (1 - b2) c_t**2
        theta_t = theta_{t-1} - eta * (m^_t / (sqrt(v^_t) + eps) + lambda theta_{t-1})

    See :func:`scale_by_mars`. pytorch-optimizer's ``MARS(mars_type="adamw",
    optimize_1d=True)`` is ``eps_uncorrected=True`` (its decoupled decay is ``lambda``
    here).

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      gamma: non-negative strength of the gradient correction.
      eps: non-negative term added to the root.
      weight_decay: non-negative decoupled decay ``lambda`` (times ``eta``).
      mask: which leaves to decay.
      max_norm: positive bound of each leaf's corrected gradient norm, or ``None``.
      eps_uncorrected: add ``eps`` before the bias correction (pytorch-optimizer).
      mu_dtype: dtype of the first moment.
      nu_dtype: dtype of the second moment.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.mars(1.0, eps=0.0)
      >>> p = jnp.zeros(2)
      >>> tx.update(jnp.array([0.3, -0.4]), tx.init(p), p)[0].round(4)  # the first step: -sign(g)
      Array([-1.,  1.], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_mars(
            b1=b1,
            b2=b2,
            gamma=gamma,
            eps=eps,
            max_norm=max_norm,
            eps_uncorrected=eps_uncorrected,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
