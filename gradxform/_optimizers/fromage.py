"""Fromage: Frobenius-matched gradient descent."""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp

from gradxform import _checks
from gradxform._base import GradientTransformation, ScalarOrSchedule, chain
from gradxform._transforms.fromage import fromage_shrink
from gradxform._transforms.layerwise import scale_by_trust_ratio
from gradxform._transforms.scaling import scale_by_learning_rate


def _matched_rate(learning_rate: ScalarOrSchedule) -> ScalarOrSchedule:
    """``eta_t / sqrt(1 + eta_t**2)``, a constant or a schedule as ``learning_rate`` is."""
    if callable(learning_rate):
        schedule = learning_rate

        def rate(count: Any) -> Any:
            eta = jnp.asarray(schedule(count))
            return eta / jnp.sqrt(1 + eta * eta)

        return rate
    return learning_rate / (1 + learning_rate**2) ** 0.5


def fromage(
    learning_rate: ScalarOrSchedule, min_norm: chex.Numeric = 1e-6
) -> GradientTransformation:
    """Fromage (Bernstein, Vahdat, Yue & Liu, 2020, "On the Distance between Two Neural
    Networks and the Stability of Learning", Algorithm 1).

    Per leaf ("layer") ``W`` with gradient ``g``::

        W_t = (W_{t-1} - eta_t * max(||W_{t-1}||, m) / max(||g_t||, m) * g_t) / sqrt(1 + eta_t**2)

    (``m = min_norm``; the ratio is 1 when a norm is zero). The step has relative size
    ``eta`` in every layer, and the division by ``sqrt(1 + eta**2)`` keeps the weight
    norms from growing. As ``optax.fromage``: a trust ratio, the learning rate
    ``eta / sqrt(1 + eta**2)``, and the shrinkage ``(1 / sqrt(1 + eta**2) - 1) W``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      min_norm: non-negative floor of both norms.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import fromage
      >>> p = jnp.array([3.0, 4.0])
      >>> tx = fromage(0.75)
      >>> u, _ = tx.update(jnp.array([0.0, 2.0]), tx.init(p), p)
      >>> [round(float(x), 5) for x in p + u]  # ([3, 4] - 0.75 * 5 / 2 * [0, 2]) / 1.25
      [2.4, 0.2]
    """
    _checks.non_negative("learning_rate", learning_rate)
    _checks.non_negative("min_norm", min_norm, allow_schedule=False)
    return chain(
        scale_by_trust_ratio(min_norm),
        scale_by_learning_rate(_matched_rate(learning_rate)),
        fromage_shrink(learning_rate),
    )
