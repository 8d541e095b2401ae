"""Adam, AdamW, AMSGrad, NAdam and NAdamW."""

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
from gradxform._transforms.adam import scale_by_adam, scale_by_amsgrad
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.weight_decay import decoupled_decay


def _check_adam(
    learning_rate: Any, b1: Any, b2: Any, eps: Any, eps_root: Any, mu_dtype: Any, nu_dtype: Any
) -> None:
    """The arguments every Adam-family optimizer shares, named as the optimizer names them."""
    _checks.non_negative("learning_rate", learning_rate)
    _checks.decay_rate("b1", b1, allow_schedule=False)
    _checks.decay_rate("b2", b2, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.non_negative("eps_root", eps_root, allow_schedule=False)
    _checks.canonical_dtype(mu_dtype, "mu_dtype")
    _checks.canonical_dtype(nu_dtype, "nu_dtype")


def _check_nadam(nesterov: Any, momentum_schedule: Any, momentum_decay: Any) -> None:
    _checks.boolean("nesterov", nesterov)
    _checks.one_of("momentum_schedule", momentum_schedule, ("constant", "dozat"))
    _checks.positive("momentum_decay", momentum_decay, allow_schedule=False)
    if momentum_schedule == "dozat" and not nesterov:
        raise ValueError("momentum_schedule='dozat' is NAdam's schedule: it needs nesterov=True")


def adam(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = False,
    eps_uncorrected: bool = False,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Adam (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization").

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * g_t**2
        theta_t = theta_{t-1} - eta * m_t / (1 - b1**t)
                                  / (sqrt(v_t / (1 - b2**t) + eps_root) + eps)

    Identical to ``torch.optim.Adam(lr, betas=(b1, b2), eps)`` and ``optax.adam``;
    with ``eps_uncorrected=True`` to ``keras.optimizers.Adam`` (which adds
    ``eps`` to the root of the uncorrected second moment). Coupled L2
    regularisation, torch's ``Adam(weight_decay=lam)``, is
    ``chain(add_decayed_weights(lam), adam(...))``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      mu_dtype: dtype of the first moment (for example ``jnp.bfloat16`` to save memory).
      nesterov: Nesterov first moment (NAdam in optax's simplified form).
      eps_uncorrected: add ``eps`` to ``sqrt(v_t)`` before the bias correction.
      nu_dtype: dtype of the second moment (``jnp.float32`` keeps float16 params safe).

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> params = {"w": jnp.array([1.0, -1.0])}
      >>> tx = gx.adam(0.1)
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([0.3, -0.2])}
      >>> updates, state = tx.update(grads, state, params)
      >>> gx.apply_updates(params, updates)
      {'w': Array([ 0.9, -0.9], dtype=float32)}
    """
    _check_adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    return chain(
        scale_by_adam(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            nesterov=nesterov,
            eps_uncorrected=eps_uncorrected,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Mask = None,
    *,
    nesterov: bool = False,
    scale_decay_by_lr: bool = True,
    eps_uncorrected: bool = False,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    ::

        d_t = m^_t / (sqrt(v^_t + eps_root) + eps)      (Adam's direction)
        theta_t = theta_{t-1} - eta * (d_t + lambda * theta_{t-1})   (scale_decay_by_lr=True)
        theta_t = theta_{t-1} - eta * d_t - lambda * theta_{t-1}     (scale_decay_by_lr=False)

    By default the decay ``lambda`` is multiplied by the learning rate, as in
    ``torch.optim.AdamW``, ``keras.optimizers.AdamW`` and ``optax.adamw``.
    ``scale_decay_by_lr=False`` is the paper's form with a schedule multiplier
    of 1: the decay does not follow ``eta`` (for a constant ``eta`` it equals
    torch's AdamW with ``weight_decay=lambda / eta``). Note the default
    ``weight_decay`` follows optax (1e-4); torch's default is 1e-2.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      mu_dtype: dtype of the first moment.
      weight_decay: non-negative ``lambda``, or a schedule of it.
      mask: which leaves to decay (tree of bools or a function of the params).
      nesterov: Nesterov first moment.
      scale_decay_by_lr: multiply the decay by the learning rate (see above).
      eps_uncorrected: add ``eps`` to ``sqrt(v_t)`` before the bias correction (keras).
      nu_dtype: dtype of the second moment (``jnp.float32`` keeps float16 params safe).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> params = jnp.array([1.0])
      >>> tx = gx.adamw(0.5, weight_decay=0.5)
      >>> updates, _ = tx.update(jnp.array([2.0]), tx.init(params), params)
      >>> updates.round(5)  # -0.5 * (sign(2.0) + 0.5 * 1.0): Adam's first step is the sign
      Array([-0.75], dtype=float32)
    """
    _check_adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    _checks.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_adam(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            nesterov=nesterov,
            eps_uncorrected=eps_uncorrected,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        *decoupled_decay(learning_rate, weight_decay, mask, scale_decay_by_lr),
    )


def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    amsgrad_max: str = "corrected",
    eps_uncorrected: bool = False,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """AMSGrad (Reddi, Kale & Kumar, 2018, "On the Convergence of Adam and Beyond").

    ::

        m_t, v_t as in Adam
        amsgrad_max="corrected":  v~_t = vmax_t = max(vmax_{t-1}, v_t / (1 - b2**t))
        amsgrad_max="raw":        vmax_t = max(vmax_{t-1}, v_t),  v~_t = vmax_t / (1 - b2**t)
        theta_t = theta_{t-1} - eta * m_t / (1 - b1**t) / (sqrt(v~_t + eps_root) + eps)

    ``"corrected"`` (the default) is ``optax.amsgrad``; ``"raw"`` is
    ``torch.optim.Adam(amsgrad=True)`` (and, with ``eps_uncorrected=True``,
    ``keras.optimizers.Adam(amsgrad=True)``). ``bias_correction_mu=False`` and
    ``bias_correction_nu=False`` drop the divisions by ``1 - b1**t`` and
    ``1 - b2**t``: both off is the algorithm of the paper.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      mu_dtype: dtype of the first moment.
      bias_correction_mu: divide the first moment by ``1 - b1**t``.
      bias_correction_nu: divide the second moment by ``1 - b2**t``.
      amsgrad_max: the maximum of the ``"corrected"`` or of the ``"raw"`` second moment.
      eps_uncorrected: add ``eps`` to the root before the bias correction (keras).
      nu_dtype: dtype of the second moment (``jnp.float32`` keeps float16 params safe).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import amsgrad
      >>> tx = amsgrad(0.1, b1=0.0, b2=0.5, eps=0.0, amsgrad_max="raw")
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([2.0]), state)
      >>> u, state = tx.update(jnp.array([1.0]), state)
      >>> u  # vmax = max(2, 1.5) = 2, v~ = 2 / 0.75: -0.1 * 1 / sqrt(8 / 3)
      Array([-0.06123724], dtype=float32)
    """
    _check_adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    _checks.boolean("bias_correction_mu", bias_correction_mu)
    _checks.boolean("bias_correction_nu", bias_correction_nu)
    return chain(
        scale_by_amsgrad(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            bias_correction_mu=bias_correction_mu,
            bias_correction_nu=bias_correction_nu,
            amsgrad_max=amsgrad_max,
            eps_uncorrected=eps_uncorrected,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


def nadam(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = True,
    momentum_schedule: str = "constant",
    momentum_decay: float = 4e-3,
    eps_uncorrected: bool = False,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """NAdam: Adam with Nesterov momentum (Dozat, 2016, "Incorporating Nesterov Momentum into
    Adam").

    ::

        m_t, v_t, v^_t as in Adam
        "constant": m^_t = b1 m_t / (1 - b1**(t+1)) + (1 - b1) g_t / (1 - b1**t)
        "dozat":    mu_s = b1 (1 - 0.5 * 0.96**(s * momentum_decay)),  P_t = mu_1 ... mu_t
                    m^_t = mu_{t+1} m_t / (1 - P_{t+1}) + (1 - mu_t) g_t / (1 - P_t)
        theta_t = theta_{t-1} - eta * m^_t / (sqrt(v^_t + eps_root) + eps)

    ``momentum_schedule="constant"`` is the simplified form of ``optax.nadam``;
    ``"dozat"`` is Dozat's schedule as ``torch.optim.NAdam`` computes it (same
    ``momentum_decay``, default 4e-3) and as ``keras.optimizers.Nadam`` does
    with ``momentum_decay=1.0``. As in optax, ``nadam`` is :func:`adam` with
    ``nesterov=True``, and ``nesterov=False`` gives Adam.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      mu_dtype: dtype of the first moment.
      nesterov: Nesterov first moment (``False``: Adam).
      momentum_schedule: ``"constant"`` (optax) or ``"dozat"`` (torch, keras).
      momentum_decay: positive rate of Dozat's schedule.
      eps_uncorrected: add ``eps`` to ``sqrt(v_t)`` before the bias correction.
      nu_dtype: dtype of the second moment (``jnp.float32`` keeps float16 params safe).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import nadam
      >>> tx = nadam(0.1, b1=0.5, b2=0.0, eps=0.0)
      >>> tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))[0]  # m^ = 0.5 * 1 / 0.75 + 1 / 0.5
      Array([-0.13333334], dtype=float32)
    """
    _check_adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    _check_nadam(nesterov, momentum_schedule, momentum_decay)
    return chain(
        scale_by_adam(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            nesterov=nesterov,
            momentum_schedule=momentum_schedule,
            momentum_decay=momentum_decay,
            eps_uncorrected=eps_uncorrected,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Mask = None,
    *,
    nesterov: bool = True,
    momentum_schedule: str = "constant",
    momentum_decay: float = 4e-3,
    scale_decay_by_lr: bool = True,
    eps_uncorrected: bool = False,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """NAdam with decoupled weight decay (Dozat, 2016; Loshchilov & Hutter, 2019).

    ::

        d_t = m^_t / (sqrt(v^_t + eps_root) + eps)       (NAdam's direction, see nadam)
        theta_t = theta_{t-1} - eta * (d_t + lambda * theta_{t-1})

    ``momentum_schedule="constant"`` is ``optax.nadamw``; ``"dozat"`` is
    ``torch.optim.NAdam(decoupled_weight_decay=True)`` and, with
    ``momentum_decay=1.0``, ``keras.optimizers.Nadam(weight_decay=lambda)``.
    As in optax, ``nadamw`` is :func:`adamw` with ``nesterov=True``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      mu_dtype: dtype of the first moment.
      weight_decay: non-negative ``lambda``, or a schedule of it.
      mask: which leaves to decay (tree of bools or a function of the params).
      nesterov: Nesterov first moment (``False``: AdamW).
      momentum_schedule: ``"constant"`` (optax) or ``"dozat"`` (torch, keras).
      momentum_decay: positive rate of Dozat's schedule.
      scale_decay_by_lr: multiply the decay by the learning rate.
      eps_uncorrected: add ``eps`` to ``sqrt(v_t)`` before the bias correction.
      nu_dtype: dtype of the second moment (``jnp.float32`` keeps float16 params safe).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import nadamw
      >>> p = jnp.array([1.0])
      >>> tx = nadamw(0.1, b1=0.5, b2=0.0, eps=0.0, weight_decay=0.5)
      >>> tx.update(jnp.array([2.0]), tx.init(p), p)[0]  # -0.1 * (4 / 3 + 0.5)
      Array([-0.18333334], dtype=float32)
    """
    _check_adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    _check_nadam(nesterov, momentum_schedule, momentum_decay)
    _checks.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_adam(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            nesterov=nesterov,
            momentum_schedule=momentum_schedule,
            momentum_decay=momentum_decay,
            eps_uncorrected=eps_uncorrected,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        *decoupled_decay(learning_rate, weight_decay, mask, scale_decay_by_lr),
    )
