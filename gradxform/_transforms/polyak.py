"""Polyak-type step sizes, which read the loss: Polyak's step (SPS) and MoMo.

Each needs the current (mini-batch) loss ``f(x_t)``, passed as ``update(grads, state,
params, value=loss)`` (``jax.value_and_grad`` gives both). The step size is the gap
between the loss and a lower bound ``f*`` divided by a squared gradient norm, capped by
a largest step; the norms and inner products are over the whole tree. Scalars are kept
in the state in the lowest floating-point dtype of the params (as optax keeps them) and
computed in at least float32.

``momo`` and ``momo_adam`` are single transformations rather than chains: their
learning rate enters the step size and the weight decay (``tau_t = min(alpha_t, ...)``),
so it cannot be a separate ``scale_by_learning_rate``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
    ScalarOrSchedule,
    init_empty_state,
    transformation,
)
from gradxform._transforms.distance import scalar_dtype

_VARIANTS = ("sps", "sps+")
# A squared norm at or below this counts as zero: no step (optax's threshold, float64's eps).
_TINY = float(np.finfo(np.float64).eps)
_NO_COMPLEX_MOMO = "the model of the loss is a real inner product of gradients and weights"


def _require_loss(value: Any, who: str) -> None:
    """A missing ``value=`` is a missing argument (a ``TypeError``, as in optax), reported
    before anything else about the call."""
    if value is None:
        raise TypeError(
            f"{who} needs the loss: call update(grads, state, params, value=loss) "
            f"(jax.value_and_grad gives both)"
        )


def _loss(value: Any, who: str, dtype: Any) -> chex.Array:
    """The loss given as ``value=``, checked, as a scalar of ``dtype``."""
    _require_loss(value, who)
    if jnp.ndim(value) != 0:
        raise ValueError(f"{who}: value must be a scalar loss, got shape {jnp.shape(value)}")
    return jnp.real(jnp.asarray(value)).astype(dtype)


def _sq_norm(tree: chex.ArrayTree, dtype: Any) -> chex.Array:
    return (_tree.global_norm(tree) ** 2).astype(dtype)


def _vdot(a: chex.ArrayTree, b: chex.ArrayTree, dtype: Any) -> chex.Array:
    """The real inner product of two trees over their floating-point leaves, in ``dtype``."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    terms = [
        jnp.sum(jnp.asarray(x).astype(dtype) * jnp.asarray(y).astype(dtype))
        for x, y in pairs
        if _tree.is_inexact(x)
    ]
    return sum(terms[1:], terms[0]) if terms else jnp.zeros([], dtype)


def scale_by_polyak(
    f_min: chex.Numeric = 0.0,
    max_learning_rate: chex.Numeric = 1.0,
    eps: chex.Numeric = 0.0,
    variant: str = "sps",
) -> GradientTransformation:
    """Scale by Polyak's step size (Loizou, Vaswani, Laradji & Lacoste-Julien, 2021,
    "Stochastic Polyak Step-size for SGD"; Berrada, Zisserman & Kumar, 2020).

    ::

        gap_t = f(x_t) - f_min                   variant="sps"
        gap_t = max(f(x_t) - f_min, 0)           variant="sps+" (Garrigos et al., 2023)
        gamma_t = min(gap_t / (||u_t||**2 + eps), max_learning_rate)
        gamma_t = 0  where ||u_t||**2 + eps <= 2.2e-16
        u_t <- gamma_t * u_t

    The loss ``f(x_t)`` is passed as ``update(..., value=loss)``; without it the update
    raises. The norm is over the whole tree.

    Args:
      f_min: a lower bound ``f*`` on the loss (0 for a model that interpolates its data).
      max_learning_rate: positive cap on the step size (``math.inf`` for none).
      eps: non-negative term added to the squared norm.
      variant: ``"sps"`` or ``"sps+"`` (see above).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_polyak()
      >>> g = jnp.array([3.0, 4.0])
      >>> tx.update(g, tx.init(g), value=jnp.float32(5.0))[0]  # 5 / 25 * g
      Array([0.6, 0.8], dtype=float32)
    """
    _checks.finite("f_min", f_min, allow_schedule=False)
    _checks.number(
        "max_learning_rate",
        max_learning_rate,
        low=0.0,
        low_open=True,
        high=math.inf,
        allow_schedule=False,
    )
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.one_of("variant", variant, _VARIANTS)

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del extra_args
        _require_loss(value, "scale_by_polyak")
        if params is not None:
            _checks.check_same_layout(updates, params, what="updates", against="params")
        sq = _tree.global_norm(updates) ** 2
        gap = _loss(value, "scale_by_polyak", sq.dtype) - jnp.asarray(f_min, sq.dtype)
        if variant == "sps+":
            gap = jnp.maximum(gap, 0)
        den = sq + jnp.asarray(eps, sq.dtype)
        tiny = den <= _TINY
        step = jnp.minimum(gap / jnp.where(tiny, 1, den), jnp.asarray(max_learning_rate, sq.dtype))
        step = jnp.where(tiny, 0, step)
        return _tree.scale_tree(updates, step), state

    return transformation(init_empty_state, update_fn)


# ------------------------------------------------------------------------------ MoMo


class MomoState(NamedTuple):
    """The momentum ``d``, the averages of the losses ``f_bar`` and of ``<g, x>``
    (``gamma``), the lower bound ``lb`` in use and the step count."""

    exp_avg: chex.ArrayTree
    barf: chex.Array
    gamma: chex.Array
    lb: chex.Array
    count: chex.Array


class MomoAdamState(NamedTuple):
    """Adam's moments ``m`` and ``v``, the averages of the losses ``f_bar`` and of
    ``<g, x>`` (``gamma``), the lower bound ``lb`` in use and the step count."""

    exp_avg: chex.ArrayTree
    exp_avg_sq: chex.ArrayTree
    barf: chex.Array
    gamma: chex.Array
    lb: chex.Array
    count: chex.Array


def _check_momo(
    learning_rate: Any, lower_bound: Any, weight_decay: Any, adapt_lower_bound: Any
) -> None:
    _checks.non_negative("learning_rate", learning_rate)
    _checks.finite("lower_bound", lower_bound, allow_schedule=False)
    _checks.non_negative("weight_decay", weight_decay, allow_schedule=False)
    _checks.boolean("adapt_lower_bound", adapt_lower_bound)


def _momo_step(
    *,
    alpha: chex.Array,
    weight_decay: Any,
    lower_bound: Any,
    adapt: bool,
    barf: chex.Array,
    gamma: chex.Array,
    iprod: chex.Array,
    norm: chex.Array,
    lb: chex.Array,
    bc1: chex.Array,
) -> tuple[chex.Array, chex.Array, chex.Array]:
    """MoMo's step size ``tau``, the decay factor and the next lower bound (all scalars).

    ``bc1`` is 1 for MoMo and ``1 - b1**t`` for MoMo-Adam.
    """
    dtype = barf.dtype
    c = 1 + alpha * jnp.asarray(weight_decay, dtype)
    floor = jnp.asarray(lower_bound, dtype)
    if adapt:
        cap = c * (barf - gamma) + iprod
        lb = jnp.where(cap < c * bc1 * lb, jnp.maximum(cap / (2 * bc1 * c), floor), lb)
    tiny = norm <= _TINY
    t1 = jnp.maximum(c * (barf - bc1 * lb - gamma) + iprod, 0) / jnp.where(tiny, 1, norm)
    tau = jnp.minimum(alpha / bc1, jnp.where(tiny, 0, t1))
    if adapt:
        lb = jnp.maximum((barf + iprod - gamma - tau * norm / 2) / bc1, floor)
    return tau, (alpha * jnp.asarray(weight_decay, dtype)) / c, lb


def _momo_updates(
    updates: chex.ArrayTree,
    direction: chex.ArrayTree,
    params: chex.ArrayTree,
    tau: chex.Array,
    decay: chex.Array,
) -> chex.ArrayTree:
    """``-decay * x - tau * direction`` leaf by leaf, in each gradient's dtype."""

    def leaf(g, d, p):
        cd = _tree.compute_dtype(g.dtype)
        u = -decay.astype(cd) * _tree.to_compute(p).astype(cd) - tau.astype(cd) * d.astype(cd)
        return u.astype(g.dtype)

    return _tree.map_inexact(leaf, updates, direction, params)


def momo(
    learning_rate: ScalarOrSchedule = 1.0,
    beta: chex.Numeric = 0.9,
    lower_bound: chex.Numeric = 0.0,
    weight_decay: chex.Numeric = 0.0,
    adapt_lower_bound: bool = False,
) -> GradientTransformation:
    """MoMo: SGD with momentum and a Polyak-type step size (Schaipp, Ohana, Eickenberg,
    Defazio & Gower, 2023, "MoMo: Momentum Models for Adaptive Learning Rates", Alg. 1).

    ::

        b_t = 0 at the first step, beta after
        f_bar_t = b_t f_bar_{t-1} + (1 - b_t) f(x_t)
        d_t = b_t d_{t-1} + (1 - b_t) g_t
        gamma_t = b_t gamma_{t-1} + (1 - b_t) <g_t, x_t>
        c = 1 + alpha_t * lambda
        h_t = max(c (f_bar_t - lb - gamma_t) + <d_t, x_t>, 0) / ||d_t||**2   (0 if d_t = 0)
        tau_t = min(alpha_t, h_t)
        x_{t+1} = x_t / c - tau_t d_t        (u_t = -alpha_t lambda / c x_t - tau_t d_t)

    ``lb`` is ``lower_bound``; with ``adapt_lower_bound=True`` it is estimated on the
    fly (the paper's section 4): reset to ``max(cap / (2 c), lower_bound)`` when
    ``cap = c (f_bar_t - gamma_t) + <d_t, x_t>`` falls below ``c lb``, and after the step
    set to ``max(f_bar_t + <d_t, x_t> - gamma_t - tau_t ||d_t||**2 / 2, lower_bound)``.
    The loss is passed as ``update(..., value=loss)``. Real leaves only.

    Args:
      learning_rate: ``alpha_t``, the largest step: a non-negative float, JAX scalar or
        schedule (the paper recommends a large one; default 1).
      beta: momentum in ``[0, 1)``.
      lower_bound: a lower bound on the loss (0 for most losses).
      weight_decay: non-negative ``lambda``.
      adapt_lower_bound: estimate the lower bound on the fly.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> f = lambda x: jnp.sum(x**2)
      >>> params = jnp.array([1.0, 2.0, 3.0])
      >>> tx = gx.momo()
      >>> loss, grads = jax.value_and_grad(f)(params)
      >>> updates, state = tx.update(grads, tx.init(params), params, value=loss)
      >>> gx.apply_updates(params, updates).round(4)  # tau = 14 / 56: half way there
      Array([0.5, 1. , 1.5], dtype=float32)
    """
    _check_momo(learning_rate, lower_bound, weight_decay, adapt_lower_bound)
    _checks.decay_rate("beta", beta, allow_schedule=False)

    def init_fn(params):
        _checks.check_real(params, what="momo params", reason=_NO_COMPLEX_MOMO)
        dtype = scalar_dtype(params)
        lb = jnp.asarray(lower_bound, dtype)
        # one buffer per field: a state whose leaves shared one could not be donated
        barf, gamma = jnp.zeros([], dtype), jnp.zeros([], dtype)
        return MomoState(_tree.zeros_like(params), barf, gamma, lb, _tree.zero_count())

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del extra_args
        _require_loss(value, "momo")
        _checks.check_params(updates, params, "momo", allow_complex=False)
        _checks.check_updates(updates, state.exp_avg, "momo")
        dtype = _tree.compute_dtype(state.barf.dtype)
        loss = _loss(value, "momo", dtype)
        b = jnp.where(state.count == 0, 0, jnp.asarray(beta, dtype)).astype(dtype)
        barf = b * state.barf.astype(dtype) + (1 - b) * loss
        exp_avg = _tree.update_moment(state.exp_avg, updates, b)
        gamma = b * state.gamma.astype(dtype) + (1 - b) * _vdot(updates, params, dtype)
        alpha = jnp.asarray(_tree.value_at(learning_rate, state.count)).astype(dtype)
        tau, decay, lb = _momo_step(
            alpha=alpha,
            weight_decay=weight_decay,
            lower_bound=lower_bound,
            adapt=adapt_lower_bound,
            barf=barf,
            gamma=gamma,
            iprod=_vdot(exp_avg, params, dtype),
            norm=_sq_norm(exp_avg, dtype),
            lb=state.lb.astype(dtype),
            bc1=jnp.ones([], dtype),
        )

        new = MomoState(
            exp_avg=exp_avg,
            barf=barf.astype(state.barf.dtype),
            gamma=gamma.astype(state.gamma.dtype),
            lb=lb.astype(state.lb.dtype),
            count=_tree.safe_increment(state.count),
        )
        return _momo_updates(updates, exp_avg, params, tau, decay), new

    return transformation(init_fn, update_fn)


def momo_adam(
    learning_rate: ScalarOrSchedule = 1e-2,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    lower_bound: chex.Numeric = 0.0,
    weight_decay: chex.Numeric = 0.0,
    adapt_lower_bound: bool = False,
) -> GradientTransformation:
    """MoMo-Adam: Adam(W) with a Polyak-type step size (Schaipp, Ohana, Eickenberg, Defazio
    & Gower, 2023, "MoMo: Momentum Models for Adaptive Learning Rates", Alg. 3).

    ::

        f_bar_t = b1 f_bar_{t-1} + (1 - b1) f(x_t)
        m_t = b1 m_{t-1} + (1 - b1) g_t,      v_t = b2 v_{t-1} + (1 - b2) g_t**2
        D_t = eps + sqrt(v_t / (1 - b2**t)),  rho_t = 1 - b1**t
        gamma_t = b1 gamma_{t-1} + (1 - b1) <g_t, x_t>
        c = 1 + alpha_t * lambda
        h_t = max(c (f_bar_t - rho_t lb - gamma_t) + <m_t, x_t>, 0) / <m_t, m_t / D_t>
        tau_t = min(alpha_t / rho_t, h_t)                    (h_t = 0 if m_t = 0)
        x_{t+1} = x_t / c - tau_t m_t / D_t

    With ``adapt_lower_bound=True`` ``lb`` is estimated on the fly as in :func:`momo`,
    with the bias correction ``rho_t``. The loss is passed as ``update(..., value=loss)``.
    Real leaves only.

    Args:
      learning_rate: ``alpha_t``: a non-negative float, JAX scalar or schedule.
      b1: first-moment (and loss-average) decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      lower_bound: a lower bound on the loss (0 for most losses).
      weight_decay: non-negative ``lambda`` (decoupled, as in AdamW).
      adapt_lower_bound: estimate the lower bound on the fly.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> f = lambda x: jnp.sum(x**2)
      >>> params = jnp.array([1.0, 2.0, 3.0])
      >>> tx = gx.momo_adam(learning_rate=1e-3)
      >>> loss, grads = jax.value_and_grad(f)(params)
      >>> updates, state = tx.update(grads, tx.init(params), params, value=loss)
      >>> updates  # capped: tau = alpha / rho_1 = 0.01 times m / D = 0.1 sign(g)
      Array([-0.001, -0.001, -0.001], dtype=float32)
    """
    _check_momo(learning_rate, lower_bound, weight_decay, adapt_lower_bound)
    _checks.decay_rate("b1", b1, allow_schedule=False)
    _checks.decay_rate("b2", b2, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)

    def init_fn(params):
        _checks.check_real(params, what="momo_adam params", reason=_NO_COMPLEX_MOMO)
        dtype = scalar_dtype(params)
        lb = jnp.asarray(lower_bound, dtype)
        # one buffer per field: a state whose leaves shared one could not be donated
        barf, gamma = jnp.zeros([], dtype), jnp.zeros([], dtype)
        mu, nu = _tree.zeros_like(params), _tree.zeros_like(params)
        return MomoAdamState(mu, nu, barf, gamma, lb, _tree.zero_count())

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del extra_args
        _require_loss(value, "momo_adam")
        _checks.check_params(updates, params, "momo_adam", allow_complex=False)
        _checks.check_updates(updates, state.exp_avg, "momo_adam")
        dtype = _tree.compute_dtype(state.barf.dtype)
        loss = _loss(value, "momo_adam", dtype)
        count = _tree.safe_increment(state.count)
        beta1 = jnp.asarray(b1, dtype)
        barf = beta1 * state.barf.astype(dtype) + (1 - beta1) * loss
        exp_avg = _tree.update_moment(state.exp_avg, updates, b1)
        exp_avg_sq = _tree.update_moment(state.exp_avg_sq, updates, b2, order=2)
        root = _tree.map_inexact(
            lambda v: jnp.asarray(eps, v.dtype) + jnp.sqrt(v),
            _tree.bias_correction(exp_avg_sq, b2, count),
        )
        direction = _tree.map_inexact(
            lambda m, r: _tree.to_compute(m) / r.astype(_tree.compute_dtype(m.dtype)),
            exp_avg,
            root,
        )
        gamma = beta1 * state.gamma.astype(dtype) + (1 - beta1) * _vdot(updates, params, dtype)
        alpha = jnp.asarray(_tree.value_at(learning_rate, state.count)).astype(dtype)
        bc1 = -jnp.expm1(count.astype(dtype) * jnp.log1p(beta1 - 1))  # 1 - b1**t
        tau, decay, lb = _momo_step(
            alpha=alpha,
            weight_decay=weight_decay,
            lower_bound=lower_bound,
            adapt=adapt_lower_bound,
            barf=barf,
            gamma=gamma,
            iprod=_vdot(exp_avg, params, dtype),
            norm=_vdot(exp_avg, direction, dtype),
            lb=state.lb.astype(dtype),
            bc1=bc1,
        )

        new = MomoAdamState(
            exp_avg=exp_avg,
            exp_avg_sq=exp_avg_sq,
            barf=barf.astype(state.barf.dtype),
            gamma=gamma.astype(state.gamma.dtype),
            lb=lb.astype(state.lb.dtype),
            count=count,
        )
        return _momo_updates(updates, direction, params, tau, decay), new

    return transformation(init_fn, update_fn)
