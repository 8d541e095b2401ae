"""The Adam core: first and second moments, their bias correction and the denominator.

``scale_by_adam`` (with its NAdam forms) and ``scale_by_amsgrad`` are here, with
the pieces every Adam-family primitive shares: argument checks, the moment
state, and the direction ``m^ / (sqrt(v^ + eps_root) + eps)``. RAdam,
AdaBelief, Yogi and Adamax, built on these, are in ``adam_variants``.

Complex parameters (as optax): ``m`` is complex, ``v`` is the moving average
of ``|g|**2``, real, kept in the parameter's dtype unless ``nu_dtype`` says
otherwise, and the direction divides ``m^`` by a real denominator.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, transformation


class ScaleByAdamState(NamedTuple):
    """Step count and the moment estimates ``mu`` and ``nu``."""

    count: chex.Array
    mu: chex.ArrayTree
    nu: chex.ArrayTree


class ScaleByAmsgradState(NamedTuple):
    """Step count, the moment estimates ``mu`` and ``nu``, and the running maximum ``nu_max``."""

    count: chex.Array
    mu: chex.ArrayTree
    nu: chex.ArrayTree
    nu_max: chex.ArrayTree


# ------------------------------------------------------------------------ the shared core


def check_moment_args(
    b1: Any, b2: Any, eps: Any, eps_root: Any, mu_dtype: Any, nu_dtype: Any
) -> tuple[np.dtype | None, np.dtype | None]:
    """Validate the arguments every Adam-family primitive shares; return the moment dtypes."""
    _checks.decay_rate("b1", b1, allow_schedule=False)
    _checks.decay_rate("b2", b2, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.non_negative("eps_root", eps_root, allow_schedule=False)
    return (
        _checks.canonical_dtype(mu_dtype, "mu_dtype"),
        _checks.canonical_dtype(nu_dtype, "nu_dtype"),
    )


def check_moment_updates(
    updates: chex.ArrayTree, mu: chex.ArrayTree, who: str, mu_dtype: np.dtype | None
) -> None:
    """Check ``updates`` against the first moment ``mu``, which must hold complex updates.

    ``mu`` has the params' dtype unless ``mu_dtype`` was given, so a complex
    update for a real parameter, or for a real ``mu_dtype``, is refused by key path.
    """
    against = None if mu_dtype is None else f"the mu of {who} (mu_dtype={mu_dtype.name})"
    _checks.check_updates(updates, mu, who, allow_complex=True, against=against)


def nesterov_mu_hat(
    mu: chex.ArrayTree, updates: chex.ArrayTree, b1: chex.Numeric, count: chex.Array
) -> chex.ArrayTree:
    """The Nesterov first moment ``b1 * m_t / (1 - b1**(t+1)) + (1 - b1) * g_t / (1 - b1**t)``."""
    return _tree.update_moment(
        _tree.bias_correction(mu, b1, _tree.safe_increment(count)),
        _tree.bias_correction(updates, b1, count),
        b1,
    )


def init_moments(
    params: chex.ArrayTree, mu_dtype: Any, nu_dtype: Any, nu_init: chex.Numeric = 0.0
) -> ScaleByAdamState:
    """A zero step count, ``mu = 0`` and ``nu = nu_init``, shaped like the params."""
    return ScaleByAdamState(
        count=_tree.zero_count(),
        mu=_tree.zeros_like(params, mu_dtype),
        nu=_tree.full_like(params, nu_init, nu_dtype),
    )


def direction(
    updates: chex.ArrayTree,
    mu_hat: chex.ArrayTree,
    nu_hat: chex.ArrayTree,
    eps: chex.Numeric,
    eps_root: chex.Numeric,
) -> chex.ArrayTree:
    """``m^ / (sqrt(v^ + eps_root) + eps)`` leaf by leaf, in each gradient's dtype.

    Formed in the wider of the moments' (at least float32) dtypes; the
    denominator is real (``v^`` is read with ``real_part``), and a complex ``m^``
    is divided by it part by part.
    """

    no_root = isinstance(eps_root, int | float) and eps_root == 0  # v >= +0: adding 0 is exact

    def step(g, m, v):
        v = _tree.real_part(v)
        real = _tree.promote(_tree.real_dtype(m.dtype), v.dtype)
        v = _tree.astype(v, real)
        if not no_root:
            v = v + _tree.astype(eps_root, real)
        return _tree.cast_like(_tree.div_real(m, _tree.sqrt_eps(v, eps, False)), g)

    return _tree.map_inexact(step, updates, mu_hat, nu_hat)


def bias_factor(decay: chex.Numeric, count: chex.Array) -> chex.Array:
    """The float32 scalar ``1 / (1 - decay**count)`` (by :func:`gradxform.bias_correction`)."""
    return _tree.bias_correction(jnp.ones([], jnp.float32), decay, count)


def uncorrected_eps(eps: chex.Numeric, b2: chex.Numeric, count: chex.Array) -> chex.Array:
    """``eps / sqrt(1 - b2**t)``: ``eps`` added to ``sqrt(v_t)`` before the bias correction."""
    return eps * jnp.sqrt(bias_factor(b2, count))


# ----------------------------------------------------------------------------- Adam, NAdam


def scale_by_adam(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = False,
    momentum_schedule: str = "constant",
    momentum_decay: float = 4e-3,
    eps_uncorrected: bool = False,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Adam's moment scaling (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization").

    ::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * |g_t|**2
        m^_t = m_t / (1 - b1**t),    v^_t = v_t / (1 - b2**t)
        u_t = m^_t / (sqrt(v^_t + eps_root) + eps)

    Complex parameters work as in optax: ``m`` is complex, ``|g|**2`` is
    ``g * conj(g)`` and ``v`` is real (kept in the parameter's complex dtype
    with a zero imaginary part unless ``nu_dtype`` is a real dtype).

    Variants that change the numerics, not the state:

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
    * ``eps_uncorrected=True`` adds ``eps`` to ``sqrt(v_t)`` before the bias
      correction (the "epsilon hat" of Kingma & Ba, section 2, as keras' Adam
      computes it): ``u_t = m^_t / (sqrt(v^_t) + eps / sqrt(1 - b2**t))``.

    AMSGrad keeps a running maximum in its state: it is :func:`scale_by_amsgrad`.

    Args:
      b1: decay of the first moment, in ``[0, 1)``.
      b2: decay of the second moment, in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root (keeps gradients of
        the update finite when differentiating through it, as in meta-learning).
      mu_dtype: dtype of ``m`` (complex for complex parameters); default: each
        parameter's dtype.
      nesterov: use the Nesterov-accelerated first moment.
      momentum_schedule: ``"constant"`` or ``"dozat"`` (needs ``nesterov=True``).
      momentum_decay: positive rate of Dozat's momentum schedule (torch: 4e-3;
        only with ``momentum_schedule="dozat"``).
      eps_uncorrected: add ``eps`` before the bias correction of ``v``.
      nu_dtype: dtype of ``v``; default: each parameter's dtype (a real dtype
        halves its memory for complex parameters).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_adam()
      >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
      Array([ 1., -1.], dtype=float32)
    """
    mu_dtype, nu_dtype = check_moment_args(b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    _checks.one_of("momentum_schedule", momentum_schedule, ("constant", "dozat"))
    _checks.positive("momentum_decay", momentum_decay, allow_schedule=False)
    if momentum_schedule == "dozat" and not nesterov:
        raise ValueError("momentum_schedule='dozat' is NAdam's schedule: it needs nesterov=True")
    _checks.unused_unless(
        "momentum_decay",
        momentum_decay,
        4e-3,
        "momentum_schedule='dozat'",
        used=momentum_schedule == "dozat",
    )

    def init_fn(params):
        return init_moments(params, mu_dtype, nu_dtype)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_moment_updates(updates, state.mu, "scale_by_adam", mu_dtype)
        count = _tree.safe_increment(state.count)
        mu = _tree.update_moment(state.mu, updates, b1, 1)
        nu = _tree.update_moment(state.nu, updates, b2, 2)
        if nesterov and momentum_schedule == "dozat":
            mu_now, mu_next, prod_now, prod_next = dozat_momentum(b1, momentum_decay, count)
            mu_hat = _tree.lincomb(
                mu_next / (1 - prod_next),
                _tree.map_inexact(_tree.to_compute, mu),
                (1 - mu_now) / (1 - prod_now),
                updates,
            )
        elif nesterov:
            mu_hat = nesterov_mu_hat(mu, updates, b1, count)
        else:
            mu_hat = _tree.bias_correction(mu, b1, count)
        nu_hat = _tree.bias_correction(nu, b2, count)
        eps_t = uncorrected_eps(eps, b2, count) if eps_uncorrected else eps
        out = direction(updates, mu_hat, nu_hat, eps_t, eps_root)
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return transformation(init_fn, update_fn)


# --------------------------------------------------------------------------------- AMSGrad


def scale_by_amsgrad(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    amsgrad_max: str = "corrected",
    eps_uncorrected: bool = False,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """AMSGrad's scaling (Reddi, Kale & Kumar, 2018, "On the Convergence of Adam and Beyond").

    Adam with the running maximum of the second moment in place of ``v^_t``::

        amsgrad_max="corrected":  v~_t = vmax_t = max(vmax_{t-1}, v_t / (1 - b2**t))   (optax)
        amsgrad_max="raw":        vmax_t = max(vmax_{t-1}, v_t),  v~_t = vmax_t / (1 - b2**t)
                                  (torch.optim.Adam(amsgrad=True), keras)
        u_t = m^_t / (sqrt(v~_t + eps_root) + eps)

    With ``bias_correction_mu=False`` ``m^_t = m_t``, and with
    ``bias_correction_nu=False`` ``v~_t = vmax_t = max(vmax_{t-1}, v_t)``: both
    off is the algorithm of the paper (optax's options). Complex parameters work
    as in :func:`scale_by_adam` (``v`` and its maximum are real).

    Args:
      b1: decay of the first moment, in ``[0, 1)``.
      b2: decay of the second moment, in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: non-negative term added inside the root.
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      bias_correction_mu: divide ``m`` by ``1 - b1**t``.
      bias_correction_nu: divide ``v`` by ``1 - b2**t`` (before the maximum with
        ``amsgrad_max="corrected"``, after it with ``"raw"``).
      amsgrad_max: the maximum of the ``"corrected"`` or of the ``"raw"`` second moment
        (the same without ``bias_correction_nu``, so ``"raw"`` needs it).
      eps_uncorrected: add ``eps`` to ``sqrt(v~_t)`` before the bias correction (keras;
        needs ``bias_correction_nu``).
      nu_dtype: dtype of ``v`` and of its maximum; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_amsgrad(b1=0.0, b2=0.5, eps=0.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([2.0]), state)
      >>> tx.update(jnp.array([1.0]), state)[0]  # v~ = max(4, (0.5 * 2 + 0.5) / 0.75) = 4
      Array([0.5], dtype=float32)
    """
    mu_dtype, nu_dtype = check_moment_args(b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    _checks.one_of("amsgrad_max", amsgrad_max, ("corrected", "raw"))
    if not bias_correction_nu and amsgrad_max == "raw":
        raise ValueError(
            "amsgrad_max='raw' has no effect unless bias_correction_nu=True (without the "
            "correction the raw and the corrected maximum are the same)"
        )
    if not bias_correction_nu and eps_uncorrected:
        raise ValueError("eps_uncorrected=True has no effect unless bias_correction_nu=True")

    def init_fn(params):
        count, mu, nu = init_moments(params, mu_dtype, nu_dtype)
        return ScaleByAmsgradState(count, mu, nu, nu_max=_tree.zeros_like(params, nu_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_moment_updates(updates, state.mu, "scale_by_amsgrad", mu_dtype)
        count = _tree.safe_increment(state.count)
        mu = _tree.update_moment(state.mu, updates, b1, 1)
        nu = _tree.update_moment(state.nu, updates, b2, 2)
        if amsgrad_max == "raw":
            nu_max = _tree.map_inexact(_running_max, state.nu_max, nu)
            nu_hat = _tree.bias_correction(nu_max, b2, count)
        else:
            nu_eff = _tree.bias_correction(nu, b2, count) if bias_correction_nu else nu
            nu_hat = _tree.map_inexact(_max_in_compute_dtype, state.nu_max, nu_eff)
            nu_max = _tree.map_inexact(_tree.cast_like, nu_hat, state.nu_max)
        eps_t = uncorrected_eps(eps, b2, count) if eps_uncorrected else eps
        mu_hat = _tree.bias_correction(mu, b1, count) if bias_correction_mu else mu
        out = direction(updates, mu_hat, nu_hat, eps_t, eps_root)
        return out, ScaleByAmsgradState(count=count, mu=mu, nu=nu, nu_max=nu_max)

    return transformation(init_fn, update_fn)


def _running_max(old: chex.Array, new: chex.Array, keep_dtype: bool = True) -> chex.Array:
    """``max(old, new)`` of two real-valued statistics, in ``old``'s dtype if ``keep_dtype``.

    Otherwise the maximum is returned in the real compute dtype of both.
    """
    a, b = _tree.real_part(old), _tree.real_part(new)
    dtype = _tree.promote(a.dtype, b.dtype)
    out = jnp.maximum(a.astype(dtype), b.astype(dtype))
    return _tree.cast_like(out, old) if keep_dtype else out


def _max_in_compute_dtype(old: chex.Array, new: chex.Array) -> chex.Array:
    return _running_max(old, new, keep_dtype=False)


_DOZAT_TERMS = 40


def dozat_momentum(
    b1: chex.Numeric, momentum_decay: chex.Numeric, count: chex.Array
) -> tuple[chex.Array, chex.Array, chex.Array, chex.Array]:
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
