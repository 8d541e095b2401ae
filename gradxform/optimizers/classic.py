"""SGD with momentum, AdaGrad and RMSProp."""

from __future__ import annotations

from typing import Any

import chex

from gradxform._base import GradientTransformation, ScalarOrSchedule, chain, identity
from gradxform.transforms.moments import scale_by_adagrad, scale_by_momentum, scale_by_rms
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
