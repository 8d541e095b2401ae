"""Stochastic gradient descent with momentum, in both Nesterov forms."""

from __future__ import annotations

from typing import Any

import chex
import jax

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
    Params,
    ScalarOrSchedule,
    chain,
    identity,
)
from gradxform._transforms.momentum import TraceState, scale_by_momentum
from gradxform._transforms.scaling import scale_by_learning_rate


def _check_momentum(momentum: Any, nesterov: Any, accumulator_dtype: Any) -> None:
    """``momentum`` (or None), ``nesterov`` and ``accumulator_dtype`` as an optimizer names them."""
    if momentum is not None:
        _checks.decay_rate("momentum", momentum, allow_schedule=False)
    _checks.boolean("nesterov", nesterov)
    if momentum is None and nesterov:
        raise ValueError("nesterov=True needs a momentum value, got momentum=None")
    _checks.canonical_dtype(accumulator_dtype, "accumulator_dtype")


def _momentum(
    momentum: chex.Numeric | None, nesterov: bool, accumulator_dtype: Any | None
) -> GradientTransformation:
    _check_momentum(momentum, nesterov, accumulator_dtype)
    if momentum is None:
        return identity()
    return scale_by_momentum(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: chex.Numeric | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any | None = None,
) -> GradientTransformation:
    """Stochastic gradient descent, optionally with heavy-ball or Nesterov momentum.

    ::

        plain:     theta_t = theta_{t-1} - eta * g_t
        momentum:  v_t = mu * v_{t-1} + g_t,  theta_t = theta_{t-1} - eta * v_t
        nesterov:  theta_t = theta_{t-1} - eta * (g_t + mu * v_t)

    (Robbins & Monro, 1951; Polyak, 1964; Sutskever et al., 2013, "On the
    importance of initialization and momentum in deep learning"). Identical to
    ``torch.optim.SGD(lr, momentum, nesterov=...)`` with ``dampening=0``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      momentum: ``mu`` in ``[0, 1)``, or ``None`` for plain SGD.
      nesterov: use Nesterov momentum (needs ``momentum``).
      accumulator_dtype: dtype of the momentum buffer; default: the params'.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> params = jnp.array([1.0, -2.0])
      >>> tx = gx.sgd(0.1, momentum=0.9)
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
      ...     updates, state = tx.update(grads, state, params)
      ...     params = gx.apply_updates(params, updates)
      >>> params
      Array([ 0.06200001, -0.12400001], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _check_momentum(momentum, nesterov, accumulator_dtype)
    return chain(
        _momentum(momentum, nesterov, accumulator_dtype), scale_by_learning_rate(learning_rate)
    )


def sgd_nesterov_lookahead(
    learning_rate: ScalarOrSchedule, momentum: chex.Numeric = 0.9
) -> GradientTransformation:
    """Nesterov momentum in the look-ahead form (Sutskever et al., 2013, eq. 3-4).

    ::

        v_{t+1}     = mu * v_t - eta * grad f(theta_t + mu * v_t)
        theta_{t+1} = theta_t + v_{t+1}

    The gradient is taken at the look-ahead point ``theta_t + mu * v_t``,
    which :func:`nesterov_lookahead_point` computes from the params and the
    state; this transformation returns ``v_{t+1}``.

    ``sgd(eta, mu, nesterov=True)`` (torch, optax) is the same method written
    in the variable ``phi_t = theta_t + mu * v_t`` (Bengio et al., 2013):
    substituting gives ``phi_{t+1} = phi_t - eta * (g_t + mu * b_{t+1})``
    with ``b = -v / eta`` and ``g_t = grad f(phi_t)``, so for a constant
    ``eta`` both produce the same iterates, ``phi_t = theta_t + mu * v_t``.
    With a schedule the forms differ: here ``eta_t`` scales each gradient as
    it enters the velocity, there the whole step.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      momentum: ``mu`` in ``[0, 1)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from gradxform import nesterov_lookahead_point, sgd_nesterov_lookahead
      >>> import gradxform as gx
      >>> f = lambda x: jnp.sum(x**2)
      >>> theta = jnp.array([1.0])
      >>> tx = sgd_nesterov_lookahead(0.1, momentum=0.5)
      >>> state = tx.init(theta)
      >>> for _ in range(2):
      ...     g = jax.grad(f)(nesterov_lookahead_point(theta, state, momentum=0.5))
      ...     v, state = tx.update(g, state, theta)
      ...     theta = gx.apply_updates(theta, v)
      >>> theta  # v1 = -0.2, theta1 = 0.8; g2 = 2 * 0.7, v2 = -0.1 - 0.14
      Array([0.56], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.decay_rate("momentum", momentum, allow_schedule=False)
    return chain(scale_by_learning_rate(learning_rate), scale_by_momentum(momentum))


def nesterov_lookahead_point(params: Params, state: Any, momentum: chex.Numeric) -> Params:
    """``theta + mu * v``: where :func:`sgd_nesterov_lookahead` wants the next gradient.

    Args:
      params: the current parameters ``theta``.
      state: the state of ``sgd_nesterov_lookahead(learning_rate, momentum)``.
      momentum: the same ``mu``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import nesterov_lookahead_point, sgd_nesterov_lookahead
      >>> tx = sgd_nesterov_lookahead(0.1, momentum=0.5)
      >>> theta = jnp.zeros(1)
      >>> _, state = tx.update(jnp.ones(1), tx.init(theta), theta)  # v = -0.1
      >>> nesterov_lookahead_point(theta, state, momentum=0.5)
      Array([-0.05], dtype=float32)
    """
    _checks.decay_rate("momentum", momentum, allow_schedule=False)
    trace = state[1]
    if not isinstance(trace, TraceState):
        raise TypeError(
            f"state must be the state of sgd_nesterov_lookahead, got {type(state).__name__}"
        )
    _checks.check_same_layout(trace.trace, params, what="the momentum", against="params")

    def shift(p, v):
        if not _tree.is_inexact(p):
            return p
        dtype = _tree.promote(_tree.compute_dtype(p.dtype), v.dtype)
        mu = jax.numpy.asarray(momentum).astype(dtype)
        return (p.astype(dtype) + mu * v.astype(dtype)).astype(p.dtype)

    return jax.tree.map(shift, params, trace.trace)
