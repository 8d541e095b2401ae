"""Coin betting: COCOB-Backprop (Orabona & Tommasi, 2017, "Training Deep Networks without
Learning Rates Through Coin Betting", Algorithm 2).

Every coordinate bets a fraction of its wealth (the initial stake ``L`` plus its reward)
on the sign of the sum of its negative gradients; no learning rate. Real leaves only:
the bet and the reward compare signs and magnitudes of real numbers.

``x_0`` is taken coordinate by coordinate from the params of the first update with a
nonzero gradient there (before it the coordinate has not moved), so that ``init``
depends on shapes and dtypes only. When ``init`` and the first ``update`` see the same
params, the usual case, the result is optax's.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, transformation

_NO_COMPLEX_BET = "a bet on the sign of a sum of gradients needs real gradients"


class COCOBState(NamedTuple):
    """Per coordinate: the starting point ``x_0``, the sum of negative gradients ``theta``,
    the largest gradient magnitude ``L``, the sum of magnitudes ``G`` and the reward
    ``Reward``."""

    init_particles: chex.ArrayTree
    cumulative_gradients: chex.ArrayTree
    scale: chex.ArrayTree
    subgradients: chex.ArrayTree
    reward: chex.ArrayTree


def scale_by_cocob(alpha: chex.Numeric = 100.0, eps: chex.Numeric = 1e-8) -> GradientTransformation:
    """COCOB-Backprop's step (Orabona & Tommasi, 2017, Algorithm 2), coordinate by coordinate.

    ::

        L_t = max(L_{t-1}, |g_t|)                      L_0 = eps
        G_t = G_{t-1} + |g_t|
        Reward_t = max(Reward_{t-1} - g_t * (x_t - x_0), 0)
        theta_t = theta_{t-1} - g_t
        x_{t+1} = x_0 + theta_t / (L_t * max(G_t + L_t, alpha * L_t)) * (L_t + Reward_t)
        u_t = x_{t+1} - x_t

    The update already points downhill: add it as it is. A coordinate whose
    denominator is zero (every gradient zero and ``eps`` rounded to zero in float16)
    does not move.

    Args:
      alpha: non-negative ``alpha``: the bet is at most ``1 / alpha`` of the wealth
        until ``G_t`` exceeds ``alpha * L_t``.
      eps: non-negative initial ``L_0``, keeping the first denominator positive.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_cocob(alpha=2.0, eps=0.0)
      >>> params = jnp.zeros(2)
      >>> tx.update(jnp.array([1.0, -4.0]), tx.init(params), params)[0]  # -g / (2 |g|)
      Array([-0.5,  0.5], dtype=float32)
    """
    _checks.non_negative("alpha", alpha, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)

    def init_fn(params):
        _checks.check_real(params, what="scale_by_cocob params", reason=_NO_COMPLEX_BET)
        # one buffer per field: a state whose leaves shared one could not be donated
        return COCOBState(
            init_particles=_tree.zeros_like(params),
            cumulative_gradients=_tree.zeros_like(params),
            scale=_tree.full_like(params, eps),
            subgradients=_tree.zeros_like(params),
            reward=_tree.zeros_like(params),
        )

    def step(g, p, p0, theta, big_l, big_g, reward):
        dtype = _tree.compute_dtype(g.dtype)
        g, p, p0, theta, big_l, big_g, reward = (
            jnp.asarray(x).astype(dtype) for x in (g, p, p0, theta, big_l, big_g, reward)
        )
        p0 = jnp.where(big_g == 0, p, p0)  # nothing moved this coordinate yet
        big_l = jnp.maximum(big_l, jnp.abs(g))
        big_g = big_g + jnp.abs(g)
        reward = jnp.maximum(reward - g * (p - p0), 0)
        theta = theta - g
        den = big_l * jnp.maximum(big_g + big_l, jnp.asarray(alpha, dtype) * big_l)
        bet = jnp.where(den > 0, theta / jnp.where(den > 0, den, 1), 0)
        # x_{t+1} - x_t as (x_0 - x_t) + bet: the difference of two close weights is exact,
        # so the update carries no rounding of the weights' size.
        return (p0 - p) + bet * (big_l + reward), p0, theta, big_l, big_g, reward

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "scale_by_cocob")
        _checks.check_updates(updates, state.init_particles, "scale_by_cocob")
        _checks.check_real(updates, what="scale_by_cocob updates", reason=_NO_COMPLEX_BET)

        def leaf(g, p, p0, theta, big_l, big_g, reward):
            if not _tree.is_inexact(p):
                return g, p0, theta, big_l, big_g, reward
            out = step(g, p, p0, theta, big_l, big_g, reward)
            stored = (g, p0, theta, big_l, big_g, reward)
            return tuple(_tree.cast_like(x, like) for x, like in zip(out, stored, strict=True))

        u, p0, theta, big_l, big_g, reward = _tree.map_unzip(leaf, updates, params, *state)
        return u, COCOBState(p0, theta, big_l, big_g, reward)

    return transformation(init_fn, update_fn)
