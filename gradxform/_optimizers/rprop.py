"""Rprop as a named optimizer."""

from __future__ import annotations

import chex

from gradxform._base import GradientTransformation, chain
from gradxform._transforms.rprop import check_rprop_args, scale_by_rprop
from gradxform._transforms.scaling import scale_by_learning_rate


def rprop(
    learning_rate: chex.Numeric,
    eta_minus: chex.Numeric = 0.5,
    eta_plus: chex.Numeric = 1.2,
    min_step_size: chex.Numeric = 1e-6,
    max_step_size: chex.Numeric = 50.0,
    *,
    immediate: bool = False,
) -> GradientTransformation:
    """Rprop, resilient backpropagation (Riedmiller & Braun, 1993, "A Direct Adaptive Method
    for Faster Backpropagation Learning: the RPROP Algorithm"), in the iRprop- form of
    Igel & Hüsken (2000).

    ::

        theta_t = theta_{t-1} - u_t       (u_t: see scale_by_rprop)

    Only the signs of the gradients matter: each coordinate's step size grows by
    ``eta_plus`` while its gradient keeps its sign and shrinks by ``eta_minus`` when the
    sign changes, within ``[min_step_size, max_step_size]``. As ``optax.rprop``, the step
    computed at one update is applied at the next; ``immediate=True`` applies it at once,
    as ``torch.optim.Rprop(lr, etas=(eta_minus, eta_plus), step_sizes=(min_step_size,
    max_step_size))`` does. Rprop is meant for full-batch gradients.

    Args:
      learning_rate: the positive initial step size (torch's ``lr``).
      eta_minus: the factor in ``[0, 1]`` that shrinks a step size after a change of sign.
      eta_plus: the factor ``>= 1`` that grows it while the sign holds.
      min_step_size: the non-negative smallest step size.
      max_step_size: the positive largest step size.
      immediate: apply each update's step at once (torch), not at the next update (optax).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import rprop
      >>> tx = rprop(0.1, immediate=True)
      >>> tx.update(jnp.array([3.0, -1.0]), tx.init(jnp.zeros(2)))[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    check_rprop_args(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size, immediate)
    return chain(
        scale_by_rprop(
            learning_rate,
            eta_minus,
            eta_plus,
            min_step_size,
            max_step_size,
            immediate=immediate,
        ),
        scale_by_learning_rate(1.0),  # the sign flip; integer leaves pass through
    )
