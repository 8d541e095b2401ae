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
                # E[g^2] - E[g]^2 can round below zero once both have converged.
                s = jnp.maximum(s - jnp.square(_tree.to_compute(m).astype(s.dtype)),
                                jnp.zeros([], s.dtype))
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
    """Step count, the moment estimates ``mu`` and ``nu``, and AMSGrad's running maximum.

    ``nu_max`` is ``None`` unless ``amsgrad=True``.
    """

    count: chex.Array
    mu: chex.ArrayTree
    nu: chex.ArrayTree
    nu_max: chex.ArrayTree = None


def scale_by_adam(b1: chex.Numeric = 0.9, b2: chex.Numeric = 0.999, eps: chex.Numeric = 1e-8,
                  eps_root: chex.Numeric = 0.0, *, nesterov: bool = False,
                  momentum_schedule: str = "constant", momentum_decay: float = 4e-3,
                  amsgrad: bool = False, amsgrad_max: str = "raw",
                  eps_uncorrected: bool = False, mu_dtype: Any | None = None,
                  nu_dtype: Any | None = None) -> GradientTransformation:
    """Adam's moment scaling (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization").

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * g_t**2
        m^_t = m_t / (1 - b1**t),    v^_t = v_t / (1 - b2**t)
        u_t = m^_t / (sqrt(v^_t + eps_root) + eps)

    Variants, each selected by one flag:

    * ``nesterov=True`` (NAdam, Dozat 2016). With ``momentum_schedule="constant"``
      the simplified form optax uses,
      ``m^_t = b1 * m_t / (1 - b1**(t+1)) + (1 - b1) * g_t / (1 - b1**t)``.
      With ``momentum_schedule="dozat"`` Dozat's warming momentum
      ``mu_t = b1 * (1 - 0.5 * 0.96**(t * momentum_decay))`` and its running
      product ``P_t = mu_1 * ... * mu_t`` give
      ``m^_t = mu_{t+1} * m_t / (1 - P_{t+1}) + (1 - mu_t) * g_t / (1 - P_t)``
      (torch.optim.NAdam with the same ``momentum_decay``; keras' Nadam is
      ``momentum_decay=1``). ``P_t`` is evaluated in closed form from ``t``
      (a rapidly converging series for ``log P_t``), so it needs no state.
    * ``amsgrad=True`` (Reddi, Kale & Kumar, 2018, "On the Convergence of Adam
      and Beyond") keeps the running maximum of the second moment and uses it
      in place of ``v^_t``: ``amsgrad_max="raw"`` takes the maximum of the raw
      ``v_t`` and bias-corrects it (torch, keras), ``"corrected"`` takes the
      maximum of ``v^_t`` (optax).
    * ``eps_uncorrected=True`` adds ``eps`` to ``sqrt(v_t)`` before the bias
      correction (the "epsilon hat" of Kingma & Ba, section 2, as keras' Adam
      computes it): ``u_t = m^_t / (sqrt(v^_t) + eps / sqrt(1 - b2**t))``.

    Args:
      b1: decay of the first moment, in ``[0, 1)``.
      b2: decay of the second moment, in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root (keeps gradients of
        the update finite when differentiating through it, as in meta-learning).
      nesterov: use the Nesterov-accelerated first moment.
      momentum_schedule: ``"constant"`` or ``"dozat"`` (needs ``nesterov=True``).
      momentum_decay: positive rate of Dozat's momentum schedule (torch: 4e-3).
      amsgrad: divide by the running maximum of the second moment.
      amsgrad_max: ``"raw"`` or ``"corrected"`` (see above).
      eps_uncorrected: add ``eps`` before the bias correction of ``v``.
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      nu_dtype: dtype of ``v`` (and of its maximum); default: each parameter's dtype.

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
    _checks.one_of("momentum_schedule", momentum_schedule, ("constant", "dozat"))
    _checks.positive("momentum_decay", momentum_decay, allow_schedule=False)
    _checks.one_of("amsgrad_max", amsgrad_max, ("raw", "corrected"))
    if momentum_schedule == "dozat" and not nesterov:
        raise ValueError("momentum_schedule='dozat' is NAdam's schedule: it needs nesterov=True")
    mu_dtype = _tree.canonical_dtype(mu_dtype, "mu_dtype")
    nu_dtype = _tree.canonical_dtype(nu_dtype, "nu_dtype")

    def init_fn(params):
        return ScaleByAdamState(count=_tree.zero_count(),
                                mu=_tree.zeros_like(params, mu_dtype),
                                nu=_tree.zeros_like(params, nu_dtype),
                                nu_max=_tree.zeros_like(params, nu_dtype) if amsgrad else None)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu, "scale_by_adam")
        count = _tree.safe_increment(state.count)
        mu = _tree.ema(state.mu, updates, b1, 1)
        nu = _tree.ema(state.nu, updates, b2, 2)
        if nesterov and momentum_schedule == "dozat":
            mu_now, mu_next, prod_now, prod_next = dozat_momentum(b1, momentum_decay, count)
            mu_hat = _tree.ema(_tree.map_inexact(_tree.to_compute, mu), updates,
                               mu_next / (1 - prod_next), weight=(1 - mu_now) / (1 - prod_now))
        elif nesterov:
            mu_hat = _tree.ema(_tree.bias_correction(mu, b1, _tree.safe_increment(count)),
                               _tree.bias_correction(_tree.cast_tree(updates, None), b1, count),
                               b1)
        else:
            mu_hat = _tree.bias_correction(mu, b1, count)
        nu_max = state.nu_max
        if amsgrad and amsgrad_max == "raw":
            nu_max = _tree.map_inexact(_running_max, state.nu_max, nu)
            nu_hat = _tree.bias_correction(nu_max, b2, count)
        elif amsgrad:
            nu_hat = _tree.map_inexact(_running_max, _tree.map_inexact(_tree.to_compute, nu_max),
                                       _tree.bias_correction(nu, b2, count))
            nu_max = _tree.map_inexact(lambda new, old: new.astype(old.dtype), nu_hat, nu_max)
        else:
            nu_hat = _tree.bias_correction(nu, b2, count)
        eps_t = eps * jnp.sqrt(bias_factor(b2, count)) if eps_uncorrected else eps

        def step(g, m, v):
            dtype = _tree.promote(m.dtype, v.dtype)
            v = v.astype(dtype) + jnp.asarray(eps_root).astype(dtype)
            return _out(m.astype(dtype) / _root(v, eps_t, False), g)

        out = _tree.map_inexact(step, updates, mu_hat, nu_hat)
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu, nu_max=nu_max)

    return GradientTransformation(init_fn, update_fn)


def _running_max(old: chex.Array, new: chex.Array) -> chex.Array:
    """``max(old, new)`` elementwise, in the dtype of ``old``."""
    return jnp.maximum(old, new.astype(old.dtype))


def bias_factor(decay: chex.Numeric, count: chex.Array) -> chex.Array:
    """The float32 scalar ``1 / (1 - decay**count)`` (by :func:`gradxform.bias_correction`)."""
    return _tree.bias_correction(jnp.ones([], jnp.float32), decay, count)


_DOZAT_TERMS = 40


def dozat_momentum(b1: chex.Numeric, momentum_decay: chex.Numeric,
                   count: chex.Array) -> tuple[chex.Array, chex.Array, chex.Array, chex.Array]:
    """Dozat's NAdam momentum ``mu_t``, ``mu_{t+1}`` and products ``P_t``, ``P_{t+1}`` (float32).

    ``mu_s = b1 * (1 - 0.5 * c**s)`` with ``c = 0.96**momentum_decay`` and
    ``P_t = mu_1 * ... * mu_t``. With ``log1p(-x) = -sum_k x**k / k`` the
    product has the closed form
    ``log P_t = t * log(b1) - sum_k (0.5**k / k) * c**k * (1 - c**(k t)) / (1 - c**k)``,
    whose terms shrink like ``0.5**k``; 40 of them are exact in float32.
    """
    t = jnp.asarray(count).astype(jnp.float32)
    b1 = jnp.asarray(b1, jnp.float32)
    log_c = jnp.asarray(momentum_decay, jnp.float32) * jnp.log(jnp.float32(0.96))
    k = jnp.arange(1, _DOZAT_TERMS + 1, dtype=jnp.float32)
    ratio = 0.5**k / k * jnp.exp(k * log_c) / jnp.expm1(k * log_c)

    def mu(s):
        return b1 * (1 - 0.5 * jnp.exp(s * log_c))

    def product(s):
        return jnp.exp(s * jnp.log(b1) - jnp.sum(ratio * jnp.expm1(k * s * log_c)))

    return mu(t), mu(t + 1), product(t), product(t + 1)
