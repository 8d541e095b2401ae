"""DP-SGD: stochastic gradient descent on clipped, noised per-example gradients."""

from __future__ import annotations

import chex

from gradxform import _checks
from gradxform._base import GradientTransformation, ScalarOrSchedule, chain
from gradxform._optimizers.sgd import _check_momentum, _momentum
from gradxform._transforms.privacy import check_dp_args, differentially_private_aggregate
from gradxform._transforms.scaling import scale_by_learning_rate


def dpsgd(
    learning_rate: ScalarOrSchedule,
    l2_norm_clip: chex.Numeric,
    noise_multiplier: chex.Numeric,
    seed: int,
    momentum: chex.Numeric | None = None,
    nesterov: bool = False,
) -> GradientTransformation:
    """Differentially private SGD (Abadi et al., 2016, "Deep Learning with Differential
    Privacy"): SGD, optionally with momentum, on the output of
    :func:`differentially_private_aggregate`.

    ::

        gbar_b = g_t[b] * min(1, C / ||g_t[b]||)                   (each example b of B)
        gtilde = (sum_b gbar_b + sigma * C * N(0, I)) / B
        plain:     theta_t = theta_{t-1} - eta * gtilde
        momentum:  v_t = mu * v_{t-1} + gtilde,  theta_t = theta_{t-1} - eta * v_t
        nesterov:  theta_t = theta_{t-1} - eta * (gtilde + mu * v_t)

    ``update`` takes per-example gradients: every leaf has the batch on axis 0
    (``jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(params, x, y)``).

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      l2_norm_clip: ``C > 0``, the largest l2 norm of one example's gradient.
      noise_multiplier: ``sigma >= 0``, the noise's standard deviation in units of ``C``.
      seed: the non-negative int seed of the noise's PRNG key.
      momentum: ``mu`` in ``[0, 1)``, or ``None`` for plain SGD.
      nesterov: use Nesterov momentum (needs ``momentum``).

    Returns:
      A :class:`gradxform.GradientTransformation`.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> def loss(w, x, y):
      ...     return (jnp.dot(x, w) - y) ** 2
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]]), jnp.array([1.0, 1.0, 1.0])
      >>> params = jnp.zeros(2)
      >>> tx = gx.dpsgd(0.1, l2_norm_clip=1.0, noise_multiplier=0.0, seed=0, momentum=0.9)
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     grads = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(params, x, y)
      ...     updates, state = tx.update(grads, state, params)
      ...     params = gx.apply_updates(params, updates)
      >>> params.round(4)
      Array([0.1547, 0.174 ], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    check_dp_args(l2_norm_clip, noise_multiplier)
    _checks.integer("seed", seed, low=0)
    _check_momentum(momentum, nesterov, None)
    return chain(
        differentially_private_aggregate(l2_norm_clip, noise_multiplier, seed),
        _momentum(momentum, nesterov, None),
        scale_by_learning_rate(learning_rate),
    )
