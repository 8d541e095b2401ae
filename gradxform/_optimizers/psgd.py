"""PSGD-Kron: momentum preconditioned by a fitted Kronecker-factored ``Q^T Q``."""

from __future__ import annotations

from typing import Any

import jax

from gradxform import _checks
from gradxform._base import GradientTransformation, Mask, ScalarOrSchedule, chain
from gradxform._transforms.psgd import scale_by_kron
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.weight_decay import add_decayed_weights


def kron(
    learning_rate: ScalarOrSchedule = 0.001,
    b1: float = 0.9,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Mask = None,
    preconditioner_update_probability: Any = None,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
    momentum_into_precond_update: bool = True,
    preconditioner_lr: float = 0.1,
    preconditioner_init_scale: float = 1.0,
    mu_dtype: Any | None = None,
    precond_dtype: Any | None = None,
    *,
    key: jax.Array | int = 0,
) -> GradientTransformation:
    """PSGD-Kron (Xi-Lin Li, 2015, "Preconditioned Stochastic Gradient Descent",
    arXiv:1512.04202; 2022, "Black Box Lie Group Preconditioners for SGD",
    arXiv:2211.04422)::

        M_t = bias-corrected momentum of g_t                     (decay b1)
        Q   = Q_1 (x) ... (x) Q_n, one triangular or diagonal factor per axis,
              fitted to (v_t, M_t) with v_t ~ N(0, I) at the steps the schedule picks
        u_t = P M_t * min(1, 1.1 / (rms(P M_t) + 1e-6)),    P = Q^T Q
        theta_t = theta_{t-1} - eta_t * (u_t + lambda * theta_{t-1})

    The fit drives ``P`` towards ``(E[M M^T])^{-1/2}`` in Kronecker-factored form
    (:func:`scale_by_kron`, whose arguments these are). The weight decay is decoupled
    (times ``eta`` only); ``weight_decay_mask`` picks the leaves it applies to (all by
    default; pytorch-optimizer's ``Kron`` decays the leaves of two or more axes). A fit
    whose new factors for a leaf are not finite keeps that leaf's previous factors and is
    counted in the state's ``failures``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: momentum decay in ``[0, 1)``.
      weight_decay: non-negative decoupled decay ``lambda``, or a schedule of it.
      weight_decay_mask: which leaves to decay (a tree of bools or a function of the params).
      preconditioner_update_probability: a probability in ``[0, 1]`` or a schedule of
        the step; ``None``: :func:`precond_update_prob_schedule`'s default.
      max_size_triangular: axes longer than this get a diagonal factor.
      min_ndim_triangular: leaves with fewer axes get diagonal factors only.
      memory_save_mode: ``None``, ``"one_diag"``, ``"smart_one_diag"`` or ``"all_diag"``.
      momentum_into_precond_update: fit the preconditioner to the momentum (else the
        gradient).
      preconditioner_lr: the fit's step size, in ``(0, 1)``.
      preconditioner_init_scale: positive scale of the initial ``Q``.
      mu_dtype: dtype of the momentum; default: each parameter's.
      precond_dtype: dtype of the stored factors; default: each parameter's.
      key: a typed PRNG key or a non-negative int seed for the probe vectors.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
      >>> tx = gx.kron(gx.cosine_decay_schedule(0.1, 50))  # a whitened step: decay the rate
      >>> state = tx.init(params)
      >>> loss = lambda p: jnp.sum((p["w"] @ jnp.ones(2) - 1.0) ** 2) + jnp.sum(p["b"] ** 2)
      >>> for _ in range(50):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     params = gx.apply_updates(params, updates)
      >>> bool(loss(params) < 0.01)  # from 3.0
      True
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_kron(
            b1,
            preconditioner_update_probability,
            max_size_triangular,
            min_ndim_triangular,
            memory_save_mode,
            momentum_into_precond_update,
            preconditioner_lr,
            preconditioner_init_scale,
            mu_dtype,
            precond_dtype,
            key=key,
        ),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )
