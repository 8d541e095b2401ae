"""PSGD-Kron: a Kronecker-factored preconditioner fitted by Li's PSGD criterion.

Each leaf of shape ``(d_1, ..., d_n)`` carries one factor ``Q_i`` per axis: an upper
triangular ``d_i x d_i`` matrix, or a diagonal (a vector) for the axes that
:func:`scale_by_kron`'s size rules send to the memory-saving form. The preconditioner is
``P = Q^T Q`` with ``Q = Q_1 (x) ... (x) Q_n`` applied axis by axis; a scalar leaf has a
single scalar factor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _sharding, _tree
from gradxform._base import GradientTransformation, transformation
from gradxform._transforms import preconditioners as pc
from gradxform._transforms.gradient import _typed_key
from gradxform._transforms.psgd_factors import (
    balance,
    capped_direction,
    diagonal_axes,
    fit_factors,
    init_factors,
)

MEMORY_SAVE_MODES = (None, "one_diag", "smart_one_diag", "all_diag")


class KronState(NamedTuple):
    """The state of :func:`scale_by_kron`.

    ``count`` counts the updates; ``mu`` is the momentum; ``Qs`` holds, per leaf, the tuple
    of its factors (a matrix for a triangular axis, a vector for a diagonal one, one scalar
    for a scalar leaf, none for an integer or empty leaf); ``update_counter`` counts the
    updates since the preconditioner was last fitted; ``key`` is the raw ``uint32`` data of
    the PRNG key of the next probe draw; ``failures`` counts the leaf fits that kept the
    leaf's previous factors because the new ones were not finite (uint32, saturating; not a
    step counter).
    """

    count: chex.Array
    mu: chex.ArrayTree
    Qs: chex.ArrayTree
    update_counter: chex.Array
    key: chex.Array
    failures: chex.Array


def precond_update_prob_schedule(
    max_prob: float = 1.0, min_prob: float = 0.03, decay: float = 0.001, flat_start: int = 500
) -> Callable[[Any], chex.Array]:
    """The probability of fitting the preconditioner at step ``n`` (``n = 0`` first)::

        p(n) = clip(max_prob * exp(-decay * (n - flat_start)), min_prob, max_prob)

    flat at ``max_prob`` for ``flat_start`` steps, then an exponential anneal down to
    ``min_prob`` (Li's schedule in the Kron implementations: with the defaults the
    preconditioner is fitted at every step for 500 steps and about every 33rd step
    from step 4000). :func:`scale_by_kron` turns the probability into a deterministic
    frequency: it fits when the steps since the last fit reach ``1 / p(n)``.

    Args:
      max_prob: the initial probability, in ``(0, 1]``.
      min_prob: the floor, in ``(0, max_prob]``.
      decay: the non-negative rate of the anneal.
      flat_start: the number of steps (an int >= 0) before the anneal starts.

    Example:
      >>> import gradxform as gx
      >>> p = gx.precond_update_prob_schedule(flat_start=10, decay=0.1)
      >>> [round(float(p(n)), 3) for n in (0, 10, 20, 100)]
      [1.0, 1.0, 0.368, 0.03]
    """
    _checks.number("max_prob", max_prob, low=0.0, high=1.0, low_open=True, allow_schedule=False)
    _checks.number(
        "min_prob", min_prob, low=0.0, high=float(max_prob), low_open=True, allow_schedule=False
    )
    _checks.non_negative("decay", decay, allow_schedule=False)
    _checks.integer("flat_start", flat_start, low=0)

    def schedule(n: Any) -> chex.Array:
        n = jnp.asarray(n).astype(jnp.float32)
        p = max_prob * jnp.exp(-jnp.float32(decay) * (n - jnp.float32(flat_start)))
        return jnp.clip(p, jnp.float32(min_prob), jnp.float32(max_prob))

    return schedule


_DEFAULT_SCHEDULE = precond_update_prob_schedule()


def _scalar(x: Any) -> chex.Array:
    """A hyperparameter as a step argument, in the default float dtype (float32, float64
    under x64) whether it was given as a Python number or an array (``inject_hyperparams``):
    one compiled step serves both."""
    return jnp.asarray(x, jnp.result_type(float))


@jax.jit
def _leaf_step(m, h, factors, do_fit, step_key, index, lr):
    """One leaf's step: its factors fitted (inside ``lax.cond``) to ``h`` and the probe
    ``normal(fold_in(step_key, index))``, then the capped direction ``P m``; and whether the
    fit failed (its factors, in their stored dtype, not all finite: the previous factors are
    kept). Compiled once per leaf shape and dtypes, also when called outside ``jit``."""
    work = _tree.promote(m.dtype, h.dtype, *(f.dtype for f in factors))

    def fit(fs):
        v = jax.random.normal(jax.random.fold_in(step_key, index), h.shape, jnp.float32)
        fw = balance(tuple(_sharding.replicated(f).astype(work) for f in fs))
        new = fit_factors(fw, h.astype(work), v.astype(work), lr.astype(work))
        pairs = zip(new, fs, strict=True)
        new = tuple(_sharding.sharded_like(n.astype(f.dtype), f) for n, f in pairs)
        ok = _tree.all_finite(new)
        return _tree.select_tree(ok, new, fs), ~ok

    factors, failed = jax.lax.cond(do_fit, fit, lambda fs: (fs, jnp.zeros([], jnp.bool_)), factors)
    fw = tuple(_sharding.replicated(f).astype(work) for f in factors)
    pg = capped_direction(fw, _sharding.replicated(m.astype(work)))
    return pg, factors, failed


def _kron_step(updates, state, b1, lr, prob, *, schedule, into_momentum, impl):
    """One step of :func:`scale_by_kron`."""
    p = jnp.asarray(prob if schedule is None else schedule(state.count), jnp.float32)
    ticks = _tree.safe_increment(state.update_counter)
    do_fit = (p > 0) & (ticks.astype(jnp.float32) >= 1 / jnp.where(p > 0, p, 1))
    next_key, step_key = jax.random.split(jax.random.wrap_key_data(state.key, impl=impl))
    count = _tree.safe_increment(state.count)
    mu = _tree.update_moment(state.mu, updates, b1, 1)
    mu_hat = _tree.bias_correction(mu, b1, count)

    leaves, treedef = jax.tree.flatten(updates)
    hats = jax.tree.leaves(mu_hat)
    qs = treedef.flatten_up_to(state.Qs)  # type: ignore[attr-defined]
    out, new_qs = [], []
    failed = jnp.zeros([], jnp.uint32)
    for i, (g, m, fs) in enumerate(zip(leaves, hats, qs, strict=True)):
        if not fs:
            out.append(g)
            new_qs.append(fs)
            continue
        h = _sharding.replicated(_tree.to_compute(m if into_momentum else g))
        pg, fs, leaf_failed = _leaf_step(m, h, fs, do_fit, step_key, jnp.int32(i), lr)
        failed = failed + leaf_failed.astype(jnp.uint32)
        out.append(_tree.cast_like(_sharding.sharded_like(pg, g), g))
        new_qs.append(fs)
    new_state = KronState(
        count=count,
        mu=mu,
        Qs=jax.tree.unflatten(treedef, new_qs),
        update_counter=jnp.where(do_fit, jnp.int32(0), ticks),
        key=jax.random.key_data(next_key),
        failures=pc.count_failures(state.failures, failed),
    )
    return jax.tree.unflatten(treedef, out), new_state


# ------------------------------------------------------------------ scale_by_kron


def scale_by_kron(
    b1: float = 0.9,
    preconditioner_update_probability: Any = None,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
    momentum_into_precond_update: bool = True,
    preconditioner_lr: float = 0.1,
    preconditioner_init_scale: float = 1.0,
    mu_dtype: Any | None = None,
    precond_dtype: Any | None = None,
    *,
    key: jax.Array | int = 0,
) -> GradientTransformation:
    """PSGD-Kron's direction (Li 2015, arXiv:1512.04202; Li 2022, arXiv:2211.04422)::

        m_t = b1 m_{t-1} + (1 - b1) g_t,      M_t = m_t / (1 - b1**t)
        if fit at t:  Q <- fit(Q, v_t, h_t),  h_t = M_t  (g_t if not momentum_into_precond_update)
        u_t = P M_t * min(1, 1.1 / (rms(P M_t) + 1e-6)),     P = Q^T Q

    per leaf, ``Q = Q_1 (x) ... (x) Q_n`` one factor per axis. The fit is one step of the
    PSGD criterion ``E[h^T P h + v^T P^{-1} v]`` on the group of ``Q`` (its minimizer is
    ``P = (E[h h^T])^{-1/2}``), for the probe ``v_t ~ N(0, I)``::

        A = Q h,  B = Q^{-T} v,   per axis i:  G_i = A_(i) A_(i)^T,  H_i = B_(i) B_(i)^T
        Q_i <- Q_i - lr * triu(G_i - H_i) Q_i / ||G_i + H_i||      (triangular factor)
        q_i <- q_i - lr * (G_i - H_i) q_i / max|G_i + H_i|         (diagonal factor)

    ``X_(i)`` the mode-``i`` unfolding, ``||S||`` the one-power-step lower bound
    ``||S S s_j|| / ||S s_j||`` of the spectral norm (``s_j`` the largest column). Before a
    fit the factors are rescaled to the geometric mean of their largest entries (``Q``
    unchanged). An axis gets a diagonal factor when its size is 1 or above
    ``max_size_triangular``, when the leaf has fewer than ``min_ndim_triangular`` axes, or
    by ``memory_save_mode`` (``"one_diag"``: the largest axis, the last of equals;
    ``"smart_one_diag"``: the largest if strictly larger than the others; ``"all_diag"``);
    each factor starts at ``s**(1/n) I``, ``s = preconditioner_init_scale``.

    The fit runs inside ``lax.cond`` (a skipped fit does no work, the step compiles once)
    when the steps since the last fit reach ``1 / p``, ``p`` the update probability at the
    step (``None``: :func:`precond_update_prob_schedule`'s default). The probes come from
    the state's key: at every step it is split into the next key and a step key, and leaf
    ``i`` (in the order of ``jax.tree.leaves``) draws
    ``jax.random.normal(jax.random.fold_in(step_key, i), shape, float32)``. The factors
    are stored in ``precond_dtype`` (default: the parameter's); the fit, ``P M_t`` and the
    cap run in at least float32. A fit whose new factors for a leaf are not all finite (in
    their stored dtype) keeps that leaf's previous factors and counts one in the state's
    ``failures``. The direction is computed with ``m`` and the factors scaled by powers of
    two (exact), so finite factors and a finite ``M_t`` give a finite direction even where
    ``P M_t`` overflows (it is then capped to RMS 1.1). Complex leaves are refused; integer
    and empty leaves pass through.

    Args:
      b1: momentum decay in ``[0, 1)``.
      preconditioner_update_probability: a probability in ``[0, 1]`` or a schedule of
        the step ``n`` (0 first) returning one; ``None``: the default anneal.
      max_size_triangular: axes longer than this (an int >= 0) get a diagonal factor.
      min_ndim_triangular: leaves with fewer axes (an int >= 0) get diagonal factors only.
      memory_save_mode: ``None``, ``"one_diag"``, ``"smart_one_diag"`` or ``"all_diag"``.
      momentum_into_precond_update: fit ``Q`` to the momentum (else to the gradient).
      preconditioner_lr: the fit's step size, in ``(0, 1)``.
      preconditioner_init_scale: positive ``s``: each of ``n`` factors starts at
        ``s**(1/n) I``.
      mu_dtype: dtype of the momentum; default: each parameter's dtype.
      precond_dtype: dtype of the stored factors; default: each parameter's dtype.
      key: a typed PRNG key (``jax.random.key(0)``) or a non-negative int seed.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_kron()
      >>> g = jnp.array([[1.0, 0.0], [0.0, 0.5]])
      >>> u, state = tx.update(g, tx.init(g))
      >>> [f.shape for f in state.Qs]  # an upper triangular factor per axis
      [(2, 2), (2, 2)]
      >>> bool(jnp.sqrt(jnp.mean(u * u)) <= 1.1)  # the step's RMS is capped at 1.1
      True
    """
    _checks.decay_rate("b1", b1, allow_schedule=False)
    prob = preconditioner_update_probability
    schedule = _DEFAULT_SCHEDULE if prob is None else prob if callable(prob) else None
    if schedule is None:
        _checks.number(
            "preconditioner_update_probability", prob, low=0.0, high=1.0, allow_schedule=False
        )
    _checks.integer("max_size_triangular", max_size_triangular, low=0)
    _checks.integer("min_ndim_triangular", min_ndim_triangular, low=0)
    _checks.one_of("memory_save_mode", memory_save_mode, MEMORY_SAVE_MODES)
    _checks.boolean("momentum_into_precond_update", momentum_into_precond_update)
    _checks.number(
        "preconditioner_lr",
        preconditioner_lr,
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
        allow_schedule=False,
    )
    _checks.positive("preconditioner_init_scale", preconditioner_init_scale, allow_schedule=False)
    real = "PSGD-Kron is defined for real params"
    mu_dtype = _checks.canonical_dtype(mu_dtype, "mu_dtype", real_only=real)
    precond_dtype = _checks.canonical_dtype(precond_dtype, "precond_dtype", real_only=real)
    typed = _typed_key(key)
    impl = jax.random.key_impl(typed)

    def active(x: Any) -> bool:
        return _tree.is_inexact(x) and int(np.prod(jnp.shape(x))) > 0

    def leaf_factors(x: Any) -> tuple[chex.Array, ...]:
        if not active(x):
            return ()
        shape = tuple(jnp.shape(x))
        diag = diagonal_axes(shape, max_size_triangular, min_ndim_triangular, memory_save_mode)
        dtype = precond_dtype if precond_dtype is not None else _tree.dtype_of(x)
        return init_factors(x, diag, preconditioner_init_scale, dtype)

    def init_fn(params):
        _checks.check_real(params, what="params", reason="PSGD-Kron is defined for real params")
        leaves, treedef = jax.tree.flatten(params)
        return KronState(
            count=_tree.zero_count(),
            mu=_tree.zeros_like(params, mu_dtype),
            Qs=jax.tree.unflatten(treedef, [leaf_factors(x) for x in leaves]),
            update_counter=_tree.zero_count(),
            key=jax.random.key_data(typed),
            failures=jnp.zeros([], jnp.uint32),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_updates(updates, state.mu, "scale_by_kron")
        return _kron_step(
            updates,
            state,
            _scalar(b1),
            _scalar(preconditioner_lr),
            _scalar(0.0 if schedule is not None else prob),
            schedule=schedule,
            into_momentum=momentum_into_precond_update,
            impl=impl,
        )

    return transformation(init_fn, update_fn, per_leaf="scale_by_kron")
