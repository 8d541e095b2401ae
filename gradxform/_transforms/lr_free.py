"""Learning-rate-free steps: Prodigy and D-Adaptation (Adam and SGD forms).

Each method estimates the distance ``D`` from the initial point to a solution from
the gradients seen so far, and steps with ``d * learning_rate``, the learning rate
being a schedule around 1. The estimate ``d`` is one scalar for the whole tree (a
sum over every leaf), and it enters both the moments and the step, so neither the
step size nor weight decay can be split off into separate members of a chain: each
method is one transformation, with one state (optax's, where optax has the method).

Arithmetic is done in at least float32. Parameter-shaped state leaves keep the
parameters' dtype; the scalars (``d`` and the weighted numerator) are stored in the
lowest floating dtype of the params, as optax stores them. Complex parameters are
refused: the estimate of ``D`` is a real inner product.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import GradientTransformationExtraArgs, ScalarOrSchedule, transformation

_WHY_REAL = "the estimate of the distance to the solution is a real inner product"


class ProdigyState(NamedTuple):
    """Prodigy's moments, weighted gradient sum, initial params, ``d``, numerator and count."""

    exp_avg: chex.ArrayTree
    exp_avg_sq: chex.ArrayTree
    grad_sum: chex.ArrayTree
    params0: chex.ArrayTree
    estim_lr: chex.Array
    numerator_weighted: chex.Array
    count: chex.Array


class DAdaptAdamWState(NamedTuple):
    """D-Adapt AdamW's moments, weighted gradient sum, ``d``, numerator and count."""

    exp_avg: chex.ArrayTree
    exp_avg_sq: chex.ArrayTree
    grad_sum: chex.ArrayTree
    estim_lr: chex.Array
    numerator_weighted: chex.Array
    count: chex.Array


class DAdaptSGDState(NamedTuple):
    """D-Adapt SGD's state.

    ``s`` is the sum of the scaled gradients, ``z_minus_x`` the gap between the
    dual iterate ``z = x0 - s`` and the params (zero without momentum), ``g0_norm``
    the norm of the first non-zero gradient, ``estim_lr`` the estimate ``d`` and
    ``numerator_weighted`` the sum of ``dlr <g, s>``.
    """

    s: chex.ArrayTree
    z_minus_x: chex.ArrayTree
    g0_norm: chex.Array
    estim_lr: chex.Array
    numerator_weighted: chex.Array
    count: chex.Array


# ------------------------------------------------------------------------ shared pieces


def check_betas(betas: Any) -> None:
    """``betas`` is a pair of decays in ``[0, 1)``."""
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise TypeError(f"betas={betas!r} must be a pair (beta1, beta2)")
    for b in betas:
        try:
            _checks.decay_rate("betas", b, allow_schedule=False)
        except (TypeError, ValueError) as e:
            raise type(e)(f"betas={betas!r}: each must be in [0, 1) ({e})") from None


def check_estimate_args(estim_lr0: Any, coef_name: str | None, coef: Any) -> None:
    """The initial estimate (positive) and, if any, its coefficient (positive)."""
    _checks.positive("estim_lr0", estim_lr0, allow_schedule=False)
    if coef_name is not None:
        _checks.positive(coef_name, coef, allow_schedule=False)


def check_growth_rate(growth_rate: Any) -> None:
    """A growth factor: at least 1, or ``inf`` for unrestricted growth."""
    _checks.number("growth_rate", growth_rate, low=1.0, high=math.inf, allow_schedule=False)


def _scalar_dtype(params: chex.ArrayTree) -> np.dtype:
    """The lowest floating dtype of the params (float32 if there is none), as optax."""
    dtypes = [_tree.real_dtype(_tree.dtype_of(p)) for p in jax.tree.leaves(params)]
    floats = [d for d in dtypes if jnp.issubdtype(d, jnp.floating)]
    if not floats:
        return np.dtype(jnp.float32)
    return min(floats, key=lambda d: (jnp.finfo(d).bits, jnp.finfo(d).nmant))


def _compute(dtype: np.dtype) -> np.dtype:
    return _tree.compute_dtype(dtype)


def _total(values: list[chex.Array], dtype: np.dtype) -> chex.Array:
    """The sum of scalars, in ``dtype``."""
    out = jnp.zeros([], dtype)
    for v in values:
        out = out + v.astype(dtype)
    return out


def _floats(*trees: chex.ArrayTree) -> list[tuple[Any, ...]]:
    """The floating-point leaves of ``trees[0]`` with the matching leaves of the others."""
    columns = [jax.tree.leaves(t) for t in trees]
    return [leaves for leaves in zip(*columns, strict=True) if _tree.is_inexact(leaves[0])]


def _vdot(a: chex.ArrayTree, b: chex.ArrayTree, dtype: np.dtype) -> chex.Array:
    """``sum <a, b>`` over the floating-point leaves, in ``dtype``."""
    return _total(
        [jnp.sum(x.astype(dtype) * y.astype(dtype)) for x, y in _floats(a, b)],
        dtype,
    )


def _l1(tree: chex.ArrayTree, dtype: np.dtype) -> chex.Array:
    """``sum |x|`` over the floating-point leaves, in ``dtype``."""
    return _total([jnp.sum(jnp.abs(x.astype(dtype))) for (x,) in _floats(tree)], dtype)


def _safe_ratio(num: chex.Array, den: chex.Array, fallback: chex.Array) -> chex.Array:
    """``num / den``, or ``fallback`` where ``den`` is zero (no gradient seen yet)."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, jnp.ones_like(den)), fallback)


def _adam_bias(b1: Any, b2: Any, count: chex.Array, on: bool, dtype: np.dtype) -> chex.Array:
    """``sqrt(1 - b2**t) / (1 - b1**t)`` (Adam's bias correction of the step), or 1."""
    if not on:
        return jnp.ones([], dtype)
    one = jnp.ones([], dtype)
    return _tree.bias_correction(one, b1, count) / jnp.sqrt(_tree.bias_correction(one, b2, count))


def _named(init_fn: Any, update_fn: Any, name: str) -> GradientTransformationExtraArgs:
    """The transformation, its errors naming it by its public name."""
    update_fn.__qualname__ = f"{name}.<locals>.update_fn"
    return transformation(init_fn, update_fn)


def _check(updates: chex.ArrayTree, reference: chex.ArrayTree, params: Any, who: str) -> None:
    _checks.check_updates(updates, reference, who)
    _checks.check_params(updates, params, who, allow_complex=False)
    _checks.check_real(params, what="params", reason=_WHY_REAL)


# ------------------------------------------------------------------------------ Prodigy


def prodigy_transformation(
    learning_rate: ScalarOrSchedule,
    betas: tuple[Any, Any],
    beta3: Any,
    eps: Any,
    estim_lr0: Any,
    estim_lr_coef: Any,
    weight_decay: Any,
    safeguard_warmup: bool,
    use_bias_correction: bool,
) -> GradientTransformationExtraArgs:
    """Prodigy as one transformation (arguments checked by :func:`gradxform.prodigy`)."""
    b1, b2 = betas

    def init_fn(params):
        scalar = _scalar_dtype(params)
        return ProdigyState(
            exp_avg=_tree.zeros_like(params),
            exp_avg_sq=_tree.zeros_like(params),
            grad_sum=_tree.zeros_like(params),
            params0=_tree.zeros_like(params),
            estim_lr=jnp.asarray(estim_lr0, scalar),
            numerator_weighted=jnp.zeros([], scalar),
            count=_tree.zero_count(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _check(updates, state.exp_avg, params, "prodigy")
        real = _compute(state.estim_lr.dtype)
        count = _tree.safe_increment(state.count)
        first = state.count == 0
        lr = jnp.asarray(_tree.value_at(learning_rate, state.count)).astype(real)
        c1, c2 = jnp.asarray(b1).astype(real), jnp.asarray(b2).astype(real)
        c3 = jnp.sqrt(c2) if beta3 is None else jnp.asarray(beta3).astype(real)
        d0 = jnp.asarray(estim_lr0).astype(real)
        d = state.estim_lr.astype(real)
        dlr = d * lr * _adam_bias(b1, b2, count, use_bias_correction, real)
        s_scale = (d / d0) * (d if safeguard_warmup else dlr)

        def moments(g, p, m, v, s, p0):
            g32, p32 = g.astype(real), p.astype(real)
            p0 = jnp.where(first, p32, p0.astype(real))
            m = c1 * m.astype(real) + (1 - c1) * d * g32
            v = c2 * v.astype(real) + (1 - c2) * (d * g32) ** 2
            s = c3 * s.astype(real) + s_scale * g32
            return m, v, s, p0

        leaves = _floats(updates, params, state.exp_avg, state.exp_avg_sq, state.grad_sum)
        leaves = [
            (*x, p0) for x, (_, p0) in zip(leaves, _floats(updates, state.params0), strict=True)
        ]
        new = [moments(*x) for x in leaves]
        numerator = _total(
            [
                jnp.sum(x[0].astype(real) * (n[3] - x[1].astype(real)))
                for x, n in zip(leaves, new, strict=True)
            ],
            real,
        )
        nw = c3 * state.numerator_weighted.astype(real) + (d / d0) * dlr * numerator
        denominator = _total([jnp.sum(jnp.abs(n[2])) for n in new], real)
        coef = jnp.asarray(estim_lr_coef).astype(real)
        d_new = jnp.maximum(d, _safe_ratio(coef * nw, denominator, d))
        wd = jnp.asarray(weight_decay).astype(real)

        out, mus, nus, sums, p0s = [], [], [], [], []
        for (g, p, m_old, v_old, s_old, p0_old), (m, v, s, p0) in zip(leaves, new, strict=True):
            step = dlr * m / (jnp.sqrt(v) + d_new * jnp.asarray(eps).astype(real))
            out.append(_tree.cast_like(-wd * dlr * p.astype(real) - step, g))
            mus.append(m.astype(m_old.dtype))
            nus.append(v.astype(v_old.dtype))
            sums.append(s.astype(s_old.dtype))
            p0s.append(p0.astype(p0_old.dtype))
        scalar = state.estim_lr.dtype
        new_state = ProdigyState(
            exp_avg=_refill(state.exp_avg, mus, updates),
            exp_avg_sq=_refill(state.exp_avg_sq, nus, updates),
            grad_sum=_refill(state.grad_sum, sums, updates),
            params0=_refill(state.params0, p0s, updates),
            estim_lr=d_new.astype(scalar),
            numerator_weighted=nw.astype(scalar),
            count=count,
        )
        return _refill(updates, out, updates), new_state

    return _named(init_fn, update_fn, "prodigy")


def _refill(
    tree: chex.ArrayTree, new_floats: list[chex.Array], updates: chex.ArrayTree
) -> chex.ArrayTree:
    """``tree`` with the leaves where ``updates`` is floating point replaced, in order, by
    ``new_floats`` (the leaves :func:`_floats` picked); the others are left as they are."""
    it = iter(new_floats)
    return jax.tree.map(lambda x, u: next(it) if _tree.is_inexact(u) else x, tree, updates)


# -------------------------------------------------------------------------- D-Adapt AdamW


def dadapt_adamw_transformation(
    learning_rate: ScalarOrSchedule,
    betas: tuple[Any, Any],
    eps: Any,
    estim_lr0: Any,
    weight_decay: Any,
    growth_rate: Any,
    use_bias_correction: bool,
) -> GradientTransformationExtraArgs:
    """D-Adapt AdamW as one transformation (arguments checked by :func:`gradxform.dadapt_adamw`)."""
    b1, b2 = betas

    def init_fn(params):
        scalar = _scalar_dtype(params)
        return DAdaptAdamWState(
            exp_avg=_tree.zeros_like(params),
            exp_avg_sq=_tree.zeros_like(params),
            grad_sum=_tree.zeros_like(params),
            estim_lr=jnp.asarray(estim_lr0, scalar),
            numerator_weighted=jnp.zeros([], scalar),
            count=_tree.zero_count(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _check(updates, state.exp_avg, params, "dadapt_adamw")
        real = _compute(state.estim_lr.dtype)
        count = _tree.safe_increment(state.count)
        lr = jnp.asarray(_tree.value_at(learning_rate, state.count)).astype(real)
        c1, c2 = jnp.asarray(b1).astype(real), jnp.asarray(b2).astype(real)
        sb2 = jnp.sqrt(c2)
        e = jnp.asarray(eps).astype(real)
        d = state.estim_lr.astype(real)
        dlr = d * lr * _adam_bias(b1, b2, count, use_bias_correction, real)

        leaves = _floats(updates, params, state.exp_avg, state.exp_avg_sq, state.grad_sum)
        numerator = _total(
            [
                jnp.sum(g.astype(real) * s.astype(real) / (jnp.sqrt(v.astype(real)) + e))
                for g, _, _, v, s in leaves
            ],
            real,
        )
        new = []
        for g, _, m, v, s in leaves:
            g32 = g.astype(real)
            new.append(
                (
                    c1 * m.astype(real) + (1 - c1) * dlr * g32,
                    c2 * v.astype(real) + (1 - c2) * g32 * g32,
                    sb2 * s.astype(real) + (1 - sb2) * dlr * g32,
                )
            )
        nw = sb2 * state.numerator_weighted.astype(real) + (1 - sb2) * dlr * numerator
        denominator = (1 - sb2) * _total([jnp.sum(jnp.abs(n[2])) for n in new], real)
        d_hat = _safe_ratio(nw, denominator, d)
        growth = jnp.asarray(growth_rate).astype(real)
        d_new = jnp.maximum(d, jnp.minimum(d_hat, d * growth))
        wd = jnp.asarray(weight_decay).astype(real)

        out, mus, nus, sums = [], [], [], []
        for (g, p, m_old, v_old, s_old), (m, v, s) in zip(leaves, new, strict=True):
            out.append(_tree.cast_like(-wd * dlr * p.astype(real) - m / (jnp.sqrt(v) + e), g))
            mus.append(m.astype(m_old.dtype))
            nus.append(v.astype(v_old.dtype))
            sums.append(s.astype(s_old.dtype))
        scalar = state.estim_lr.dtype
        return _refill(updates, out, updates), DAdaptAdamWState(
            exp_avg=_refill(state.exp_avg, mus, updates),
            exp_avg_sq=_refill(state.exp_avg_sq, nus, updates),
            grad_sum=_refill(state.grad_sum, sums, updates),
            estim_lr=d_new.astype(scalar),
            numerator_weighted=nw.astype(scalar),
            count=count,
        )

    return _named(init_fn, update_fn, "dadapt_adamw")


# ---------------------------------------------------------------------------- D-Adapt SGD


def dadapt_sgd_transformation(
    learning_rate: ScalarOrSchedule,
    momentum: Any,
    weight_decay: Any,
    d0: Any,
    growth_rate: Any,
) -> GradientTransformationExtraArgs:
    """D-Adapt SGD as one transformation (arguments checked by :func:`gradxform.dadapt_sgd`)."""

    def init_fn(params):
        scalar = _scalar_dtype(params)
        return DAdaptSGDState(
            s=_tree.zeros_like(params),
            z_minus_x=_tree.zeros_like(params),
            g0_norm=jnp.zeros([], scalar),
            estim_lr=jnp.asarray(d0, scalar),
            numerator_weighted=jnp.zeros([], scalar),
            count=_tree.zero_count(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _check(updates, state.s, params, "dadapt_sgd")
        real = _compute(state.estim_lr.dtype)
        lr = jnp.asarray(_tree.value_at(learning_rate, state.count)).astype(real)
        ck = 1 - jnp.asarray(momentum).astype(real)
        wd = jnp.asarray(weight_decay).astype(real)
        d = state.estim_lr.astype(real)

        leaves = _floats(updates, params, state.s, state.z_minus_x)
        # The norm of the raw first gradient (before weight decay), kept once it is non-zero.
        norm = jnp.sqrt(_total([jnp.sum(g.astype(real) ** 2) for g, *_ in leaves], real))
        old_g0 = state.g0_norm.astype(real)
        g0 = jnp.where(old_g0 > 0, old_g0, norm)
        dlr = _safe_ratio(d * lr, g0, jnp.zeros([], real))

        grads = [g.astype(real) + wd * p.astype(real) for g, p, _, _ in leaves]
        numerator = _total(
            [jnp.sum(g * s.astype(real)) for g, (_, _, s, _) in zip(grads, leaves, strict=True)],
            real,
        )
        nw = state.numerator_weighted.astype(real) + dlr * numerator
        sums = [s.astype(real) + dlr * g for g, (_, _, s, _) in zip(grads, leaves, strict=True)]
        s_norm = jnp.sqrt(_total([jnp.sum(s * s) for s in sums], real))
        d_hat = _safe_ratio(2 * nw, s_norm, d)
        growth = jnp.asarray(growth_rate).astype(real)
        d_new = jnp.maximum(d, jnp.minimum(d_hat, d * growth))

        # x_{k+1} = (1 - c) x_k + c z_{k+1} with z = x0 - s, written with e = z - x:
        # u_k = c (e_k - dlr g_k), e_{k+1} = (1 - c) (e_k - dlr g_k).
        out, gaps = [], []
        for g, (raw, _, _, e) in zip(grads, leaves, strict=True):
            ahead = e.astype(real) - dlr * g
            out.append(_tree.cast_like(ck * ahead, raw))
            gaps.append(((1 - ck) * ahead).astype(e.dtype))
        scalar = state.estim_lr.dtype
        return _refill(updates, out, updates), DAdaptSGDState(
            s=_refill(
                state.s,
                [s.astype(x.dtype) for s, (_, _, x, _) in zip(sums, leaves, strict=True)],
                updates,
            ),
            z_minus_x=_refill(state.z_minus_x, gaps, updates),
            g0_norm=g0.astype(scalar),
            estim_lr=d_new.astype(scalar),
            numerator_weighted=nw.astype(scalar),
            count=_tree.safe_increment(state.count),
        )

    return _named(init_fn, update_fn, "dadapt_sgd")
