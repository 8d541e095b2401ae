"""Shampoo and SOAP: Kronecker-factored preconditioners, as chains."""

from __future__ import annotations

from typing import Any

import chex

from gradxform import _checks
from gradxform._base import GradientTransformation, Mask, ScalarOrSchedule, chain
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.shampoo import scale_by_shampoo
from gradxform._transforms.soap import scale_by_soap
from gradxform._transforms.weight_decay import add_decayed_weights


def shampoo(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    matrix_eps: chex.Numeric = 1e-6,
    diagonal_eps: chex.Numeric = 1e-10,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask = None,
    *,
    graft_type: str = "adagrad",
    precondition_every: int = 10,
    start_preconditioning_step: int = 10,
    block_size: int = 256,
    max_precondition_dim: int = 8192,
    nesterov: bool = True,
    weight_dimension_numbers: Any = None,
) -> GradientTransformation:
    """Shampoo (Gupta et al. 2018, arXiv:1802.09568; Anil et al. 2020, arXiv:2002.09018).

    ``w_t = w_{t-1} - eta * (u_t + lambda * w_{t-1})`` with ``u_t`` the direction of
    :func:`scale_by_shampoo`: per matrix (block) ``L^{-1/4} G R^{-1/4}`` with
    ``L = b2 L + w G G^T``, ``R = b2 R + w G^T G`` from ``matrix_eps * I``, its norm
    grafted from ``graft_type``'s diagonal direction, with (Nesterov) momentum ``b1``;
    other leaves take the diagonal direction. As ``pytorch_optimizer.ScalableShampoo``
    with ``use_svd=True`` (exact roots), ``decoupled_weight_decay=True``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: momentum decay in ``[0, 1)``.
      b2: decay of the factors and the diagonal moment in ``(0, 1]`` (1: sums).
      matrix_eps: initial diagonal of the factors (the damping).
      diagonal_eps: added to the diagonal direction's denominator.
      weight_decay: decoupled decay ``lambda`` (times ``eta``), or a schedule of it.
      mask: which leaves to decay (a tree of bools or a function of the params).
      graft_type: ``"adagrad"``, ``"rmsprop"``, ``"adam"``, ``"sgd"`` or ``"none"``.
      precondition_every: recompute the inverse roots every this many steps.
      start_preconditioning_step: the first step using the preconditioned direction.
      block_size: the largest block side of a matrix.
      max_precondition_dim: matrices with a larger side are preconditioned diagonally.
      nesterov: Nesterov's form of the momentum.
      weight_dimension_numbers: the matrix view of each leaf (see :func:`scale_by_shampoo`).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
      >>> tx = gx.shampoo(0.1, precondition_every=1, start_preconditioning_step=1)
      >>> grads = {"w": jnp.full((2, 3), 0.5), "b": jnp.ones(3)}
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> updates["b"]  # AdaGrad's direction, Nesterov momentum: -0.1 * 1.9 * 1 / 1
      Array([-0.19, -0.19, -0.19], dtype=float32)
      >>> state[0].failures
      Array(0, dtype=uint32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_shampoo(
            b1,
            b2,
            matrix_eps,
            diagonal_eps,
            graft_type=graft_type,
            precondition_every=precondition_every,
            start_preconditioning_step=start_preconditioning_step,
            block_size=block_size,
            max_precondition_dim=max_precondition_dim,
            nesterov=nesterov,
            weight_dimension_numbers=weight_dimension_numbers,
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def soap(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.95,
    b2: chex.Numeric = 0.95,
    eps: chex.Numeric = 1e-8,
    weight_decay: ScalarOrSchedule = 0.01,
    mask: Mask = None,
    *,
    shampoo_beta: chex.Numeric | None = None,
    precondition_frequency: int = 10,
    max_precondition_dim: int = 10000,
    precondition_1d: bool = False,
    bias_correction: bool = True,
    weight_dimension_numbers: Any = None,
) -> GradientTransformation:
    """SOAP (Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using Adam",
    arXiv:2409.11321).

    ``w_t = w_{t-1} - eta * (u_t + lambda * w_{t-1})`` with ``u_t`` the direction of
    :func:`scale_by_soap`: Adam run in the eigenbasis ``Q_L, Q_R`` of Shampoo's factors,
    ``u_t = Q_L [Q_L^T m_t Q_R / (sqrt(v_t) + eps)] Q_R^T`` (bias-corrected), the
    bases refreshed every ``precondition_frequency`` steps by one power iteration and
    QR. The first step only sets the bases (its update is zero), as the authors' code.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: added to ``sqrt(v_t)``.
      weight_decay: decoupled decay ``lambda`` (times ``eta``), or a schedule of it.
      mask: which leaves to decay (a tree of bools or a function of the params).
      shampoo_beta: decay of the factors; ``None``: ``b2``.
      precondition_frequency: refresh the bases every this many steps.
      max_precondition_dim: the longest side preconditioned.
      precondition_1d: precondition 1-D leaves too.
      bias_correction: Adam's bias correction.
      weight_dimension_numbers: the matrix view of each leaf (see :func:`scale_by_soap`).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> params = jnp.ones((2, 2))
      >>> tx = gx.soap(0.1, weight_decay=0.0)
      >>> state = tx.init(params)
      >>> g = jnp.array([[1.0, 0.0], [0.0, 3.0]])
      >>> u, state = tx.update(g, state, params)
      >>> float(jnp.abs(u).max())  # the first step sets the eigenbasis only
      0.0
      >>> u, state = tx.update(g, state, params)
      >>> jnp.abs(u).round(3)  # then Adam's first step in that basis: -0.1 * sign
      Array([[0.1, 0. ],
             [0. , 0.1]], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_soap(
            b1,
            b2,
            eps,
            shampoo_beta=shampoo_beta,
            precondition_frequency=precondition_frequency,
            max_precondition_dim=max_precondition_dim,
            precondition_1d=precondition_1d,
            bias_correction=bias_correction,
            weight_dimension_numbers=weight_dimension_numbers,
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
