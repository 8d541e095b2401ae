"""Transformations that need a statistic of each leaf: Adafactor's factored moments,
the parameter-scale step and the layer-wise trust ratio (LARS, LAMB).

Under :func:`gradxform.flat` these run on the per-leaf tree, never on a
concatenated buffer. Adafactor's update clipping is :func:`gradxform.clip_by_block_rms`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import (
    EmptyState,
    GradientTransformation,
    init_empty_state,
    transformation,
)


class FactoredState(NamedTuple):
    """Step count and the second-moment statistics of :func:`scale_by_factored_rms`.

    ``v_row``, ``v_col`` and ``v`` each have the structure of the params. For a
    factored parameter (shape ``S``, factored over its two longest axes
    ``d1 < d0`` by length), ``v_row`` has ``S`` without axis ``d0`` and ``v_col``
    ``S`` without axis ``d1``, and ``v`` holds a placeholder of shape ``(1,)``;
    for any other parameter ``v`` has its shape and ``v_row`` and ``v_col`` are
    the placeholders. The layout is optax's.
    """

    count: chex.Array
    v_row: chex.ArrayTree
    v_col: chex.ArrayTree
    v: chex.ArrayTree


def _decay_rate_pow(i: chex.Numeric, exponent: chex.Numeric = 0.8) -> chex.Array:
    """Adafactor's decay ``1 - (i + 1)**(-exponent)`` at step ``i`` (0 at the first update).

    ``i + 1`` is formed in float32, so a step count saturated at ``2**31 - 1`` does not wrap.
    """
    t = jnp.asarray(i, jnp.float32) + 1
    return 1.0 - t ** (-exponent)


def _factored_dims(
    shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int
) -> tuple[int, int] | None:
    """The axes ``(d1, d0)`` to factor over: the second longest and the longest; or None.

    Ties are broken as optax breaks them (``numpy.argsort`` of the shape).
    """
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


def _without(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return shape[:axis] + shape[axis + 1 :]


def _zeros_without(p: Any, axis: int, dtype: Any) -> chex.Array:
    """Zeros shaped (and sharded) like ``p`` without ``axis``, as a reduction over it leaves."""
    return jnp.zeros_like(jax.eval_shape(lambda x: jnp.sum(x, axis=axis), p), dtype=dtype)


def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: chex.Numeric = 0.8,
    step_offset: chex.Numeric = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: chex.Numeric = 1e-30,
    decay_rate_fn: Callable[[chex.Numeric, chex.Numeric], chex.Numeric] = _decay_rate_pow,
    *,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """Divide by a factored estimate of the root mean square gradient (Shazeer & Stern, 2018,
    "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", Algorithms 4 and 5).

    ::

        b_t = decay_rate_fn(t - step_offset, decay_rate)   (default: 1 - (t + 1)**(-decay_rate),
                                                            t = 0 at the first update)
        G2  = g_t**2 + epsilon
        factored leaves (two axes of length >= min_dim_size_to_factor; the two
        longest, d1 and d0, are used):
          R_t = b_t R_{t-1} + (1 - b_t) mean(G2, axis=d0)       (row averages)
          C_t = b_t C_{t-1} + (1 - b_t) mean(G2, axis=d1)       (column averages)
          V_t = R_t C_t / mean(R_t over d1)
        other leaves:
          V_t = b_t V_{t-1} + (1 - b_t) G2
        u_t = g_t / sqrt(V_t)

    The factored estimate needs ``n + m`` numbers for an ``n x m`` matrix
    instead of ``n m``. The arguments, the choice of axes and the state
    (:class:`FactoredState`) are optax's; the averages are formed in at least
    float32 and the update divides by the unrounded estimate. ``params`` are
    not needed. Real parameters only: a complex gradient raises a ``TypeError``
    naming its key path.

    Args:
      factored: whether to factor at all.
      decay_rate: non-negative exponent of the decay schedule (the paper's 0.8).
      step_offset: subtracted from the step count before the decay is computed
        (the first step of a fine-tuning phase, say).
      min_dim_size_to_factor: factor only leaves whose second longest axis is at
        least this long (at least 1).
      epsilon: non-negative term added to the squared gradient (``epsilon_1``).
      decay_rate_fn: ``(step, decay_rate) -> b_t``; the default is Adafactor's power schedule.
      nu_dtype: dtype of the averages; default: each parameter's (real) dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_factored_rms
      >>> tx = scale_by_factored_rms(epsilon=0.0, min_dim_size_to_factor=1)
      >>> g = jnp.array([[1.0, 1.0], [2.0, 2.0]])
      >>> tx.update(g, tx.init(g))[0]  # R = (1, 4), C = (2.5, 2.5): V = R C / 2.5 = R
      Array([[1., 1.],
             [1., 1.]], dtype=float32)
    """
    if not isinstance(factored, bool | np.bool_):
        raise TypeError(f"factored={factored!r} must be a bool")
    _checks.non_negative("decay_rate", decay_rate, allow_schedule=False)
    _checks.finite("step_offset", step_offset, allow_schedule=False)
    _checks.integer("min_dim_size_to_factor", min_dim_size_to_factor, low=1)
    _checks.non_negative("epsilon", epsilon, allow_schedule=False)
    if not callable(decay_rate_fn):
        raise TypeError(
            f"decay_rate_fn={decay_rate_fn!r} must be callable: (step, decay_rate) -> b_t"
        )
    nu_dtype = _checks.canonical_dtype(nu_dtype, "nu_dtype")

    def stat_dtype(p):
        own = jnp.dtype(p.dtype)
        if not _tree.is_inexact(p) or nu_dtype is None:
            return own
        return nu_dtype

    def leaf_state(p):
        shape = tuple(jnp.shape(p))
        dtype = stat_dtype(p)
        dims = (
            _factored_dims(shape, factored, min_dim_size_to_factor) if _tree.is_inexact(p) else None
        )
        if dims is not None:
            d1, d0 = dims
            return _zeros_without(p, d0, dtype), _zeros_without(p, d1, dtype), _placeholder(dtype)
        # zeros_like: the moment is laid out (and, under explicit sharding, sharded) as p
        return _placeholder(dtype), _placeholder(dtype), jnp.zeros_like(p, dtype=dtype)

    def _placeholder(dtype):
        # one array per placeholder: a state leaf shared by two fields could not be donated
        return jnp.zeros((1,), dtype)

    def init_fn(params):
        v_row, v_col, v = _unzip(3, leaf_state, params)
        return FactoredState(count=_tree.zero_count(), v_row=v_row, v_col=v_col, v=v)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _check_factored_layout(updates, state, factored, min_dim_size_to_factor)
        step = state.count - jnp.asarray(step_offset).astype(jnp.int32)
        if decay_rate_fn is _decay_rate_pow:
            # The newest gradient's weight t**-c formed directly: 1 - b_t would cancel
            # in float32 once t**-c is near 2**-24 (late in training).
            weight = (jnp.asarray(step, jnp.float32) + 1) ** -jnp.asarray(decay_rate, jnp.float32)
            decay = 1 - weight
        else:
            decay = jnp.asarray(decay_rate_fn(step, decay_rate), jnp.float32)
            weight = 1 - decay

        def leaf(g, r, c, v):
            if not _tree.is_inexact(g):
                return g, r, c, v
            shape = tuple(jnp.shape(g))
            g32 = _tree.to_compute(g)
            g2 = _tree.abs_sq(g32) + jnp.asarray(epsilon).astype(jnp.finfo(g32.dtype).dtype)
            dims = _factored_dims(shape, factored, min_dim_size_to_factor)
            if dims is not None:
                d1, d0 = dims
                new_r = _tree.lincomb(decay, _tree.to_compute(r), weight, jnp.mean(g2, axis=d0))
                new_c = _tree.lincomb(decay, _tree.to_compute(c), weight, jnp.mean(g2, axis=d1))
                dtype = _tree.promote(new_r.dtype, new_c.dtype, g2.dtype)
                new_r, new_c = new_r.astype(dtype), new_c.astype(dtype)
                reduced_d1 = d1 - 1 if d1 > d0 else d1
                row = new_r / jnp.mean(new_r, axis=reduced_d1, keepdims=True)
                v_hat = jnp.expand_dims(row, d0) * jnp.expand_dims(new_c, d1)
                u = g32.astype(_tree.promote(dtype, g32.dtype)) / jnp.sqrt(v_hat)
                return u.astype(g.dtype), new_r.astype(r.dtype), new_c.astype(c.dtype), v
            full = _tree.lincomb(decay, _tree.to_compute(v), weight, g2)
            u = g32.astype(_tree.promote(full.dtype, g32.dtype)) / jnp.sqrt(full)
            return u.astype(g.dtype), r, c, full.astype(v.dtype)

        u, v_row, v_col, v = _unzip(4, leaf, updates, state.v_row, state.v_col, state.v)
        count = _tree.safe_increment(state.count)
        return u, FactoredState(count=count, v_row=v_row, v_col=v_col, v=v)

    return transformation(init_fn, update_fn, per_leaf="scale_by_factored_rms")


def _unzip(n: int, f: Callable[..., tuple[Any, ...]], tree: Any, *rest: Any) -> tuple[Any, ...]:
    """Map ``f`` (returning ``n`` values) over the leaves of ``tree``: ``n`` trees like ``tree``.

    The other trees are flattened up to ``tree``'s structure; a tree without
    leaves gives ``n`` copies of its (empty) structure.
    """
    treedef: Any = jax.tree.structure(tree)  # typed loosely: the stub lacks flatten_up_to
    columns = [treedef.flatten_up_to(t) for t in (tree, *rest)]
    results = [f(*leaves) for leaves in zip(*columns, strict=True)]
    return tuple(treedef.unflatten([r[i] for r in results]) for i in range(n))


def _check_factored_layout(
    updates: chex.ArrayTree, state: FactoredState, factored: bool, min_dim: int
) -> None:
    """The standard layout errors (naming the key path) for updates that do not fit the state."""
    against = "the params given to scale_by_factored_rms.init"
    if not _tree.same_structure(updates, state.v):
        _checks.check_same_layout(updates, state.v, what="updates", against=against)
    rows, cols, vs = (jax.tree.leaves(t) for t in (state.v_row, state.v_col, state.v))
    for (name, g), r, c, v in zip(_tree.leaf_paths(updates), rows, cols, vs, strict=True):
        shape = tuple(jnp.shape(g))
        if not _tree.is_inexact(v):  # an integer or boolean parameter: passed through
            expected: Any = (r.shape, c.shape, shape)
        else:
            dims = _factored_dims(shape, factored, min_dim)
            if dims is None:
                expected = ((1,), (1,), shape)
            else:
                expected = (_without(shape, dims[1]), _without(shape, dims[0]), (1,))
        if (tuple(r.shape), tuple(c.shape), tuple(v.shape)) != expected:
            raise ValueError(
                f"updates leaf '{name}' has shape {shape}, which does not fit the statistics "
                f"scale_by_factored_rms.init made for that parameter (v_row {tuple(r.shape)}, "
                f"v_col {tuple(c.shape)}, v {tuple(v.shape)}); gradxform never broadcasts"
            )
        if _tree.is_inexact(v) and not _tree.is_inexact(g):
            raise TypeError(
                f"updates leaf '{name}' has dtype {_tree.dtype_of(g)} but {against} is "
                f"floating point: a floating-point leaf needs a floating-point updates"
            )
    _checks.check_real(updates, what="updates")


def scale_by_param_block_rms(min_scale: chex.Numeric = 1e-3) -> GradientTransformation:
    """Multiply each leaf's update by the root mean square of its parameter (relative step size).

    ::

        u <- u * max(min_scale, RMS(theta))     per leaf (Shazeer & Stern, 2018, Alg. 4, epsilon_2)

    Args:
      min_scale: non-negative floor of the scale (``epsilon_2``).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_param_block_rms
      >>> tx = scale_by_param_block_rms()
      >>> p = jnp.array([3.0, 4.0, 0.0, 0.0])  # RMS = 2.5
      >>> tx.update(jnp.ones(4), tx.init(p), p)[0]
      Array([2.5, 2.5, 2.5, 2.5], dtype=float32)
    """
    _checks.non_negative("min_scale", min_scale, allow_schedule=False)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "scale_by_param_block_rms", allow_complex=False)

        def step(u, p):
            rms = _tree.leaf_rms(p)
            dtype = _tree.promote(rms.dtype, _tree.compute_dtype(u.dtype))
            factor = jnp.maximum(jnp.asarray(min_scale).astype(dtype), rms.astype(dtype))
            return (u.astype(dtype) * factor).astype(u.dtype)

        return _tree.map_inexact(step, updates, params), state

    return transformation(init_empty_state, update_fn, per_leaf="scale_by_param_block_rms")


def scale_by_param_block_norm(min_scale: chex.Numeric = 1e-3) -> GradientTransformation:
    """Multiply each leaf's update by the l2 norm of its parameter.

    ::

        u <- u * max(min_scale, ||theta||)     per leaf

    as optax's ``scale_by_param_block_norm`` (the norm is computed in at least float32).

    Args:
      min_scale: non-negative floor of the scale.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_param_block_norm
      >>> tx = scale_by_param_block_norm()
      >>> p = jnp.array([3.0, 4.0])
      >>> tx.update(jnp.ones(2), tx.init(p), p)[0]
      Array([5., 5.], dtype=float32)
    """
    _checks.non_negative("min_scale", min_scale, allow_schedule=False)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "scale_by_param_block_norm", allow_complex=False)

        def step(u, p):
            norm = _tree.leaf_norm(p)
            dtype = _tree.promote(norm.dtype, _tree.compute_dtype(u.dtype))
            factor = jnp.maximum(jnp.asarray(min_scale).astype(dtype), norm.astype(dtype))
            return (u.astype(dtype) * factor).astype(u.dtype)

        return _tree.map_inexact(step, updates, params), state

    return transformation(init_empty_state, update_fn, per_leaf="scale_by_param_block_norm")


ScaleByTrustRatioState = EmptyState
"""The state of :func:`scale_by_trust_ratio` (optax's name for it): an :class:`EmptyState`."""


def scale_by_trust_ratio(
    min_norm: chex.Numeric = 0.0,
    trust_coefficient: chex.Numeric = 1.0,
    eps: chex.Numeric = 0.0,
    *,
    mask: chex.ArrayTree | Callable[[Any], Any] | None = None,
) -> GradientTransformation:
    """Scale each leaf's update by the ratio of the parameter norm to the update norm.

    ::

        P = max(||theta||, min_norm),   U = max(||u||, min_norm)
        u <- u * trust_coefficient * P / (U + eps)

    per leaf ("layer"), with ratio 1 when ``P`` or ``U`` is zero (You et al.,
    2017, "Large Batch Training of Convolutional Networks" (LARS); You et al.,
    2020, "Large Batch Optimization for Deep Learning" (LAMB)). The norms are
    computed in at least float32; for complex leaves they are the norms of
    ``|theta|`` and ``|u|``, and the (real) ratio keeps the update's phase.

    Args:
      min_norm: non-negative floor of both norms (0: no floor).
      trust_coefficient: positive multiplier of the ratio (LARS' ``eta``).
      eps: non-negative term added to the update norm.
      mask: a tree of bools with the structure of the params (or a function of
        the params returning one); leaves marked ``False`` are left unscaled.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_trust_ratio
      >>> tx = scale_by_trust_ratio()
      >>> p = jnp.array([3.0, 4.0])
      >>> tx.update(jnp.array([0.0, 0.5]), tx.init(p), p)[0]  # 5 / 0.5 = 10
      Array([0., 5.], dtype=float32)
    """
    _checks.non_negative("min_norm", min_norm, allow_schedule=False)
    _checks.positive("trust_coefficient", trust_coefficient, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "scale_by_trust_ratio")
        on = _checks.resolve_mask(mask, params, "scale_by_trust_ratio")

        def step(u, p, active):
            if not active:
                return u
            p_norm, u_norm = _tree.leaf_norm(p), _tree.leaf_norm(u)
            dtype = _tree.promote(p_norm.dtype, u_norm.dtype)
            floor = jnp.asarray(min_norm).astype(dtype)
            p_norm = jnp.maximum(p_norm.astype(dtype), floor)
            u_norm = jnp.maximum(u_norm.astype(dtype), floor)
            ratio = (
                jnp.asarray(trust_coefficient).astype(dtype)
                * p_norm
                / (u_norm + jnp.asarray(eps).astype(dtype))
            )
            ratio = jnp.where((p_norm == 0) | (u_norm == 0), jnp.ones([], dtype), ratio)
            u32 = _tree.to_compute(u)  # a complex update keeps its phase: the ratio is real
            return (u32 * ratio.astype(u32.dtype)).astype(u.dtype)

        return _tree.map_inexact(step, updates, params, on), state

    return transformation(init_empty_state, update_fn, per_leaf="scale_by_trust_ratio")
