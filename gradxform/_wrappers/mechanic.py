"""Mechanic (Cutkosky, Defazio & Mehta, 2023, "Mechanic: A Learning Rate Tuner"):
``mechanize`` learns the scale of any optimizer's updates."""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformationExtraArgs,
    transformation,
    with_extra_args_support,
)
from gradxform._transforms.lr_free import _floats, _refill, _scalar_dtype, _total, _vdot


class MechanicState(NamedTuple):
    """The base optimizer's state, the step count, Mechanic's per-beta accumulators ``r``,
    ``m``, ``v`` and scales ``s`` (each of shape ``(num_betas,)``), and the initial params
    ``x0``."""

    base_optimizer_state: Any
    count: chex.Array
    r: chex.Array
    m: chex.Array
    v: chex.Array
    s: chex.Array
    x0: chex.ArrayTree


def mechanize(
    base_optimizer: Any,
    weight_decay: chex.Numeric = 1e-2,
    eps: chex.Numeric = 1e-8,
    s_init: chex.Numeric = 1e-6,
    num_betas: int = 6,
) -> GradientTransformationExtraArgs:
    """Mechanic: learn the scale of ``base_optimizer``'s updates (Cutkosky et al., 2023).

    The params move to ``x_t = x_0 - S_t * Delta_t``, where ``Delta_t`` accumulates the
    base optimizer's updates and ``S_t = sum_i s_{t,i}`` is a scale learned online, one
    learner per ``beta_i = 1 - 10**-i`` (``i = 1 .. num_betas``)::

        Delta_{t-1} = (x_0 - x_{t-1}) / (S_{t-1} + eps)         (recovered from the params)
        g~_t = g_t + lambda * S_{t-1} * ||g_t|| / (||x_{t-1}|| + eps) * x_{t-1}
        h_t = <g~_t, Delta_{t-1}>
        m_{t,i} = max(beta_i * m_{t-1,i}, |h_t| + eps)
        v_{t,i} = beta_i**2 * v_{t-1,i} + h_t**2
        r_{t,i} = beta_i * r_{t-1,i} + clip(h_t, -m_{t-1,i}, m_{t-1,i}) * s_{t-1,i}
        s_{t,i} = (s_init / num_betas * m_{t,i} + max(r_{t,i}, 0)) / (sqrt(v_{t,i}) + eps)
        x_t = x_0 - S_t * (Delta_{t-1} - u_t)                  (u_t: the base update)

    The update returned is ``x_t - x_{t-1} = (x_0 - x_{t-1}) (1 - S_t / (S_{t-1} + eps))
    + S_t u_t``, formed without subtracting the params themselves from ``x_t``, so it
    keeps its precision however small it is next to the params. ``x_0`` is taken from
    the params at the first update (``init`` depends on shapes only). Arguments, state
    and behaviour are those of ``optax.contrib.mechanize``. A schedule of the base
    optimizer (with a peak of 1) is kept; Mechanic learns its scale.

    Args:
      base_optimizer: the transformation whose updates are scaled (gradxform's or optax's).
      weight_decay: ``lambda``, non-negative; Mechanic's own decay in ``h`` (it does not
        reach the base optimizer).
      eps: non-negative term of the denominators and of ``m``.
      s_init: positive initial scale ``S_0`` (shared by the betas).
      num_betas: number of betas, an int >= 1.

    Returns:
      A transformation whose state is a :class:`MechanicState`.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.mechanize(gx.sgd(1.0), s_init=0.5)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([0.5, 0.5]), state, params)
      >>> updates
      Array([-0.25, -0.25], dtype=float32)

    References:
      Cutkosky, Defazio & Mehta, "Mechanic: A Learning Rate Tuner", NeurIPS 2023.
    """
    _checks.transformation("base_optimizer", base_optimizer)
    _checks.non_negative("weight_decay", weight_decay, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.positive("s_init", s_init, allow_schedule=False)
    _checks.integer("num_betas", num_betas, low=1)
    base = with_extra_args_support(base_optimizer)

    def init_fn(params):
        scalar = _scalar_dtype(params)
        return MechanicState(
            base_optimizer_state=base.init(params),
            count=_tree.zero_count(),
            r=jnp.zeros([num_betas], scalar),
            m=jnp.zeros([num_betas], scalar),
            v=jnp.zeros([num_betas], scalar),
            s=jnp.full([num_betas], s_init, scalar),
            x0=_tree.zeros_like(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        _checks.check_updates(updates, state.x0, "mechanize")
        _checks.check_params(updates, params, "mechanize", allow_complex=False)
        base_updates, base_state = base.update(
            updates, state.base_optimizer_state, params, **extra_args
        )
        real = _tree.compute_dtype(state.s.dtype)
        first = state.count == 0
        e = jnp.asarray(eps).astype(real)
        s_old = state.s.astype(real)
        s_sum = jnp.sum(s_old)

        leaves = _floats(updates, params, state.x0, base_updates)
        # x0 - x_{t-1}: exact (Sterbenz) while the params stay within a factor 2 of x0.
        moved = [
            jnp.where(first, jnp.zeros_like(p, real), x0.astype(real) - p.astype(real))
            for _, p, x0, _ in leaves
        ]
        grad_norm = jnp.sqrt(_total([jnp.sum(g.astype(real) ** 2) for g, *_ in leaves], real))
        param_norm = jnp.sqrt(_total([jnp.sum(p.astype(real) ** 2) for _, p, *_ in leaves], real))
        decay = jnp.asarray(weight_decay).astype(real) * s_sum * grad_norm / (param_norm + e)
        # h = <g + decay x, Delta_prev> with Delta_prev = (x0 - x) / (S + eps).
        h = (
            _vdot([g for g, *_ in leaves], moved, real)
            + decay * _vdot([p for _, p, *_ in leaves], moved, real)
        ) / (s_sum + e)

        i = jnp.arange(1, num_betas + 1, dtype=real)
        betas = 1 - jnp.asarray(0.1, real) ** i
        m_old = state.m.astype(real)
        m = jnp.maximum(betas * m_old, jnp.abs(h) + e)
        v = betas**2 * state.v.astype(real) + h**2
        r = betas * state.r.astype(real) + jnp.clip(h, -m_old, m_old) * s_old
        wealth = jnp.asarray(s_init).astype(real) / num_betas * m + jnp.maximum(r, 0)
        s = wealth / (jnp.sqrt(v) + e)
        s_new = jnp.sum(s)

        # x_t - x_{t-1} = (x0 - x_{t-1}) (1 - S_t / (S_{t-1} + eps)) + S_t u_t.
        keep = 1 - s_new / (s_sum + e)
        out = [
            _tree.cast_like(d * keep + s_new * u.astype(real), g)
            for d, (g, _, _, u) in zip(moved, leaves, strict=True)
        ]
        x0 = [
            jnp.where(first, p.astype(real), x.astype(real)).astype(x.dtype)
            for _, p, x, _ in leaves
        ]
        scalar = state.s.dtype
        return _refill(updates, out, updates), MechanicState(
            base_optimizer_state=base_state,
            count=_tree.safe_increment(state.count),
            r=r.astype(scalar),
            m=m.astype(scalar),
            v=v.astype(scalar),
            s=s.astype(scalar),
            x0=_refill(state.x0, x0, updates),
        )

    return transformation(init_fn, update_fn, inner=(base,))
