"""Transformations built on moment estimates: momentum, RMS, AdaGrad, Adam.

Every moment here is updated by :func:`gradxform.ema` and corrected by
:func:`gradxform.bias_correction`; the denominators are formed in at least
float32 and each update is returned in its gradient's dtype.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation


def check_updates(updates: chex.ArrayTree, reference: chex.ArrayTree, who: str) -> None:
    """Raise, naming the key path, unless ``updates`` is laid out like a state moment."""
    _tree.check_same_layout(updates, reference, what="updates",
                            against=f"the params given to {who}.init", allow_complex=False)


def _out(x: chex.Array, like: chex.Array) -> chex.Array:
    return x.astype(jnp.asarray(like).dtype)


def _root(x: chex.Array, eps: chex.Numeric, eps_in_sqrt: bool) -> chex.Array:
    """``sqrt(x + eps)`` or ``sqrt(x) + eps`` in ``x``'s (compute) dtype."""
    e = jnp.asarray(eps).astype(x.dtype)
    return jnp.sqrt(x + e) if eps_in_sqrt else jnp.sqrt(x) + e


# ------------------------------------------------------------------------- momentum


class TraceState(NamedTuple):
    """The momentum buffer ``v``."""

    trace: chex.ArrayTree


def scale_by_momentum(decay: chex.Numeric = 0.9, *, nesterov: bool = False, ema: bool = False,
                      accumulator_dtype: Any | None = None) -> GradientTransformation:
    """Momentum: heavy ball (Polyak, 1964) or Nesterov (Sutskever et al., 2013).

    Heavy-ball form (``ema=False``, as torch and optax)::

        v_t = decay * v_{t-1} + g_t          u_t = v_t
        nesterov: u_t = g_t + decay * v_t

    EMA form (``ema=True``, as many tutorials write it)::

        v_t = decay * v_{t-1} + (1 - decay) * g_t    u_t = v_t
        nesterov: u_t = decay * v_t + (1 - decay) * g_t

    The Nesterov forms are the reformulation (Bengio et al., 2013) in which
    the parameters are stored at the look-ahead point, so no gradient has to be
    taken at ``theta + decay * v``.

    Args:
      decay: momentum coefficient in ``[0, 1)`` (or a schedule).
      nesterov: use Nesterov's accelerated gradient.
      ema: average instead of summing (the updates are then ``1 - decay`` times smaller).
      accumulator_dtype: dtype of ``v``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_momentum(0.5)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> u
      Array([1.5], dtype=float32)
    """
    _checks.decay_rate("decay", decay, allow_schedule=False)
    accumulator_dtype = _tree.canonical_dtype(accumulator_dtype, "accumulator_dtype")
    weight = None if ema else 1.0

    def init_fn(params):
        return TraceState(trace=_tree.zeros_like(params, accumulator_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.trace, "scale_by_momentum")
        trace = _tree.ema(state.trace, updates, decay, weight=weight)
        if nesterov:
            out = _tree.map_inexact(
                lambda g, t: _nesterov_out(g, t, decay, weight), updates, trace)
        else:
            out = _tree.map_inexact(lambda g, t: _out(t, g), updates, trace)
        return out, TraceState(trace=trace)

    return GradientTransformation(init_fn, update_fn)


def _nesterov_out(g, v, decay, weight):
    g32 = _tree.to_compute(g)
    d = jnp.asarray(decay).astype(g32.dtype)
    w = (1 - d) if weight is None else jnp.asarray(weight).astype(g32.dtype)
    return _out(d * v.astype(g32.dtype) + w * g32, g)


# ------------------------------------------------------------------------------ RMS


class ScaleByRmsState(NamedTuple):
    """Step count, first moment ``mu`` (``None`` unless centered) and second moment ``nu``."""

    count: chex.Array
    mu: chex.ArrayTree
    nu: chex.ArrayTree


def scale_by_rms(decay: chex.Numeric = 0.9, eps: chex.Numeric = 1e-8, *,
                 eps_in_sqrt: bool = True, centered: bool = False,
                 initial_scale: chex.Numeric = 0.0, bias_correction: bool = False,
                 nu_dtype: Any | None = None) -> GradientTransformation:
    """Divide by a running root mean square of the gradients (RMSProp; Tieleman & Hinton, 2012).

    ::

        nu_t = decay * nu_{t-1} + (1 - decay) * g_t**2       (nu_0 = initial_scale)
        centered:  mu_t = decay * mu_{t-1} + (1 - decay) * g_t,  s_t = nu_t - mu_t**2
        otherwise: s_t = nu_t
        u_t = g_t / sqrt(s_t + eps)      (eps_in_sqrt=True, as optax and keras)
        u_t = g_t / (sqrt(s_t) + eps)    (eps_in_sqrt=False, as torch.optim.RMSprop)

    The centered variant is Graves (2013). With ``bias_correction`` the
    moments are divided by ``1 - decay**t`` first.

    Args:
      decay: averaging decay in ``[0, 1)``.
      eps: non-negative term added for numerical stability.
      eps_in_sqrt: where ``eps`` goes (see above).
      centered: subtract the squared mean gradient (an estimate of the variance).
      initial_scale: initial value of ``nu`` (torch 0, TF1 1).
      bias_correction: divide the moments by ``1 - decay**t``.
      nu_dtype: dtype of the moments; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_rms(decay=0.75, eps=0.0)
      >>> tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))[0]  # 2 / sqrt(0.25 * 4)
      Array([2.], dtype=float32)
    """
    _checks.decay_rate("decay", decay, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.non_negative("initial_scale", initial_scale, allow_schedule=False)
    nu_dtype = _tree.canonical_dtype(nu_dtype, "nu_dtype")

    def init_fn(params):
        return ScaleByRmsState(
            count=_tree.zero_count(),
            mu=_tree.zeros_like(params, nu_dtype) if centered else None,
            nu=_tree.full_like(params, initial_scale, nu_dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.nu, "scale_by_rms")
        count = _tree.safe_increment(state.count)
        nu = _tree.ema(state.nu, updates, decay, 2)
        mu = _tree.ema(state.mu, updates, decay, 1) if centered else None
        nu_hat = _tree.bias_correction(nu, decay, count) if bias_correction else nu
        mu_hat = _tree.bias_correction(mu, decay, count) if bias_correction and centered else mu

        def step(g, n, m=None):
            s = _tree.to_compute(n)
            if m is not None:
                s = s - jnp.square(_tree.to_compute(m).astype(s.dtype))
            g32 = _tree.to_compute(g).astype(s.dtype)
            return _out(g32 / _root(s, eps, eps_in_sqrt), g)

        if centered:
            out = _tree.map_inexact(step, updates, nu_hat, mu_hat)
        else:
            out = _tree.map_inexact(step, updates, nu_hat)
        return out, ScaleByRmsState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)


# -------------------------------------------------------------------------- AdaGrad


class ScaleByAdagradState(NamedTuple):
    """The running sum of squared gradients."""

    sum_of_squares: chex.ArrayTree


def scale_by_adagrad(initial_accumulator_value: chex.Numeric = 0.1, eps: chex.Numeric = 1e-7, *,
                     eps_in_sqrt: bool = True,
                     accumulator_dtype: Any | None = None) -> GradientTransformation:
    """AdaGrad's per-coordinate scaling (Duchi, Hazan & Singer, 2011).

    ::

        s_t = s_{t-1} + g_t**2          (s_0 = initial_accumulator_value)
        u_t = g_t / sqrt(s_t + eps)      (eps_in_sqrt=True, as optax)
        u_t = g_t / (sqrt(s_t) + eps)    (eps_in_sqrt=False, as torch.optim.Adagrad)

    Args:
      initial_accumulator_value: non-negative starting value of ``s``.
      eps: non-negative term added for numerical stability.
      eps_in_sqrt: where ``eps`` goes (see above).
      accumulator_dtype: dtype of ``s``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_adagrad(initial_accumulator_value=0.0, eps=0.0)
      >>> tx.update(jnp.array([-3.0]), tx.init(jnp.zeros(1)))[0]
      Array([-1.], dtype=float32)
    """
    _checks.non_negative("initial_accumulator_value", initial_accumulator_value,
                         allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    accumulator_dtype = _tree.canonical_dtype(accumulator_dtype, "accumulator_dtype")

    def init_fn(params):
        return ScaleByAdagradState(
            sum_of_squares=_tree.full_like(params, initial_accumulator_value, accumulator_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.sum_of_squares, "scale_by_adagrad")
        s = _tree.ema(state.sum_of_squares, updates, 1.0, 2, weight=1.0)

        def step(g, acc):
            a = _tree.to_compute(acc)
            return _out(_tree.to_compute(g).astype(a.dtype) / _root(a, eps, eps_in_sqrt), g)

        return _tree.map_inexact(step, updates, s), ScaleByAdagradState(sum_of_squares=s)

    return GradientTransformation(init_fn, update_fn)


# ----------------------------------------------------------------------------- Adam


class ScaleByAdamState(NamedTuple):
    """Step count and the first (``mu``) and second (``nu``) moment estimates."""

    count: chex.Array
    mu: chex.ArrayTree
    nu: chex.ArrayTree


def scale_by_adam(b1: chex.Numeric = 0.9, b2: chex.Numeric = 0.999, eps: chex.Numeric = 1e-8,
                  eps_root: chex.Numeric = 0.0, *, nesterov: bool = False,
                  mu_dtype: Any | None = None,
                  nu_dtype: Any | None = None) -> GradientTransformation:
    """Adam's moment scaling (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization").

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * g_t**2
        m^_t = m_t / (1 - b1**t),    v^_t = v_t / (1 - b2**t)
        u_t = m^_t / (sqrt(v^_t + eps_root) + eps)

    With ``nesterov=True`` (NAdam, Dozat 2016, in the simplified form optax uses)
    ``m^_t = b1 * m_t / (1 - b1**(t+1)) + (1 - b1) * g_t / (1 - b1**t)``.

    Args:
      b1: decay of the first moment, in ``[0, 1)``.
      b2: decay of the second moment, in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root (keeps gradients of
        the update finite when differentiating through it, as in meta-learning).
      nesterov: use the Nesterov-accelerated first moment.
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      nu_dtype: dtype of ``v``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_adam()
      >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
      Array([ 1., -1.], dtype=float32)
    """
    _checks.decay_rate("b1", b1, allow_schedule=False)
    _checks.decay_rate("b2", b2, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.non_negative("eps_root", eps_root, allow_schedule=False)
    mu_dtype = _tree.canonical_dtype(mu_dtype, "mu_dtype")
    nu_dtype = _tree.canonical_dtype(nu_dtype, "nu_dtype")

    def init_fn(params):
        return ScaleByAdamState(count=_tree.zero_count(),
                                mu=_tree.zeros_like(params, mu_dtype),
                                nu=_tree.zeros_like(params, nu_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu, "scale_by_adam")
        count = _tree.safe_increment(state.count)
        mu = _tree.ema(state.mu, updates, b1, 1)
        nu = _tree.ema(state.nu, updates, b2, 2)
        mu_hat = _tree.bias_correction(mu, b1, count)
        if nesterov:
            mu_hat = _tree.ema(_tree.bias_correction(mu, b1, _tree.safe_increment(count)),
                               _tree.bias_correction(_tree.cast_tree(updates, None), b1, count),
                               b1)
        nu_hat = _tree.bias_correction(nu, b2, count)

        def step(g, m, v):
            dtype = _tree.promote(m.dtype, v.dtype)
            v = v.astype(dtype) + jnp.asarray(eps_root).astype(dtype)
            return _out(m.astype(dtype) / _root(v, eps, False), g)

        out = _tree.map_inexact(step, updates, mu_hat, nu_hat)
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)
