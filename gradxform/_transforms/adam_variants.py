"""Adam variants on the shared core: Adamax, RAdam, AdaBelief and Yogi.

Each supports complex parameters as optax does: complex first moments, real
second statistics (of ``|g|``), real denominators.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
    transformation,
)
from gradxform._transforms.adam import (
    ScaleByAdamState,
    check_moment_args,
    check_moment_updates,
    direction,
    init_moments,
    nesterov_mu_hat,
    uncorrected_eps,
)


class ScaleByBeliefState(NamedTuple):
    """Step count, the first moment ``mu`` and the belief ``nu`` (optax's AdaBelief state)."""

    count: chex.Array
    mu: chex.ArrayTree
    nu: chex.ArrayTree


def scale_by_adamax(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    *,
    eps_in_max: bool = False,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Adamax: Adam with the infinity norm (Kingma & Ba, 2015, section 7.1).

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        u_t = max(b2 * u_{t-1}, |g_t|)
        d_t = m_t / (1 - b1**t) / (u_t + eps)

    For a complex gradient ``|g_t|`` is its modulus and ``u`` is real.

    With ``eps_in_max=True`` (torch.optim.Adamax) ``eps`` moves into the
    maximum instead: ``u_t = max(b2 * u_{t-1}, |g_t| + eps)``,
    ``d_t = m_t / (1 - b1**t) / u_t``. The default is optax's and keras'
    placement.

    Args:
      b1: first-moment decay in ``[0, 1)``.
      b2: decay of the infinity norm in ``[0, 1)``.
      eps: non-negative stability term.
      eps_in_max: put ``eps`` inside the maximum (see above).
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      nu_dtype: dtype of ``u``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_adamax
      >>> tx = scale_by_adamax(eps=0.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> d, state = tx.update(jnp.array([2.0]), state)
      >>> d, state = tx.update(jnp.array([1.0]), state)
      >>> [round(x, 4) for x in d.tolist()]  # m = 0.28, u = max(1.998, 1), m / 0.19 / u
      [0.7376]
    """
    mu_dtype, nu_dtype = check_moment_args(b1, b2, eps, 0.0, mu_dtype, nu_dtype)

    def init_fn(params):
        return init_moments(params, mu_dtype, nu_dtype)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_moment_updates(updates, state.mu, "scale_by_adamax", mu_dtype)
        count = _tree.safe_increment(state.count)
        mu = _tree.update_moment(state.mu, updates, b1, 1)
        mu_hat = _tree.bias_correction(mu, b1, count)

        def norm(u, g):
            u, size = _tree.real_part(u), jnp.abs(_tree.to_compute(g))  # both real
            dtype = _tree.promote(u.dtype, size.dtype)
            size = size.astype(dtype)
            if eps_in_max:
                size = size + jnp.asarray(eps).astype(dtype)
            return jnp.maximum(jnp.asarray(b2).astype(dtype) * u.astype(dtype), size)

        nu32 = _tree.map_inexact(norm, state.nu, updates)

        def step(g, m, u):
            denom = u
            if not eps_in_max:
                denom = denom + jnp.asarray(eps).astype(denom.dtype)
            return _tree.cast_like(_tree.div_real(m, denom), g)

        out = _tree.map_inexact(step, updates, mu_hat, nu32)
        nu = _tree.map_inexact(_tree.cast_like, nu32, state.nu)
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return transformation(init_fn, update_fn)


def scale_by_radam(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    threshold: chex.Numeric = 5.0,
    *,
    nesterov: bool = False,
    eps_uncorrected: bool = False,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Rectified Adam (Liu et al., 2020, "On the Variance of the Adaptive Learning Rate and
    Beyond").

    ::

        m_t, v_t, m^_t, v^_t as in Adam
        rho_inf = 2 / (1 - b2) - 1
        rho_t   = rho_inf - 2 t b2**t / (1 - b2**t)
        r_t     = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
        d_t = r_t * m^_t / (sqrt(v^_t + eps_root) + eps)    if rho_t > threshold
        d_t = m^_t                                          otherwise

    With ``nesterov=True`` ``m^_t`` is the Nesterov first moment of
    :func:`scale_by_adam` (optax's option). With ``eps_uncorrected=True`` ``eps``
    is added to ``sqrt(v_t)`` before the bias correction,
    ``d_t = r_t m^_t / (sqrt(v^_t) + eps / sqrt(1 - b2**t))``, as
    torch.optim.RAdam computes it.

    Args:
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      threshold: the rectified step is used once ``rho_t > threshold`` (>= 4;
        the paper uses 4, torch and optax 5).
      nesterov: use the Nesterov first moment.
      eps_uncorrected: add ``eps`` before the bias correction of ``v``.
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      nu_dtype: dtype of ``v``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_radam
      >>> tx = scale_by_radam()
      >>> tx.update(jnp.array([0.5]), tx.init(jnp.zeros(1)))[0].round(6)  # rho_1 = 1: m^_1
      Array([0.5], dtype=float32)
    """
    mu_dtype, nu_dtype = check_moment_args(b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    _checks.number("threshold", threshold, low=4.0, allow_schedule=False)

    def init_fn(params):
        return init_moments(params, mu_dtype, nu_dtype)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_moment_updates(updates, state.mu, "scale_by_radam", mu_dtype)
        count = _tree.safe_increment(state.count)
        # In float32 from float32(b2), as ema and bias_correction see b2, so that b2 may
        # be a JAX scalar (inject_hyperparams keeps it in the state).
        rho_inf = 2 / (1 - jnp.asarray(b2).astype(jnp.float32)) - 1
        mu = _tree.update_moment(state.mu, updates, b1, 1)
        nu = _tree.update_moment(state.nu, updates, b2, 2)
        if nesterov:
            mu_hat = nesterov_mu_hat(mu, updates, b1, count)
        else:
            mu_hat = _tree.bias_correction(mu, b1, count)
        nu_hat = _tree.bias_correction(nu, b2, count)
        rho_t = _sma_length(b2, count)
        rectify = rho_t > threshold
        safe_rho = jnp.where(rectify, rho_t, rho_inf)
        r_t = jnp.sqrt(
            (safe_rho - 4) * (safe_rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * safe_rho)
        )
        eps_t = uncorrected_eps(eps, b2, count) if eps_uncorrected else eps
        rectified = direction(updates, _tree.scale_tree(mu_hat, r_t), nu_hat, eps_t, eps_root)
        out = _tree.map_inexact(
            lambda g, d, m: jnp.where(rectify, d, _tree.cast_like(m, g)), updates, rectified, mu_hat
        )
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return transformation(init_fn, update_fn)


def _sma_length(b2: chex.Numeric, count: chex.Array) -> chex.Array:
    """RAdam's ``rho_t = rho_inf - 2 t b2**t / (1 - b2**t)`` in float32, without cancellation.

    The two terms nearly cancel for small ``t`` (``rho_inf`` is 1999 for
    ``b2 = 0.999`` while ``rho_t`` is about ``t``), so a direct float32
    evaluation loses about four digits. With ``L = log(b2)``,
    ``h(y) = 1 / expm1(y) - 1 / y + 1/2`` (smooth, ``h(y) ~ y / 12``) the same
    quantity is ``rho_t = t + 2 h(-L) - 2 t h(-t L)``, whose terms do not
    cancel while ``-t L < 1``; beyond, ``t - 2 t h(-t L) = 2 / (-L) - 2 t / expm1(-t L)``.
    """
    t = jnp.asarray(count).astype(jnp.float32)
    y = -jnp.log1p(jnp.asarray(b2).astype(jnp.float32) - 1)  # -L > 0

    def h_series(x):
        return x / 12 - x**3 / 720 + x**5 / 30240 - x**7 / 1209600

    def h(x):
        small = x < 1
        xs, xl = jnp.where(small, x, 0.0), jnp.where(small, 1.0, x)
        return jnp.where(small, h_series(xs), 1 / jnp.expm1(xl) - 1 / xl + 0.5)

    ty = t * y
    small = ty < 1
    near = t - 2 * t * h_series(jnp.where(small, ty, 0.0))
    ty_far = jnp.where(small, 1.0, ty)
    far = 2 / y - 2 * t / jnp.expm1(ty_far)
    return 2 * h(y) + jnp.where(small, near, far)


def scale_by_belief(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-16,
    eps_root: chex.Numeric = 1e-16,
    *,
    nesterov: bool = False,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """AdaBelief's scaling by the belief in the gradient (Zhuang et al., 2020, "AdaBelief
    Optimizer: Adapting Stepsizes by the Belief in Observed Gradients", Algorithm 2).

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        s_t = b2 * s_{t-1} + (1 - b2) * |g_t - m_t|**2 + eps_root
        u_t = m^_t / (sqrt(s_t / (1 - b2**t)) + eps),   m^_t = m_t / (1 - b1**t)

    With ``nesterov=True`` ``m^_t`` is the Nesterov first moment of
    :func:`scale_by_adam` (optax's option).

    Args:
      b1: first-moment decay in ``[0, 1)``.
      b2: decay of the belief ``s``, in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added to ``s`` at every step (the paper's epsilon).
      nesterov: use the Nesterov first moment.
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      nu_dtype: dtype of ``s``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_belief
      >>> tx = scale_by_belief(b1=0.5, b2=0.5, eps=0.0, eps_root=0.0)
      >>> tx.update(jnp.array([4.0]), tx.init(jnp.zeros(1)))[0]  # m^ = 4, s^ = (4 - 2)**2
      Array([2.], dtype=float32)
    """
    mu_dtype, nu_dtype = check_moment_args(b1, b2, eps, eps_root, mu_dtype, nu_dtype)

    def init_fn(params):
        return ScaleByBeliefState(*init_moments(params, mu_dtype, nu_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_moment_updates(updates, state.mu, "scale_by_belief", mu_dtype)
        count = _tree.safe_increment(state.count)
        mu = _tree.update_moment(state.mu, updates, b1, 1)

        def surprise(g, m):
            g32, m32 = _tree.to_compute(g), _tree.to_compute(m)
            dtype = _tree.promote(g32.dtype, m32.dtype)
            return g32.astype(dtype) - m32.astype(dtype)

        # s is real: kept in a complex dtype for complex params, it is updated in real arithmetic.
        nu32 = _tree.update_moment(
            _tree.map_inexact(_tree.real_part, state.nu),
            _tree.map_inexact(surprise, updates, mu),
            b2,
            2,
        )
        nu32 = _tree.map_inexact(lambda s: s + jnp.asarray(eps_root).astype(s.dtype), nu32)
        if nesterov:
            mu_hat = nesterov_mu_hat(mu, updates, b1, count)
        else:
            mu_hat = _tree.bias_correction(mu, b1, count)
        nu_hat = _tree.bias_correction(nu32, b2, count)

        out = direction(updates, mu_hat, nu_hat, eps, 0.0)  # eps_root is already in s
        nu = _tree.map_inexact(_tree.cast_like, nu32, state.nu)
        return out, ScaleByBeliefState(count=count, mu=mu, nu=nu)

    return transformation(init_fn, update_fn)


def scale_by_yogi(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-3,
    eps_root: chex.Numeric = 0.0,
    initial_accumulator_value: chex.Numeric = 1e-6,
    *,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Yogi's additive second moment (Zaheer et al., 2018, "Adaptive Methods for Nonconvex
    Optimization", Algorithm 2), with Adam's bias correction.

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        v_t = v_{t-1} - (1 - b2) * sign(v_{t-1} - |g_t|**2) * |g_t|**2     (v_0 = initial value)
        u_t = m_t / (1 - b1**t) / (sqrt(v_t / (1 - b2**t) + eps_root) + eps)

    Unlike Adam's average, ``v`` moves toward ``g**2`` by at most ``(1 - b2) g**2``,
    so a sudden small gradient does not blow up the step.

    Args:
      b1: first-moment decay in ``[0, 1)``.
      b2: rate of the second moment, in ``[0, 1)``.
      eps: non-negative term added to the root (the paper's default is 1e-3).
      eps_root: non-negative term added inside the root.
      initial_accumulator_value: non-negative ``v_0``.
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      nu_dtype: dtype of ``v``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_yogi
      >>> tx = scale_by_yogi(b1=0.0, b2=0.75, eps=0.0, initial_accumulator_value=0.0)
      >>> tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))[0].round(6)  # v = 1, v^ = 4
      Array([1.], dtype=float32)
    """
    mu_dtype, nu_dtype = check_moment_args(b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    _checks.non_negative(
        "initial_accumulator_value", initial_accumulator_value, allow_schedule=False
    )

    def init_fn(params):
        return init_moments(params, mu_dtype, nu_dtype, initial_accumulator_value)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_moment_updates(updates, state.mu, "scale_by_yogi", mu_dtype)
        count = _tree.safe_increment(state.count)
        mu = _tree.update_moment(state.mu, updates, b1, 1)

        def second(v, g):
            v = _tree.real_part(v)
            g2 = _tree.abs_sq(g, at_least=v.dtype)  # both real
            dtype = _tree.promote(v.dtype, g2.dtype)
            v, g2 = v.astype(dtype), g2.astype(dtype)
            return v - (1 - jnp.asarray(b2).astype(dtype)) * jnp.sign(v - g2) * g2

        nu32 = _tree.map_inexact(second, state.nu, updates)
        mu_hat = _tree.bias_correction(mu, b1, count)
        nu_hat = _tree.bias_correction(nu32, b2, count)

        out = direction(updates, mu_hat, nu_hat, eps, eps_root)
        nu = _tree.map_inexact(_tree.cast_like, nu32, state.nu)
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return transformation(init_fn, update_fn)
