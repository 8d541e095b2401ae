"""MADGRAD: momentumized, adaptive, dual-averaged gradients."""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, ScalarOrSchedule, transformation


class MadgradState(NamedTuple):
    """Step count, the weighted sums of squared gradients and of gradients, and the point
    ``x0`` the dual averages start from (optax's state)."""

    count: chex.Array
    grad_sum_sq: chex.ArrayTree
    s: chex.ArrayTree
    x0: chex.ArrayTree


def check_madgrad_args(learning_rate: ScalarOrSchedule, momentum: float, eps: float) -> None:
    _checks.non_negative("learning_rate", learning_rate)
    _checks.decay_rate("momentum", momentum, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)


def scale_by_madgrad(
    learning_rate: ScalarOrSchedule,
    momentum: float = 0.9,
    eps: float = 1e-6,
) -> GradientTransformation:
    """MADGRAD's step (Defazio & Jelassi, 2021, "Adaptivity without Compromise: A
    Momentumized, Adaptive, Dual Averaged Gradient Method for Stochastic Optimization",
    Algorithm 1).

    With ``k = 0`` at the first update and ``eta_k`` the learning rate at step ``k``::

        lambda_k = (eta_k + eps) * sqrt(k + 1)
        s_{k+1} = s_k + lambda_k * g_k,       nu_{k+1} = nu_k + lambda_k * g_k**2
        z_{k+1} = x_0 - s_{k+1} / (cbrt(nu_{k+1}) + eps)
        u_k = x_{k+1} - x_k = (1 - momentum) * (z_{k+1} - x_k)

    The update is the step itself (already descending): chain nothing after it but
    transformations that keep the params on MADGRAD's path. As
    ``optax.contrib.scale_by_madgrad``, except that ``x_0`` is taken from the params of
    the first update instead of those given to ``init`` (the same params in a training
    loop), so that ``init`` needs only shapes and dtypes. Real parameters only.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      momentum: in ``[0, 1)``; ``x_{k+1} = momentum * x_k + (1 - momentum) * z_{k+1}``.
      eps: non-negative term added to the learning rate and to the cube root.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_madgrad
      >>> p = jnp.zeros(1)
      >>> tx = scale_by_madgrad(1.0, momentum=0.0, eps=0.0)
      >>> tx.update(jnp.array([8.0]), tx.init(p), p)[0]  # -8 / cbrt(64)
      Array([-2.], dtype=float32)
    """
    check_madgrad_args(learning_rate, momentum, eps)

    def init_fn(params):
        return MadgradState(
            count=_tree.zero_count(),
            grad_sum_sq=_tree.zeros_like(params),
            s=_tree.zeros_like(params),
            x0=_tree.zeros_like(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "scale_by_madgrad", allow_complex=False)
        _checks.check_updates(updates, state.s, "scale_by_madgrad")
        first = state.count == 0
        eta = _tree.value_at(learning_rate, state.count)
        k = state.count.astype(jnp.float32)

        def leaf(g, nu, s, x0, x):
            g32, x32 = _tree.to_compute(g), _tree.to_compute(x)
            dtype = _tree.promote(g32.dtype, x32.dtype, _tree.compute_dtype(nu.dtype))
            g32, x32 = g32.astype(dtype), x32.astype(dtype)
            x0_32 = jnp.where(first, x32, _tree.to_compute(x0).astype(dtype))
            e = jnp.asarray(eps).astype(dtype)
            lam = (jnp.asarray(eta).astype(dtype) + e) * jnp.sqrt(k.astype(dtype) + 1)
            nu32 = _tree.to_compute(nu).astype(dtype) + lam * g32 * g32
            s32 = _tree.to_compute(s).astype(dtype) + lam * g32
            c = 1 - jnp.asarray(momentum).astype(dtype)
            u = c * ((x0_32 - x32) - s32 / (jnp.cbrt(nu32) + e))
            return (
                _tree.cast_like(u, g),
                _tree.cast_like(nu32, nu),
                _tree.cast_like(s32, s),
                _tree.cast_like(x0_32, x0),
            )

        def per_leaf(g, nu, s, x0, x):
            if not _tree.is_inexact(g):
                return g, nu, s, x0
            return leaf(g, nu, s, x0, x)

        out, nu, s, x0 = _tree.map_unzip(
            per_leaf, updates, state.grad_sum_sq, state.s, state.x0, params
        )
        count = _tree.safe_increment(state.count)
        return out, MadgradState(count=count, grad_sum_sq=nu, s=s, x0=x0)

    return transformation(init_fn, update_fn)
