"""RMS-type second moments: RMSProp, AdaGrad and AdaDelta.

Each divides the gradient by a running root of its squares; denominators are
formed in at least float32 and each update is returned in its gradient's dtype.
For complex parameters the squares are ``|g|**2`` and the denominators real.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
    transformation,
)


class ScaleByRmsState(NamedTuple):
    """The second moment ``nu`` (optax's RMSProp state)."""

    nu: chex.ArrayTree


class ScaleByRmsWithCountState(NamedTuple):
    """Step count and second moment ``nu`` (RMSProp with ``bias_correction``, as optax)."""

    count: chex.Array
    nu: chex.ArrayTree


class ScaleByRStdDevState(NamedTuple):
    """First moment ``mu`` and second moment ``nu`` (centered RMSProp, as optax)."""

    mu: chex.ArrayTree
    nu: chex.ArrayTree


class ScaleByRStdDevWithCountState(NamedTuple):
    """Step count, ``mu`` and ``nu`` (centered RMSProp with ``bias_correction``, as optax)."""

    count: chex.Array
    mu: chex.ArrayTree
    nu: chex.ArrayTree


def scale_by_rms(
    decay: chex.Numeric = 0.9,
    eps: chex.Numeric = 1e-8,
    initial_scale: chex.Numeric = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
    *,
    centered: bool = False,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Divide by a running root mean square of the gradients (RMSProp; Tieleman & Hinton, 2012).

    ::

        nu_t = decay * nu_{t-1} + (1 - decay) * |g_t|**2       (nu_0 = initial_scale)
        centered:  mu_t = decay * mu_{t-1} + (1 - decay) * g_t,  s_t = nu_t - |mu_t|**2
        otherwise: s_t = nu_t
        u_t = g_t / sqrt(s_t + eps)      (eps_in_sqrt=True, as optax and keras)
        u_t = g_t / (sqrt(s_t) + eps)    (eps_in_sqrt=False, as torch.optim.RMSprop)

    The centered variant is Graves (2013) (optax's :func:`scale_by_stddev`);
    ``s_t`` is clamped at 0, where rounding could take it below. With
    ``bias_correction`` the moments are divided by ``1 - decay**t`` first.
    The state is optax's: :class:`ScaleByRmsState` (``nu``), with a ``count``
    for ``bias_correction`` (:class:`ScaleByRmsWithCountState`), with ``mu`` when
    centered (:class:`ScaleByRStdDevState`, :class:`ScaleByRStdDevWithCountState`).

    Complex parameters work as in optax: ``|g|**2`` is ``g * conj(g)``, ``nu`` is
    real (kept in the parameter's complex dtype unless ``nu_dtype`` is real) and
    ``mu`` complex.

    Args:
      decay: averaging decay in ``[0, 1)``.
      eps: non-negative term added for numerical stability.
      initial_scale: initial value of ``nu`` (torch 0, TF1 1).
      eps_in_sqrt: where ``eps`` goes (see above).
      bias_correction: divide the moments by ``1 - decay**t``.
      centered: subtract the squared mean gradient (an estimate of the variance).
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
    nu_dtype = _checks.canonical_dtype(nu_dtype, "nu_dtype")
    who = "scale_by_rms"

    def init_fn(params):
        nu = _tree.full_like(params, initial_scale, nu_dtype)
        if centered:
            mu = _tree.zeros_like(params, nu_dtype)
            if bias_correction:
                return ScaleByRStdDevWithCountState(count=_tree.zero_count(), mu=mu, nu=nu)
            return ScaleByRStdDevState(mu=mu, nu=nu)
        if bias_correction:
            return ScaleByRmsWithCountState(count=_tree.zero_count(), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        if centered:  # mu must hold complex updates
            check_second_moment_updates(updates, state.mu, who, "nu_dtype", nu_dtype, first=True)
        else:
            check_second_moment_updates(updates, state.nu, who, "nu_dtype", nu_dtype)
        nu = _tree.update_moment(state.nu, updates, decay, 2)
        mu = _tree.update_moment(state.mu, updates, decay, 1) if centered else None
        if bias_correction:
            count = _tree.safe_increment(state.count)
            nu_hat = _tree.bias_correction(nu, decay, count)
            mu_hat = _tree.bias_correction(mu, decay, count) if centered else None
        else:
            count, nu_hat, mu_hat = None, nu, mu

        def step(g, n, m=None):
            s = _tree.real_part(n)
            if m is not None:
                # E[|g|^2] - |E[g]|^2 can round below zero once both have converged.
                s = jnp.maximum(s - _tree.abs_sq(m, at_least=s.dtype).astype(s.dtype), 0)
            return _tree.cast_like(_tree.div_real(g, _tree.sqrt_eps(s, eps, eps_in_sqrt)), g)

        if centered:
            out = _tree.map_inexact(step, updates, nu_hat, mu_hat)
            if bias_correction:
                return out, ScaleByRStdDevWithCountState(count=count, mu=mu, nu=nu)
            return out, ScaleByRStdDevState(mu=mu, nu=nu)
        out = _tree.map_inexact(step, updates, nu_hat)
        if bias_correction:
            return out, ScaleByRmsWithCountState(count=count, nu=nu)
        return out, ScaleByRmsState(nu=nu)

    return transformation(init_fn, update_fn)


def scale_by_stddev(
    decay: chex.Numeric = 0.9,
    eps: chex.Numeric = 1e-8,
    initial_scale: chex.Numeric = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
    *,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Centered RMSProp (Graves, 2013): :func:`scale_by_rms` with ``centered=True``.

    ::

        mu_t = decay * mu_{t-1} + (1 - decay) * g_t
        nu_t = decay * nu_{t-1} + (1 - decay) * |g_t|**2       (nu_0 = initial_scale)
        u_t = g_t / sqrt(max(nu_t - |mu_t|**2, 0) + eps)   (eps_in_sqrt=False: sqrt(.) + eps)

    Args:
      decay: averaging decay in ``[0, 1)``.
      eps: non-negative term added for numerical stability.
      initial_scale: initial value of ``nu``.
      eps_in_sqrt: whether ``eps`` is added inside the square root.
      bias_correction: divide the moments by ``1 - decay**t``.
      nu_dtype: dtype of the moments; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_stddev(decay=0.5, eps=0.0)
      >>> tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))[0]  # 2 / sqrt(0.5 * 4 - 1**2)
      Array([2.], dtype=float32)
    """
    return scale_by_rms(
        decay,
        eps,
        initial_scale,
        eps_in_sqrt,
        bias_correction,
        centered=True,
        nu_dtype=nu_dtype,
    )


def check_second_moment_updates(
    updates: chex.ArrayTree,
    moment: chex.ArrayTree,
    who: str,
    dtype_arg: str,
    dtype: np.dtype | None,
    *,
    first: bool = False,
) -> None:
    """Check ``updates`` against a state moment kept in the params' dtype unless ``dtype`` is set.

    A first moment (``first``) must hold complex updates: a real one refuses
    them by key path. A second moment is real-valued: kept in an explicit real
    dtype it does not tell whether the params are complex, so complex updates are
    accepted (``apply_updates`` refuses a complex update for a real parameter).
    """
    against = None if dtype is None else f"the state of {who} ({dtype_arg}={dtype.name})"
    _checks.check_updates(
        updates,
        moment,
        who,
        allow_complex=True,
        against=against,
        complex_on_real=dtype is not None and not first,
    )


class ScaleByAdagradState(NamedTuple):
    """The running sum of squared gradients."""

    sum_of_squares: chex.ArrayTree


def scale_by_adagrad(
    initial_accumulator_value: chex.Numeric = 0.1,
    eps: chex.Numeric = 1e-7,
    *,
    eps_in_sqrt: bool = True,
    accumulator_dtype: Any | None = None,
) -> GradientTransformation:
    """AdaGrad's per-coordinate scaling (Duchi, Hazan & Singer, 2011).

    ::

        s_t = s_{t-1} + |g_t|**2        (s_0 = initial_accumulator_value)
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
    _checks.non_negative(
        "initial_accumulator_value", initial_accumulator_value, allow_schedule=False
    )
    _checks.non_negative("eps", eps, allow_schedule=False)
    accumulator_dtype = _checks.canonical_dtype(accumulator_dtype, "accumulator_dtype")

    def init_fn(params):
        return ScaleByAdagradState(
            sum_of_squares=_tree.full_like(params, initial_accumulator_value, accumulator_dtype)
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_second_moment_updates(
            updates,
            state.sum_of_squares,
            "scale_by_adagrad",
            "accumulator_dtype",
            accumulator_dtype,
        )
        s = _tree.lincomb(1.0, state.sum_of_squares, 1.0, updates, 2)

        def step(g, acc):
            a = _tree.real_part(acc)
            return _tree.cast_like(_tree.div_real(g, _tree.sqrt_eps(a, eps, eps_in_sqrt)), g)

        return _tree.map_inexact(step, updates, s), ScaleByAdagradState(sum_of_squares=s)

    return transformation(init_fn, update_fn)


class ScaleByAdadeltaState(NamedTuple):
    """Running averages of the squared gradients ``e_g`` and squared steps ``e_x``."""

    e_g: chex.ArrayTree
    e_x: chex.ArrayTree


def scale_by_adadelta(
    rho: chex.Numeric = 0.9, eps: chex.Numeric = 1e-6, *, accumulator_dtype: Any | None = None
) -> GradientTransformation:
    """AdaDelta's unit-corrected scaling (Zeiler, 2012, "ADADELTA", Algorithm 1).

    ::

        E[g^2]_t  = rho * E[g^2]_{t-1}  + (1 - rho) * |g_t|**2
        d_t       = sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g_t
        E[dx^2]_t = rho * E[dx^2]_{t-1} + (1 - rho) * |d_t|**2

    The step is ``-d_t`` (times a learning rate, 1 in the paper). For complex
    parameters both averages are of squared moduli (optax squares the complex
    numbers instead, and its tests leave complex AdaDelta out).

    Args:
      rho: averaging decay in ``[0, 1)``.
      eps: positive stability term (it also sets the size of the first steps).
      accumulator_dtype: dtype of both averages; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_adadelta
      >>> tx = scale_by_adadelta(rho=0.5, eps=0.25)
      >>> tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))[0]  # sqrt(0.25) / sqrt(0.75)
      Array([0.57735026], dtype=float32)
    """
    _checks.decay_rate("rho", rho, allow_schedule=False)
    _checks.positive("eps", eps, allow_schedule=False)
    accumulator_dtype = _checks.canonical_dtype(accumulator_dtype, "accumulator_dtype")

    def init_fn(params):
        return ScaleByAdadeltaState(
            e_g=_tree.zeros_like(params, accumulator_dtype),
            e_x=_tree.zeros_like(params, accumulator_dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_second_moment_updates(
            updates, state.e_g, "scale_by_adadelta", "accumulator_dtype", accumulator_dtype
        )
        e_g = _tree.update_moment(state.e_g, updates, rho, 2)

        def step(g, eg, ex):
            g32, eg, ex = _tree.to_compute(g), _tree.real_part(eg), _tree.real_part(ex)
            real = _tree.promote(eg.dtype, ex.dtype, _tree.real_dtype(g32.dtype))
            e = jnp.asarray(eps).astype(real)
            scale = jnp.sqrt(ex.astype(real) + e) / jnp.sqrt(eg.astype(real) + e)
            dtype = _tree.promote(real, g32.dtype)
            return scale.astype(dtype) * g32.astype(dtype)  # exact for complex g: scale is real

        delta = _tree.map_inexact(step, updates, e_g, state.e_x)
        e_x = _tree.update_moment(state.e_x, delta, rho, 2)
        out = _tree.map_inexact(_tree.cast_like, delta, updates)
        return out, ScaleByAdadeltaState(e_g=e_g, e_x=e_x)

    return transformation(init_fn, update_fn)
