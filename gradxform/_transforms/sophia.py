"""Sophia: a clipped step preconditioned by an estimate of the Hessian's diagonal.

:func:`scale_by_sophia` is the primitive of :func:`gradxform.sophia`; the diagonal comes
from a transformation given to it (``hessian_diag``), by default
:func:`hutchinson_estimator_diag_hessian` (Sophia-H) or :func:`gnb_estimator_diag_hessian`
(Gauss-Newton-Bartlett, Sophia-G).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _sharding, _tree
from gradxform._base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    transformation,
    with_extra_args_support,
)
from gradxform._transforms.adam import check_moment_updates
from gradxform._transforms.hessian_diag import hutchinson_estimator_diag_hessian
from gradxform._wrappers.conditional import cond


class SophiaState(NamedTuple):
    """Step count, first moment ``mu``, Hessian-diagonal average ``nu`` and the state of
    the Hessian-diagonal estimator (optax's fields)."""

    count: chex.Array
    mu: chex.ArrayTree
    nu: chex.ArrayTree
    hessian_fn_state: Any


# ---------------------------------------------------------------- scale_by_sophia


def check_sophia_arguments(
    b1: Any,
    b2: Any,
    eps: Any,
    gamma: Any,
    clip_threshold: Any,
    update_interval: Any,
    verbose: Any,
    print_win_rate_every_n_steps: Any,
) -> None:
    """Validate :func:`scale_by_sophia`'s numbers (also :func:`gradxform.sophia`'s)."""
    _checks.decay_rate("b1", b1, allow_schedule=False)
    _checks.decay_rate("b2", b2, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.non_negative("gamma", gamma, allow_schedule=False)
    if clip_threshold is not None:
        _checks.positive("clip_threshold", clip_threshold, allow_schedule=False)
    _checks.integer("update_interval", update_interval, low=1)
    _checks.boolean("verbose", verbose)
    _checks.integer("print_win_rate_every_n_steps", print_win_rate_every_n_steps, low=0)
    if verbose and print_win_rate_every_n_steps == 0:
        raise ValueError(
            "verbose=True prints the win rate every print_win_rate_every_n_steps steps: "
            "give print_win_rate_every_n_steps >= 1 (it is 0)"
        )


def scale_by_sophia(
    b1: chex.Numeric = 0.965,
    b2: chex.Numeric = 0.99,
    eps: chex.Numeric = 1e-8,
    gamma: chex.Numeric = 0.01,
    clip_threshold: chex.Numeric | None = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: GradientTransformation = hutchinson_estimator_diag_hessian(),  # noqa: B008
    mu_dtype: Any | None = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
    *,
    nu_dtype: Any | None = None,
    bias_correction: bool = True,
    hessian_first: bool = False,
) -> GradientTransformationExtraArgs:
    """Sophia's direction: the momentum over the clipped, scaled Hessian-diagonal average.

    At step ``t`` (from 1) with gradient ``g_t`` (Liu et al. 2023, arXiv:2305.14342)::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t,     m_hat = m_t / (1 - b1**t)
        u_t = clip(m_hat / max(gamma * h, eps), -clip_threshold, clip_threshold)
        every update_interval steps (t = 1, k + 1, 2k + 1, ...):
            h_t = b2 * h_{t-1} + (1 - b2) * h_hat_t,    else h_t = h_{t-1}

    where ``h_hat_t = hessian_diagonal_fn.update(g_t, ..., params, **extra)`` (under
    ``jit`` inside ``lax.cond``: no recompilation; eagerly only on the steps it runs),
    and ``h`` is ``h_{t-1}``, the average before this step's estimate (optax's order:
    the first step divides by ``eps`` and is clipped to ``+-clip_threshold``). Extra
    keyword arguments of ``update`` (``obj_fn=`` for the default Hutchinson estimator)
    are passed to the estimator. The Hessian average is not bias-corrected. All of it
    is computed in at least float32.

    Beyond optax: ``hessian_first=True`` folds this step's estimate in first and divides
    by ``h_t`` (the paper's Algorithm 3 and pytorch-optimizer's ``SophiaH``);
    ``bias_correction=False`` uses ``m_t`` (the paper and ``SophiaH``); ``nu_dtype``.
    ``SophiaH(lr, p, eps)`` is this with ``learning_rate = lr * gamma``,
    ``clip_threshold = p / gamma`` and ``eps = eps * gamma`` for any ``gamma > 0``.

    Args:
      b1: decay of the first moment, in ``[0, 1)``.
      b2: decay of the Hessian-diagonal average, in ``[0, 1)`` (it is updated every
        ``update_interval`` steps: its effective per-step decay is about
        ``1 - (1 - b2) / update_interval``).
      eps: non-negative floor of the denominator.
      gamma: non-negative scale of the Hessian diagonal.
      clip_threshold: positive bound of each coordinate of the step, or ``None``.
      update_interval: the estimate is refreshed every this many steps (an int >= 1).
      hessian_diagonal_fn: the transformation returning the estimate of the diagonal.
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      verbose: print the win rate (the fraction of coordinates not clipped) with
        ``jax.debug.print`` every ``print_win_rate_every_n_steps`` steps.
      print_win_rate_every_n_steps: the period of that print (an int >= 1 when verbose).
      nu_dtype: dtype of ``h``; default: each parameter's dtype.
      bias_correction: divide ``m_t`` by ``1 - b1**t`` (optax).
      hessian_first: divide by the average that includes this step's estimate.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_sophia(gamma=0.5, hessian_first=True, bias_correction=False)
      >>> x = jnp.array([1.0, 0.01])
      >>> f = lambda p: jnp.sum(jnp.array([3.0, 50.0]) * p**2)  # diag(H) = (6, 100)
      >>> u, _ = tx.update(jax.grad(f)(x), tx.init(x), x, obj_fn=f)
      >>> u.round(4)  # m = 0.035 g = (0.21, 0.035), h = 0.01 diag(H): m / (0.5 h), clipped
      Array([1.  , 0.07], dtype=float32)
    """
    check_sophia_arguments(
        b1, b2, eps, gamma, clip_threshold, update_interval, verbose, print_win_rate_every_n_steps
    )
    _checks.transformation("hessian_diagonal_fn", hessian_diagonal_fn)
    mu_dtype = _checks.canonical_dtype(mu_dtype, "mu_dtype", real_only="Sophia is real-only")
    nu_dtype = _checks.canonical_dtype(nu_dtype, "nu_dtype", real_only="Sophia is real-only")
    _checks.boolean("bias_correction", bias_correction)
    _checks.boolean("hessian_first", hessian_first)
    estimator = with_extra_args_support(hessian_diagonal_fn)

    def init_fn(params):
        return SophiaState(
            count=_tree.zero_count(),
            mu=_tree.zeros_like(params, mu_dtype),
            nu=_tree.zeros_like(params, nu_dtype),
            hessian_fn_state=estimator.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        check_moment_updates(updates, state.mu, "scale_by_sophia", mu_dtype)
        _checks.check_real(updates, what="updates", reason="Sophia is real-only")
        if params is None:
            raise ValueError(
                "scale_by_sophia needs the params: call update(updates, state, params)"
            )
        count = _tree.safe_increment(state.count)
        mu = _tree.update_moment(state.mu, updates, b1, 1)
        mu_hat = (
            _tree.bias_correction(mu, b1, count)
            if bias_correction
            else _tree.map_inexact(_tree.to_compute, mu)
        )

        def refresh(hessian_state, nu):
            estimate, hessian_state = estimator.update(updates, hessian_state, params, **extra_args)
            new = _tree.update_moment(nu, estimate, b2, 1)
            # both branches keep nu's sharding (flat() may hand over a replicated copy)
            return hessian_state, jax.tree.map(_sharding.sharded_like, new, nu)

        hessian_state, nu = cond(
            state.count % update_interval == 0,
            refresh,
            lambda hessian_state, nu: (hessian_state, nu),
            state.hessian_fn_state,
            state.nu,
        )
        h = nu if hessian_first else state.nu

        def step(m, hi):
            d = jnp.maximum(jnp.asarray(gamma, m.dtype) * _tree.to_compute(hi), eps)
            u = m / d.astype(m.dtype)
            if clip_threshold is not None:
                c = jnp.asarray(clip_threshold, m.dtype)
                u = jnp.clip(u, -c, c)
            return u

        out = _tree.map_inexact(step, mu_hat, h)
        if verbose:
            kept = sum(
                jnp.sum(jnp.abs(u) < clip_threshold if clip_threshold is not None else u == u)
                for u in jax.tree.leaves(out)
                if _tree.is_inexact(u)
            )
            size = sum(u.size for u in jax.tree.leaves(out) if _tree.is_inexact(u))
            cond(
                count % print_win_rate_every_n_steps == 0,
                lambda: jax.debug.print("Sophia win rate: {}", kept / max(size, 1)),
                lambda: None,
            )
        out = jax.tree.map(
            lambda u, g: _tree.cast_like(u, g) if _tree.is_inexact(g) else g, out, updates
        )
        return out, SophiaState(count=count, mu=mu, nu=nu, hessian_fn_state=hessian_state)

    # The estimator differentiates a function of the params' tree (obj_fn, logits_fn).
    return transformation(init_fn, update_fn, per_leaf="scale_by_sophia", inner=[estimator])
