"""FTRL-Proximal (McMahan et al., 2013)."""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, ScalarOrSchedule, transformation

_REAL_ONLY = "FTRL's l1 threshold and per-coordinate proximal step are defined for real weights"


class ScaleByFtrlState(NamedTuple):
    """Step count, accumulated squared gradients ``n`` and the clipped linear term.

    ``z_clipped`` is ``clip(z, -l1, l1)``: the rest of the linear term ``z`` is
    implied by the weights, ``z_t = z_clipped_t - q_t * w_{t+1}``.
    """

    count: chex.Array
    n: chex.ArrayTree
    z_clipped: chex.ArrayTree


def scale_by_ftrl(
    learning_rate: ScalarOrSchedule,
    learning_rate_power: chex.Numeric = -0.5,
    initial_accumulator_value: chex.Numeric = 0.1,
    l1: chex.Numeric = 0.0,
    l2: chex.Numeric = 0.0,
    l2_shrinkage: chex.Numeric = 0.0,
    beta: chex.Numeric = 0.0,
    *,
    proximal_center: str = "origin",
    accumulator_dtype: Any | None = None,
) -> GradientTransformation:
    """FTRL-Proximal, per coordinate (McMahan et al., 2013, "Ad Click Prediction: a View from
    the Trenches", Algorithm 1), generalised to any ``learning_rate_power`` as in keras.

    With ``p = -learning_rate_power`` (1/2 in the paper) and ``alpha_t`` the
    learning rate::

        g~_t    = g_t + 2 * l2_shrinkage * w_t
        n_t     = n_{t-1} + g_t**2                         (n_0 = initial_accumulator_value)
        sigma_t = (n_t**p - n_{t-1}**p) / alpha_t
        z_t     = z_{t-1} + g~_t - sigma_t * w_t           (z_0 = 0)
        q_t     = (beta + n_t**p) / alpha_t + 2 * l2
        w_{t+1} = (clip(z_t, -l1, l1) - z_t) / q_t
                = 0 if |z_t| <= l1, else -(z_t - l1 * sign(z_t)) / q_t
        u_t     = w_{t+1} - w_t

    Real parameters only: complex parameters or gradients raise a ``TypeError``
    naming the key path.

    Weights whose accumulated gradient ``|z|`` stays within ``l1`` are set to
    exactly zero by :func:`gradxform.apply_updates`. As in the paper (and
    keras), the initial proximal term ``(beta + n_0**p) / (2 alpha) ||w||**2``
    is centered at the origin (``proximal_center="origin"``), so the first
    step pulls non-zero starting weights toward 0 even for a zero gradient.
    ``proximal_center="params"`` centers it at the weights given to the first
    update (``z_0 = -(beta + n_0**p) / alpha_1 * w_1``): a zero gradient then
    leaves the weights where they are (if ``l1 = l2 = 0``).

    Implementation: the state keeps ``clip(z_t)`` instead of ``z_t`` and
    recovers the rest from the weights, so that the update is computed as
    ``(clip(z_t) - a_t) / q_t`` with ``a_t = z_t + q_t w_t = clip(z_{t-1}) +
    g~_t`` (for a constant rate) instead of as a difference of two nearly
    equal weights. It equals the formulation above whenever the weights are
    the previous iterates (the normal use), and is exact to rounding.

    Args:
      learning_rate: positive ``alpha``, a float, JAX scalar or schedule.
      learning_rate_power: non-positive power (``-p``); -0.5 is the paper's.
      initial_accumulator_value: non-negative ``n_0``.
      l1: non-negative L1 strength (sparsity).
      l2: non-negative L2 strength (keras' ``l2_regularization_strength``).
      l2_shrinkage: non-negative strength of the L2 penalty that is added to
        the gradient but not to the accumulator.
      beta: non-negative ``beta`` of the per-coordinate rate ``alpha / (beta + sqrt(n))``.
      proximal_center: ``"origin"`` or ``"params"`` (see above).
      accumulator_dtype: dtype of ``n`` and ``clip(z)``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> from gradxform import scale_by_ftrl
      >>> tx = scale_by_ftrl(1.0, initial_accumulator_value=0.0, l1=0.5)
      >>> w = jnp.zeros(2)
      >>> u, _ = tx.update(jnp.array([0.3, 2.0]), tx.init(w), w)
      >>> gx.apply_updates(w, u)  # |0.3| <= l1: exactly 0; -(2 - 0.5) / 2
      Array([ 0.  , -0.75], dtype=float32)
    """
    _checks.positive("learning_rate", learning_rate)
    _checks.number("learning_rate_power", learning_rate_power, high=0.0, allow_schedule=False)
    _checks.non_negative(
        "initial_accumulator_value", initial_accumulator_value, allow_schedule=False
    )
    for name, value in (("l1", l1), ("l2", l2), ("l2_shrinkage", l2_shrinkage), ("beta", beta)):
        _checks.non_negative(name, value, allow_schedule=False)
    _checks.one_of("proximal_center", proximal_center, ("origin", "params"))
    accumulator_dtype = _checks.canonical_dtype(
        accumulator_dtype, "accumulator_dtype", real_only=_REAL_ONLY
    )

    def init_fn(params):
        _checks.check_real(params, what="scale_by_ftrl params", reason=_REAL_ONLY)
        return ScaleByFtrlState(
            count=_tree.zero_count(),
            n=_tree.full_like(params, initial_accumulator_value, accumulator_dtype),
            z_clipped=_tree.zeros_like(params, accumulator_dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "scale_by_ftrl")
        _checks.check_real(params, what="scale_by_ftrl params", reason=_REAL_ONLY)
        _checks.check_real(updates, what="scale_by_ftrl updates", reason=_REAL_ONLY)
        _checks.check_updates(updates, state.n, "scale_by_ftrl")
        first = state.count == 0
        lr = _tree.value_at(learning_rate, state.count)
        lr_before = (
            _tree.value_at(learning_rate, jnp.maximum(state.count - 1, 0))
            if callable(learning_rate)
            else lr
        )
        n_new = _tree.lincomb(1.0, state.n, 1.0, updates, 2)

        def root(n):
            # The paper's power -1/2 as an exact square root; selected, not branched on,
            # so learning_rate_power may be a JAX scalar (inject_hyperparams keeps it in
            # the state) and a float and a scalar give bit-identical results.
            power = jnp.asarray(learning_rate_power).astype(n.dtype)
            return jnp.where(power == -0.5, jnp.sqrt(n), n ** (-power))

        def leaf(g, w, n_old, n, c):
            dtype = _tree.promote(
                _tree.compute_dtype(n.dtype),
                _tree.compute_dtype(w.dtype),
                _tree.compute_dtype(g.dtype),
            )
            g, w = g.astype(dtype), w.astype(dtype)
            n_old, n, c = n_old.astype(dtype), n.astype(dtype), c.astype(dtype)
            alpha = jnp.asarray(lr).astype(dtype)
            alpha_before = jnp.asarray(lr_before).astype(dtype)
            b, lam = jnp.asarray(beta).astype(dtype), jnp.asarray(l1).astype(dtype)
            two_l2 = 2 * jnp.asarray(l2).astype(dtype)
            shrunk = g + 2 * jnp.asarray(l2_shrinkage).astype(dtype) * w
            prox_old = b + root(n_old)
            if proximal_center == "origin":
                start = shrunk + (prox_old / alpha + two_l2) * w
            else:
                start = shrunk + two_l2 * w
            later = c + shrunk
            if callable(learning_rate):
                later = later + prox_old * (1 / alpha - 1 / alpha_before) * w
            a = jnp.where(first, start, later)  # z_t + q_t w_t
            q = (b + root(n)) / alpha + two_l2
            z = a - q * w
            inside = jnp.abs(z) <= lam
            edge = lam * jnp.sign(z)
            u = jnp.where(inside, -w, (edge - a) / q)
            return u, jnp.where(inside, z, edge)

        def leaf_in_dtypes(g, w, n_old, n, c):
            if not _tree.is_inexact(g):
                return g, c
            u, c_new = leaf(g, w, n_old, n, c)
            return u.astype(g.dtype), c_new.astype(c.dtype)

        u, c = _tree.map_unzip(leaf_in_dtypes, updates, params, state.n, n_new, state.z_clipped)
        return u, ScaleByFtrlState(count=_tree.safe_increment(state.count), n=n_new, z_clipped=c)

    return transformation(init_fn, update_fn)
