"""Refinements of Adam, part two: Adan, NovoGrad and MARS (ADOPT and AdEMAMix are in
``adam_refinements``).

Adan adds moments of the gradient's change, NovoGrad keeps one second moment per leaf,
MARS corrects the gradient by its last change. Adan and NovoGrad have optax's names,
arguments, defaults and states; MARS follows its paper.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, transformation
from gradxform._transforms.adam import (
    check_moment_args,
    check_moment_updates,
    direction,
    init_moments,
    uncorrected_eps,
)


class ScaleByAdanState(NamedTuple):
    """Adan's moments ``m``, ``v`` (of gradient differences), ``n``, last gradient ``g``, step."""

    m: chex.ArrayTree
    v: chex.ArrayTree
    n: chex.ArrayTree
    g: chex.ArrayTree
    t: chex.Array


class ScaleByNovogradState(NamedTuple):
    """Step count, the first moment ``mu`` and one second moment ``nu`` per leaf (a scalar)."""

    count: chex.Array
    mu: chex.ArrayTree
    nu: chex.ArrayTree


class ScaleByMarsState(NamedTuple):
    """Step count, the moments ``mu``, ``nu`` of the corrected gradient, the last gradient."""

    count: chex.Array
    mu: chex.ArrayTree
    nu: chex.ArrayTree
    last_grad: chex.ArrayTree


# ------------------------------------------------------------------------------------ Adan


def scale_by_adan(
    b1: chex.Numeric = 0.98,
    b2: chex.Numeric = 0.92,
    b3: chex.Numeric = 0.99,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    *,
    diff_weight: str = "1-b2",
) -> GradientTransformation:
    """Adan's scaling (Xie et al., 2022, "Adan: Adaptive Nesterov Momentum Algorithm for
    Faster Optimizing Deep Models").

    Moments of the gradient, of its change ``d_t = g_t - g_{t-1}`` (``d_1 = 0``) and of
    the Nesterov-corrected gradient, each bias-corrected, in optax's decay convention
    (``b = 1 - beta`` of the paper)::

        m_t = b1 m_{t-1} + (1 - b1) g_t
        v_t = b2 v_{t-1} + (1 - b2) d_t
        n_t = b3 n_{t-1} + (1 - b3) |g_t + w d_t|**2
        u_t = (m^_t + w v^_t) / (sqrt(n^_t + eps_root) + eps)

    ``diff_weight`` chooses ``w``: ``"1-b2"`` (the default) is ``optax.scale_by_adan``;
    ``"b2"`` is the paper's ``1 - beta_2`` written in optax's convention, as the authors'
    code and pytorch-optimizer's ``Adan`` compute it (with the defaults, 0.92 instead of
    0.08).

    Args:
      b1: decay of the gradient's moment, in ``[0, 1)``.
      b2: decay of the difference's moment, in ``[0, 1)``.
      b3: decay of the second moment, in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      diff_weight: ``"1-b2"`` (optax) or ``"b2"`` (the paper's weight).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_adan(eps=0.0)
      >>> tx.update(jnp.array([2.0, -1.0]), tx.init(jnp.zeros(2)))[0].round(4)  # d_1 = 0: g / |g|
      Array([ 1., -1.], dtype=float32)
    """
    check_moment_args(b1, b2, eps, eps_root, None, None)
    _checks.decay_rate("b3", b3, allow_schedule=False)
    _checks.one_of("diff_weight", diff_weight, ("1-b2", "b2"))

    def init_fn(params):
        # one buffer per field: a state whose leaves shared one could not be donated
        m, v, n, g = (_tree.zeros_like(params) for _ in range(4))
        return ScaleByAdanState(m=m, v=v, n=n, g=g, t=_tree.zero_count())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_moment_updates(updates, state.m, "scale_by_adan", None)
        first = state.t == 0
        w = 1 - jnp.asarray(b2) if diff_weight == "1-b2" else jnp.asarray(b2)

        def change(g, last):
            d = _tree.to_compute(g) - _tree.to_compute(last).astype(_tree.compute_dtype(g.dtype))
            return jnp.where(first, jnp.zeros_like(d), d)

        diff = _tree.map_inexact(change, updates, state.g)
        m = _tree.update_moment(state.m, updates, b1, 1)
        v = _tree.update_moment(state.v, diff, b2, 1)
        corrected = _tree.lincomb(1.0, _tree.map_inexact(_tree.to_compute, updates), w, diff)
        n = _tree.update_moment(state.n, corrected, b3, 2)
        t = _tree.safe_increment(state.t)
        numerator = _tree.lincomb(
            1.0, _tree.bias_correction(m, b1, t), w, _tree.bias_correction(v, b2, t)
        )
        out = direction(updates, numerator, _tree.bias_correction(n, b3, t), eps, eps_root)
        last = _tree.map_inexact(_tree.cast_like, updates, state.g)
        return out, ScaleByAdanState(m=m, v=v, n=n, g=last, t=t)

    return transformation(init_fn, update_fn)


# -------------------------------------------------------------------------------- NovoGrad


def scale_by_novograd(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.25,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    weight_decay: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    *,
    grad_averaging: bool = False,
) -> GradientTransformation:
    """NovoGrad's scaling (Ginsburg et al., 2019, "Stochastic Gradient Methods with Layer-wise
    Adaptive Moments for Training of Deep Networks").

    One second moment per leaf (a layer), of the squared norm of its gradient::

        v_1 = ||g_1||**2,            v_t = b2 v_{t-1} + (1 - b2) ||g_t||**2
        s_t = g_t / (sqrt(v_t + eps_root) + eps) + weight_decay * theta_{t-1}
        m_1 = s_1,                   m_t = b1 m_{t-1} + s_t
        u_t = m_t

    As ``optax.scale_by_novograd``. ``grad_averaging=True`` damps the momentum,
    ``m_t = b1 m_{t-1} + (1 - b1) s_t`` after the first step (the paper's Algorithm 1,
    pytorch-optimizer's ``NovoGrad(grad_averaging=True)``). The params are needed
    unless ``weight_decay`` is 0.

    Args:
      b1: momentum decay, in ``[0, 1)``.
      b2: decay of the per-leaf second moment, in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      weight_decay: non-negative coefficient of the params added to the normalised gradient.
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      grad_averaging: multiply the new term by ``1 - b1`` (see above).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_novograd(eps=0.0)
      >>> tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))[0]  # g / ||g||
      Array([0.6, 0.8], dtype=float32)
    """
    mu_dtype, _ = check_moment_args(b1, b2, eps, eps_root, mu_dtype, None)
    _checks.non_negative("weight_decay", weight_decay, allow_schedule=False)
    _checks.boolean("grad_averaging", grad_averaging)
    decays = not _checks.is_literal_zero(weight_decay)

    def init_fn(params):
        nu = jax.tree.map(lambda p: jnp.zeros([], _tree.dtype_of(p)), params)
        return ScaleByNovogradState(
            count=_tree.zero_count(), mu=_tree.zeros_like(params, mu_dtype), nu=nu
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        check_moment_updates(updates, state.mu, "scale_by_novograd", mu_dtype)
        if decays:
            _checks.check_params(updates, params, "scale_by_novograd")
        first = state.count == 0

        def leaf(g, mu, nu, p):
            if not _tree.is_inexact(g):
                return g, mu, nu
            square = jnp.sum(_tree.abs_sq(g))
            real = square.dtype
            d2 = jnp.asarray(b2).astype(real)
            v = jnp.where(first, square, d2 * _tree.real_part(nu).astype(real) + (1 - d2) * square)
            root = jnp.sqrt(v + jnp.asarray(eps_root).astype(real)) + jnp.asarray(eps).astype(real)
            s = _tree.div_real(_tree.to_compute(g), root)
            if decays:
                wd = jnp.asarray(weight_decay).astype(real).astype(s.dtype)
                s = s + wd * _tree.to_compute(p).astype(s.dtype)
            d1 = jnp.asarray(b1).astype(real)
            damping = (1 - d1) if grad_averaging else jnp.ones([], real)
            m_old = _tree.to_compute(mu).astype(s.dtype)
            m = jnp.where(first, s, d1.astype(s.dtype) * m_old + damping.astype(s.dtype) * s)
            return _tree.cast_like(m, g), _tree.cast_like(m, mu), _tree.cast_like(v, nu)

        out, mu, nu = _tree.map_unzip(
            leaf, updates, state.mu, state.nu, params if decays else updates
        )
        return out, ScaleByNovogradState(count=_tree.safe_increment(state.count), mu=mu, nu=nu)

    return transformation(init_fn, update_fn, per_leaf="scale_by_novograd")


# ------------------------------------------------------------------------------------ MARS


def scale_by_mars(
    b1: chex.Numeric = 0.95,
    b2: chex.Numeric = 0.99,
    gamma: chex.Numeric = 0.025,
    eps: chex.Numeric = 1e-8,
    *,
    max_norm: float | None = 1.0,
    eps_uncorrected: bool = False,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """MARS-AdamW's scaling (Yuan et al., 2024, "MARS: Unleashing the Power of Variance
    Reduction for Training Large Models").

    Adam on a variance-reduced gradient ``c_t``, corrected by the change of the gradient
    since the last step (the approximate MARS, ``g_0 = 0``), in the paper's notation::

        c_t = g_t + gamma * b1 / (1 - b1) * (g_t - g_{t-1})
        c_t = c_t * max_norm / ||c_t||      if ||c_t|| > max_norm   (per leaf)
        m_t = b1 m_{t-1} + (1 - b1) c_t,    v_t = b2 v_{t-1} + (1 - b2) |c_t|**2
        u_t = m^_t / (sqrt(v^_t) + eps)

    ``max_norm=None`` drops the clipping (the paper clips at 1). ``eps_uncorrected=True``
    adds ``eps`` to ``sqrt(v_t)`` before the bias correction, as pytorch-optimizer's
    ``MARS`` does: ``u_t = m^_t / (sqrt(v^_t) + eps / sqrt(1 - b2**t))``.

    Args:
      b1: decay of the first moment, in ``[0, 1)``.
      b2: decay of the second moment, in ``[0, 1)``.
      gamma: non-negative strength of the gradient correction.
      eps: non-negative term added to the root.
      max_norm: positive bound of each leaf's ``||c_t||``, or ``None``.
      eps_uncorrected: add ``eps`` before the bias correction.
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      nu_dtype: dtype of ``v``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_mars(eps=0.0)
      >>> tx.update(jnp.array([0.3, -0.4]), tx.init(jnp.zeros(2)))[0].round(4)  # Adam: the sign
      Array([ 1., -1.], dtype=float32)
    """
    mu_dtype, nu_dtype = check_moment_args(b1, b2, eps, 0.0, mu_dtype, nu_dtype)
    _checks.non_negative("gamma", gamma, allow_schedule=False)
    if max_norm is not None:
        _checks.positive("max_norm", max_norm, allow_schedule=False)
    _checks.boolean("eps_uncorrected", eps_uncorrected)

    def init_fn(params):
        count, mu, nu = init_moments(params, mu_dtype, nu_dtype)
        return ScaleByMarsState(count, mu, nu, last_grad=_tree.zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_moment_updates(updates, state.mu, "scale_by_mars", mu_dtype)

        d1 = jnp.asarray(b1)
        weight = jnp.asarray(gamma) * d1 / (1 - d1)

        def corrected(g, last):
            g = _tree.to_compute(g)
            c = g + weight.astype(g.dtype) * (g - _tree.to_compute(last).astype(g.dtype))
            if max_norm is None:
                return c
            norm = _tree.leaf_norm(c)
            bound = jnp.asarray(max_norm).astype(norm.dtype)
            return c * jnp.minimum(jnp.ones([], norm.dtype), bound / norm).astype(c.dtype)

        c = _tree.map_inexact(corrected, updates, state.last_grad)
        mu = _tree.update_moment(state.mu, c, b1, 1)
        nu = _tree.update_moment(state.nu, c, b2, 2)
        count = _tree.safe_increment(state.count)
        eps_t = uncorrected_eps(eps, b2, count) if eps_uncorrected else eps
        mu_hat = _tree.bias_correction(mu, b1, count)
        out = direction(updates, mu_hat, _tree.bias_correction(nu, b2, count), eps_t, 0.0)
        last = _tree.map_inexact(_tree.cast_like, updates, state.last_grad)
        return out, ScaleByMarsState(count=count, mu=mu, nu=nu, last_grad=last)

    return transformation(init_fn, update_fn, per_leaf="scale_by_mars")
