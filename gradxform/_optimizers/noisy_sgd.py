"""SGD with annealed Gaussian gradient noise."""

from __future__ import annotations

import chex
import jax

from gradxform import _checks
from gradxform._base import GradientTransformation, ScalarOrSchedule, chain
from gradxform._transforms.gradient import add_noise
from gradxform._transforms.scaling import scale_by_learning_rate


def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: chex.Numeric = 0.01,
    gamma: chex.Numeric = 0.55,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    """SGD on gradients with annealed Gaussian noise (Neelakantan et al., 2015, "Adding
    Gradient Noise Improves Learning for Very Deep Networks").

    ::

        sigma_t**2 = eta / t**gamma                (t = 1 at the first update)
        theta_t = theta_{t-1} - lr_t * (g_t + sigma_t * z_t),     z_t ~ N(0, I)

    ``chain(add_noise(eta, gamma, key), scale_by_learning_rate(learning_rate))``: with
    the same key, the noise is ``optax.noisy_sgd``'s, draw for draw.

    Args:
      learning_rate: ``lr``, a non-negative float, JAX scalar or schedule.
      eta: non-negative noise variance at the first update.
      gamma: non-negative annealing exponent.
      key: a typed PRNG key (``jax.random.key(0)``) or a non-negative int seed;
        without it the seed 0 is used, with a warning.
      seed: an int seed, the same as ``key=seed`` (optax's former name for it).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from gradxform import noisy_sgd
      >>> tx = noisy_sgd(0.1, eta=0.0, key=jax.random.key(0))   # no noise: plain SGD
      >>> tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))[0]
      Array([-0.1,  0.2], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    return chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))
