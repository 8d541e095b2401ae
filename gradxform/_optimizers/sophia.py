"""Sophia: the clipped Hessian-diagonal step, decoupled weight decay and the learning rate."""

from __future__ import annotations

from typing import Any

import chex

from gradxform import _checks
from gradxform._base import GradientTransformation, Mask, ScalarOrSchedule, chain
from gradxform._transforms.hessian_diag import hutchinson_estimator_diag_hessian
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.sophia import check_sophia_arguments, scale_by_sophia
from gradxform._transforms.weight_decay import add_decayed_weights


def sophia(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.965,
    b2: chex.Numeric = 0.99,
    eps: chex.Numeric = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    weight_decay_mask: Mask = None,
    gamma: chex.Numeric = 0.01,
    clip_threshold: chex.Numeric | None = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: GradientTransformation = hutchinson_estimator_diag_hessian(),  # noqa: B008
    mu_dtype: Any | None = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
    *,
    nu_dtype: Any | None = None,
    bias_correction: bool = True,
    hessian_first: bool = False,
) -> GradientTransformation:
    """Sophia (Liu et al. 2023, "Sophia: A Scalable Stochastic Second-order Optimizer for
    Language Model Pre-training", arXiv:2305.14342).

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        h_t = b2 * h_{t-k} + (1 - b2) * h_hat_t     every k = update_interval steps
        theta_t = theta_{t-1} - eta * (clip(m_t / (1 - b1**t) / max(gamma * h, eps),
                                            clip_threshold) + lambda * theta_{t-1})

    as :func:`scale_by_sophia` (``h`` is the average before this step's estimate, as in
    optax; ``hessian_first=True``: after), then :func:`add_decayed_weights` and
    :func:`scale_by_learning_rate`. ``h_hat`` comes from ``hessian_diagonal_fn``: by
    default Hutchinson's estimator (Sophia-H), which needs the loss as a function of the
    params, passed at every step as ``update(grads, state, params, obj_fn=f)``;
    :func:`gnb_estimator_diag_hessian` (Sophia-G) takes ``logits_fn=`` instead. On
    several devices the estimate must be averaged across them like the gradient.

    pytorch-optimizer's ``SophiaH(lr, betas=(b1, b2), weight_decay=wd, p, eps,
    update_period=k)`` is ``sophia(lr * gamma, b1, b2, eps * gamma, wd / gamma, gamma=gamma,
    clip_threshold=p / gamma, update_interval=k, bias_correction=False,
    hessian_first=True)`` for any ``gamma > 0`` (with its probes: ``distribution=
    "gaussian"`` in the estimator).

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: decay of the Hessian-diagonal average in ``[0, 1)``.
      eps: non-negative floor of the denominator.
      weight_decay: non-negative decoupled decay ``lambda`` (times ``eta``), or a schedule.
      weight_decay_mask: which leaves to decay (a tree of bools, a prefix, or a function).
      gamma: non-negative scale of the Hessian diagonal.
      clip_threshold: positive bound of each coordinate of the step, or ``None``.
      update_interval: steps between two estimates (an int >= 1).
      hessian_diagonal_fn: the estimator of the Hessian's diagonal (a transformation).
      mu_dtype: dtype of the first moment.
      verbose: print the win rate (fraction of coordinates not clipped).
      print_win_rate_every_n_steps: the period of that print (>= 1 when verbose).
      nu_dtype: dtype of the Hessian-diagonal average.
      bias_correction: divide ``m_t`` by ``1 - b1**t`` (optax; the paper does not).
      hessian_first: divide by the average that includes this step's estimate (the paper).

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> loss = lambda p: jnp.sum(jnp.array([1.0, 100.0]) * p**2)
      >>> params = jnp.array([1.0, 1.0])
      >>> tx = gx.sophia(0.1, update_interval=1, weight_decay=0.0)
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     u, state = tx.update(jax.grad(loss)(params), state, params, obj_fn=loss)
      ...     params = gx.apply_updates(params, u)
      >>> params.round(4)  # each coordinate moved by eta * clip_threshold per step
      Array([0.7, 0.7], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.non_negative("weight_decay", weight_decay)
    check_sophia_arguments(
        b1, b2, eps, gamma, clip_threshold, update_interval, verbose, print_win_rate_every_n_steps
    )
    return chain(
        scale_by_sophia(
            b1,
            b2,
            eps,
            gamma,
            clip_threshold,
            update_interval,
            hessian_diagonal_fn,
            mu_dtype,
            verbose,
            print_win_rate_every_n_steps,
            nu_dtype=nu_dtype,
            bias_correction=bias_correction,
            hessian_first=hessian_first,
        ),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )
