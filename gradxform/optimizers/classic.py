"""SGD with momentum (both Nesterov forms), AdaGrad, RMSProp, AdaDelta and FTRL."""

from __future__ import annotations

from typing import Any

import chex
import jax

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, Params, ScalarOrSchedule, chain, identity
from gradxform.transforms.adaptive import scale_by_adadelta
from gradxform.transforms.decay import add_decayed_weights
from gradxform.transforms.ftrl import scale_by_ftrl
from gradxform.transforms.moments import (
    TraceState,
    scale_by_adagrad,
    scale_by_momentum,
    scale_by_rms,
)
from gradxform.transforms.scaling import scale_by_learning_rate


def _momentum(momentum: chex.Numeric | None, nesterov: bool,
              accumulator_dtype: Any | None) -> GradientTransformation:
    if momentum is None:
        if nesterov:
            raise ValueError("nesterov=True needs a momentum value, got momentum=None")
        return identity()
    return scale_by_momentum(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)


def sgd(learning_rate: ScalarOrSchedule, momentum: chex.Numeric | None = None,
        nesterov: bool = False, *, accumulator_dtype: Any | None = None,
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
    return chain(_momentum(momentum, nesterov, accumulator_dtype),
                 scale_by_learning_rate(learning_rate))


def adagrad(learning_rate: ScalarOrSchedule, initial_accumulator_value: chex.Numeric = 0.1,
            eps: chex.Numeric = 1e-7, *, eps_in_sqrt: bool = True) -> GradientTransformation:
    """AdaGrad (Duchi, Hazan & Singer, 2011, "Adaptive Subgradient Methods").

    ::

        s_t = s_{t-1} + g_t**2,   s_0 = initial_accumulator_value
        theta_t = theta_{t-1} - eta * g_t / sqrt(s_t + eps)

    With ``eps_in_sqrt=False`` the step is ``eta * g_t / (sqrt(s_t) + eps)``,
    which with ``initial_accumulator_value=0, eps=1e-10`` is torch.optim.Adagrad.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      initial_accumulator_value: non-negative start of the sum of squares.
      eps: non-negative stability term.
      eps_in_sqrt: whether ``eps`` is added inside the square root.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.adagrad(1.0, initial_accumulator_value=0.0, eps=0.0)
      >>> tx.update(jnp.array([3.0, -4.0]), tx.init(jnp.zeros(2)))[0]
      Array([-1.,  1.], dtype=float32)
    """
    return chain(scale_by_adagrad(initial_accumulator_value, eps, eps_in_sqrt=eps_in_sqrt),
                 scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate: ScalarOrSchedule, decay: chex.Numeric = 0.9,
            eps: chex.Numeric = 1e-8, initial_scale: chex.Numeric = 0.0,
            eps_in_sqrt: bool = True, centered: bool = False,
            momentum: chex.Numeric | None = None, nesterov: bool = False,
            ) -> GradientTransformation:
    """RMSProp (Tieleman & Hinton, 2012, Lecture 6.5), optionally centered and with momentum.

    ::

        nu_t = decay * nu_{t-1} + (1 - decay) * g_t**2
        s_t  = nu_t - mu_t**2 if centered (mu_t the EMA of g_t) else nu_t
        d_t  = g_t / sqrt(s_t + eps)   (eps_in_sqrt=False: g_t / (sqrt(s_t) + eps))
        theta_t = theta_{t-1} - eta * d_t               without momentum
        b_t = momentum * b_{t-1} + eta * d_t,  theta_t = theta_{t-1} - b_t   with it

    ``eps_in_sqrt=False`` with ``initial_scale=0`` is torch.optim.RMSprop
    (``alpha=decay``); the centered form is Graves (2013).

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      decay: averaging decay in ``[0, 1)`` (torch's ``alpha``).
      eps: non-negative stability term.
      initial_scale: initial value of ``nu``.
      eps_in_sqrt: whether ``eps`` is added inside the square root.
      centered: divide by an estimate of the variance instead of the raw second moment.
      momentum: momentum coefficient in ``[0, 1)``, or ``None``.
      nesterov: Nesterov momentum (needs ``momentum``).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.rmsprop(0.01, decay=0.75, eps=0.0)
      >>> tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))[0]
      Array([-0.02], dtype=float32)
    """
    return chain(
        scale_by_rms(decay, eps, eps_in_sqrt=eps_in_sqrt, centered=centered,
                     initial_scale=initial_scale),
        scale_by_learning_rate(learning_rate),
        _momentum(momentum, nesterov, None),
    )


def sgd_nesterov_lookahead(learning_rate: ScalarOrSchedule,
                           momentum: chex.Numeric = 0.9) -> GradientTransformation:
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
      >>> from gradxform.optimizers.classic import nesterov_lookahead_point, sgd_nesterov_lookahead
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
    return chain(scale_by_learning_rate(learning_rate), scale_by_momentum(momentum))


def nesterov_lookahead_point(params: Params, state: Any, momentum: chex.Numeric) -> Params:
    """``theta + mu * v``: where :func:`sgd_nesterov_lookahead` wants the next gradient.

    Args:
      params: the current parameters ``theta``.
      state: the state of ``sgd_nesterov_lookahead(learning_rate, momentum)``.
      momentum: the same ``mu``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform.optimizers.classic import nesterov_lookahead_point, sgd_nesterov_lookahead
      >>> tx = sgd_nesterov_lookahead(0.1, momentum=0.5)
      >>> theta = jnp.zeros(1)
      >>> _, state = tx.update(jnp.ones(1), tx.init(theta), theta)  # v = -0.1
      >>> nesterov_lookahead_point(theta, state, momentum=0.5)
      Array([-0.05], dtype=float32)
    """
    _checks.decay_rate("momentum", momentum, allow_schedule=False)
    trace = state[1]
    if not isinstance(trace, TraceState):
        raise TypeError("state must be the state of sgd_nesterov_lookahead, got "
                        f"{type(state).__name__}")
    _tree.check_same_layout(trace.trace, params, what="the momentum", against="params")

    def shift(p, v):
        if not _tree.is_inexact(p):
            return p
        dtype = _tree.promote(_tree.compute_dtype(p.dtype), v.dtype)
        mu = jax.numpy.asarray(momentum).astype(dtype)
        return (p.astype(dtype) + mu * v.astype(dtype)).astype(p.dtype)

    return jax.tree.map(shift, params, trace.trace)


def adadelta(learning_rate: ScalarOrSchedule = 1.0, rho: chex.Numeric = 0.9,
             eps: chex.Numeric = 1e-6, weight_decay: chex.Numeric = 0.0, *,
             accumulator_dtype: Any | None = None) -> GradientTransformation:
    """AdaDelta (Zeiler, 2012, "ADADELTA: An Adaptive Learning Rate Method", Algorithm 1).

    ::

        g~_t      = g_t + lambda * theta_{t-1}                  (coupled L2, if lambda > 0)
        E[g^2]_t  = rho * E[g^2]_{t-1} + (1 - rho) * g~_t**2
        d_t       = sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g~_t
        E[dx^2]_t = rho * E[dx^2]_{t-1} + (1 - rho) * d_t**2
        theta_t   = theta_{t-1} - eta * d_t

    The paper has ``eta = 1``. Identical to ``torch.optim.Adadelta(lr, rho,
    eps, weight_decay)``, ``optax.adadelta`` and (without weight decay)
    ``keras.optimizers.Adadelta``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      rho: averaging decay in ``[0, 1)``.
      eps: positive stability term.
      weight_decay: non-negative coupled L2 coefficient ``lambda`` (needs the params).
      accumulator_dtype: dtype of both running averages.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform.optimizers.classic import adadelta
      >>> tx = adadelta(rho=0.5, eps=0.25)
      >>> tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))[0]  # -sqrt(0.25 / 0.75)
      Array([-0.57735026], dtype=float32)
    """
    _checks.non_negative("weight_decay", weight_decay, allow_schedule=False)
    decay = identity() if _is_zero(weight_decay) else add_decayed_weights(weight_decay)
    return chain(decay, scale_by_adadelta(rho, eps, accumulator_dtype=accumulator_dtype),
                 scale_by_learning_rate(learning_rate))


def _is_zero(value: Any) -> bool:
    return isinstance(value, int | float) and value == 0


def ftrl(learning_rate: ScalarOrSchedule, learning_rate_power: chex.Numeric = -0.5,
         initial_accumulator_value: chex.Numeric = 0.1, l1: chex.Numeric = 0.0,
         l2: chex.Numeric = 0.0, l2_shrinkage: chex.Numeric = 0.0, beta: chex.Numeric = 0.0, *,
         proximal_center: str = "origin",
         accumulator_dtype: Any | None = None) -> GradientTransformation:
    """FTRL-Proximal (McMahan et al., 2013, "Ad Click Prediction: a View from the Trenches").

    ::

        n_t = n_{t-1} + g_t**2,   sigma_t = (sqrt(n_t) - sqrt(n_{t-1})) / alpha
        z_t = z_{t-1} + g_t + 2 l2_shrinkage w_t - sigma_t w_t
        w_{t+1} = 0 if |z_t| <= l1 else -(z_t - l1 sign(z_t)) / ((beta + sqrt(n_t)) / alpha + 2 l2)

    (``sqrt`` is the power ``-learning_rate_power``.) Weights whose
    accumulated gradient ``|z|`` stays within ``l1`` are exactly zero.
    Identical to ``keras.optimizers.Ftrl`` with the same arguments
    (``l1_regularization_strength``, ``l2_regularization_strength``,
    ``l2_shrinkage_regularization_strength``). See :func:`scale_by_ftrl` for
    ``proximal_center``.

    Args:
      learning_rate: positive ``alpha``, a float, JAX scalar or schedule.
      learning_rate_power: non-positive power; -0.5 is the paper's.
      initial_accumulator_value: non-negative ``n_0``.
      l1: non-negative L1 strength.
      l2: non-negative L2 strength.
      l2_shrinkage: non-negative L2 shrinkage strength.
      beta: non-negative ``beta``.
      proximal_center: ``"origin"`` (paper, keras) or ``"params"``.
      accumulator_dtype: dtype of ``n`` and ``z``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradxform as gx
      >>> from gradxform.optimizers.classic import ftrl
      >>> w = jnp.zeros(2)
      >>> tx = ftrl(1.0, initial_accumulator_value=0.0, l1=1.0)
      >>> u, _ = tx.update(jnp.array([0.5, -4.0]), tx.init(w), w)
      >>> gx.apply_updates(w, u)  # (0, -(-4 + 1) / 4)
      Array([0.  , 0.75], dtype=float32)
    """
    return chain(scale_by_ftrl(learning_rate, learning_rate_power, initial_accumulator_value,
                               l1, l2, l2_shrinkage, beta, proximal_center=proximal_center,
                               accumulator_dtype=accumulator_dtype))
