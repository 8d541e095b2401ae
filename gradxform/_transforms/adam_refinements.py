"""Refinements of Adam, part one: ADOPT and AdEMAMix (full and simplified).

Each keeps Adam's shape -- a first moment divided by the root of a second one --
and changes what enters the moments: ADOPT normalises the gradient by the previous
second moment, AdEMAMix adds a slow EMA. Adan, NovoGrad and MARS are in
``adam_refinements_more``. The names, arguments, defaults and states are optax.contrib's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, ScalarOrSchedule, transformation
from gradxform._transforms.adam import (
    ScaleByAdamState,
    check_moment_args,
    check_moment_updates,
    direction,
    init_moments,
)


class ScaleByAdemamixState(NamedTuple):
    """Step counts, the fast and slow first moments ``m1``, ``m2`` and the second ``nu``."""

    count: chex.Array
    count_m2: chex.Array
    m1: chex.ArrayTree
    m2: chex.ArrayTree
    nu: chex.ArrayTree


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """Step count ``t``, the accumulated momentum ``m`` and the second moment ``n``."""

    t: chex.Array
    m: chex.ArrayTree
    n: chex.ArrayTree


def _where(pred: chex.Array, new: chex.ArrayTree, old: chex.ArrayTree) -> chex.ArrayTree:
    """``new`` where the scalar ``pred`` holds, else ``old``, on floating-point leaves."""
    return _tree.map_inexact(lambda o, n: jnp.where(pred, n.astype(o.dtype), o), old, new)


# ----------------------------------------------------------------------------------- ADOPT


def adopt_clip_value(count: chex.Array) -> chex.Array:
    """ADOPT's default clipping value ``count**0.25`` (``count``: the moment updates so far)."""
    return jnp.asarray(count).astype(jnp.float32) ** 0.25


def _clip_parts(x: chex.Array, c: chex.Array) -> chex.Array:
    """``x`` clipped to ``[-c, c]``; a complex ``x`` part by part."""
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        return jax.lax.complex(_clip_parts(jnp.real(x), c), _clip_parts(jnp.imag(x), c))
    c = jnp.asarray(c).astype(x.dtype)
    return jnp.minimum(jnp.maximum(x, -c), c)


def scale_by_adopt(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.9999,
    eps: chex.Numeric = 1e-6,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[chex.Array], chex.Array] = adopt_clip_value,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """ADOPT's scaling (Taniguchi et al., 2024, "ADOPT: Modified Adam Can Converge with Any
    beta2 with the Optimal Rate").

    The gradient is normalised by the second moment of the *previous* steps before it
    enters the first moment, so the two are independent::

        step 0:  v_0 = |g_0|**2,  u_0 = 0
        step t:  r_t = clip(g_t / max(sqrt(v_{t-1}), eps), c_t),   c_t = clip_value_fn(t)
                 m_t = b1 * m_{t-1} + (1 - b1) * r_t
                 v_t = b2 * v_{t-1} + (1 - b2) * |g_t|**2
                 u_t = m_t                         (nesterov: b1 * m_t + (1 - b1) * r_t)

    ``t`` counts the steps before this one (optax's ``count``), so the default clip
    ``t**0.25`` is 1 at the first moment update. ``use_clipping=False`` drops the clip
    (the paper's Algorithm 1). There is no bias correction. A complex ``r_t`` is clipped
    part by part. ``eps`` should be positive: ``eps=0`` with a zero gradient divides
    0 by 0.

    Args:
      b1: decay of the first moment, in ``[0, 1)``.
      b2: decay of the second moment, in ``[0, 1)``.
      eps: non-negative floor of ``sqrt(v)``.
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      nesterov: Nesterov form of the first moment.
      use_clipping: clip the normalised gradient to ``[-c_t, c_t]``.
      clip_value_fn: ``t -> c_t`` (of the int32 step count), default ``t**0.25``.
      nu_dtype: dtype of ``v``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_adopt(b1=0.5)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([2.0]), state)  # the first step sets v only
      >>> tx.update(jnp.array([1.0]), state, None)[0]  # 0.5 * clip(1 / 2, 1)
      Array([0.25], dtype=float32)
    """
    mu_dtype, nu_dtype = check_moment_args(b1, b2, eps, 0.0, mu_dtype, nu_dtype)
    _checks.boolean("nesterov", nesterov)
    _checks.boolean("use_clipping", use_clipping)
    if not callable(clip_value_fn):
        raise TypeError(f"clip_value_fn={clip_value_fn!r} must be a function of the step count")

    one_minus_b2 = 1.0 - b2 if isinstance(b2, int | float) else 1 - jnp.asarray(b2)

    def init_fn(params):
        return init_moments(params, mu_dtype, nu_dtype)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_moment_updates(updates, state.mu, "scale_by_adopt", mu_dtype)
        first = state.count == 0
        clip = clip_value_fn(state.count) if use_clipping else None

        def normalised(g, v):
            v = _tree.real_part(v)
            g = _tree.to_compute(g)
            real = _tree.promote(_tree.real_dtype(g.dtype), v.dtype)
            floor = jnp.maximum(jnp.sqrt(v.astype(real)), jnp.asarray(eps).astype(real))
            r = _tree.div_real(g, floor)
            return r if clip is None else _clip_parts(r, clip)

        r = _tree.map_inexact(normalised, updates, state.nu)
        nu = _where(
            first,
            _tree.lincomb(0.0, state.nu, 1.0, updates, 2),  # v_0 = |g_0|**2
            # 1 - b2 formed before rounding (b2 = 0.9999 is 0.99989998 in float32, whose
            # complement is 1.7e-4 off): ADOPT has no bias correction to cancel it.
            _tree.lincomb(b2, state.nu, one_minus_b2, updates, 2),
        )
        mu_old = _tree.map_inexact(_tree.to_compute, state.mu)
        mu32 = _where(first, mu_old, _tree.update_moment(mu_old, r, b1))
        out = _where(first, mu32, _tree.update_moment(mu32, r, b1)) if nesterov else mu32
        out = _tree.map_inexact(lambda g, o: _tree.cast_like(o, g), updates, out)
        mu = _tree.map_inexact(_tree.cast_like, mu32, state.mu)
        return out, ScaleByAdamState(count=_tree.safe_increment(state.count), mu=mu, nu=nu)

    return transformation(init_fn, update_fn)


# -------------------------------------------------------------------------------- AdEMAMix


def scale_by_ademamix(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 6.0,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    *,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """AdEMAMix's scaling (Pagliardini, Ablin & Grangier, 2024, "The AdEMAMix Optimizer:
    Better, Faster, Older").

    Adam's fast first moment plus ``alpha`` times a slow one::

        m1_t = b1 * m1_{t-1} + (1 - b1) * g_t
        m2_t = b3_t * m2_{t-1} + (1 - b3_t) * g_t          (no bias correction)
        v_t  = b2 * v_{t-1} + (1 - b2) * |g_t|**2
        u_t = (m1_t / (1 - b1**t) + alpha_t * m2_t) / (sqrt(v_t / (1 - b2**t) + eps_root) + eps)

    ``b3`` and ``alpha`` may be schedules, evaluated at the number of steps before this
    one (``count_m2``); the paper warms both up over ``T`` steps,
    ``alpha_t = min(t alpha / T, alpha)`` and
    ``b3_t = min(exp(ln b1 ln b3 / ((1 - t/T) ln b3 + (t/T) ln b1)), b3)``.
    As in optax the default ``alpha`` is 6 here and 5 in :func:`ademamix`, and
    ``mu_dtype`` sets the dtype of all three moments (``nu_dtype`` overrides it for ``v``).

    Args:
      b1: decay of the fast first moment, in ``[0, 1)``.
      b2: decay of the second moment, in ``[0, 1)``.
      b3: decay of the slow first moment, in ``[0, 1)``, or a schedule of it.
      alpha: finite weight of the slow moment, or a schedule of it.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      mu_dtype: dtype of ``m1``, ``m2`` and (unless ``nu_dtype``) ``v``.
      nu_dtype: dtype of ``v``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_ademamix(b3=0.5, alpha=2.0, eps=0.0)
      >>> tx.update(jnp.array([3.0]), tx.init(jnp.zeros(1)))[0].round(4)  # (3 + 2 * 1.5) / 3
      Array([2.], dtype=float32)
    """
    mu_dtype, nu_dtype = check_moment_args(b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    _checks.decay_rate("b3", b3)
    _checks.finite("alpha", alpha)
    nu_dtype = mu_dtype if nu_dtype is None else nu_dtype

    def init_fn(params):
        return ScaleByAdemamixState(
            count=_tree.zero_count(),
            count_m2=_tree.zero_count(),
            m1=_tree.zeros_like(params, mu_dtype),
            m2=_tree.zeros_like(params, mu_dtype),
            nu=_tree.zeros_like(params, nu_dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_moment_updates(updates, state.m1, "scale_by_ademamix", mu_dtype)
        b3_t = _tree.value_at(b3, state.count_m2)
        alpha_t = _tree.value_at(alpha, state.count_m2)
        m1 = _tree.update_moment(state.m1, updates, b1, 1)
        m2 = _tree.update_moment(state.m2, updates, b3_t, 1)
        nu = _tree.update_moment(state.nu, updates, b2, 2)
        count = _tree.safe_increment(state.count)
        numerator = _tree.lincomb(
            1.0,
            _tree.bias_correction(m1, b1, count),
            alpha_t,
            _tree.map_inexact(_tree.to_compute, m2),
        )
        out = direction(updates, numerator, _tree.bias_correction(nu, b2, count), eps, eps_root)
        new_state = ScaleByAdemamixState(
            count=count, count_m2=_tree.safe_increment(state.count_m2), m1=m1, m2=m2, nu=nu
        )
        return out, new_state

    return transformation(init_fn, update_fn)


def scale_by_simplified_ademamix(
    b1: chex.Numeric = 0.99,
    b2: chex.Numeric = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
) -> GradientTransformation:
    """Simplified AdEMAMix's scaling (Morwani et al., 2025, "Connections between Schedule-Free
    Optimizers, AdEMAMix, and Accelerated SGD Variants").

    One momentum, an undamped sum, plus ``alpha`` times the gradient::

        m_t = b1 * m_{t-1} + g_t
        n_t = b2 * n_{t-1} + (1 - b2) * |g_t|**2
        u_t = (m_t + alpha_t * g_t) / (sqrt(n_t / (1 - b2**t) + eps_root) + eps)

    ``alpha`` may be a schedule, evaluated at the number of steps before this one.
    With ``alpha=0`` this is Adam with an undamped, uncorrected first moment.

    Args:
      b1: decay of the momentum, in ``[0, 1)``.
      b2: decay of the second moment, in ``[0, 1)``.
      alpha: finite weight of the gradient, or a schedule of it.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_simplified_ademamix(alpha=1.0, eps=0.0)
      >>> tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))[0].round(4)  # (2 + 2) / 2
      Array([2.], dtype=float32)
    """
    check_moment_args(b1, b2, eps, eps_root, None, None)
    _checks.finite("alpha", alpha)

    def init_fn(params):
        return ScaleBySimplifiedAdEMAMixState(
            t=_tree.zero_count(), m=_tree.zeros_like(params), n=_tree.zeros_like(params)
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_moment_updates(updates, state.m, "scale_by_simplified_ademamix", None)
        alpha_t = _tree.value_at(alpha, state.t)
        m32 = _tree.lincomb(b1, _tree.map_inexact(_tree.to_compute, state.m), 1.0, updates)
        n = _tree.update_moment(state.n, updates, b2, 2)
        t = _tree.safe_increment(state.t)
        numerator = _tree.lincomb(1.0, m32, alpha_t, updates)
        out = direction(updates, numerator, _tree.bias_correction(n, b2, t), eps, eps_root)
        m = _tree.map_inexact(_tree.cast_like, m32, state.m)
        return out, ScaleBySimplifiedAdEMAMixState(t=t, m=m, n=n)

    return transformation(init_fn, update_fn)
