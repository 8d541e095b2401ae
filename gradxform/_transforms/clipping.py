"""Clipping: element-wise, by global norm, by block RMS, and unit-wise adaptive clipping.

The norm-based clips share one rule for non-finite input. When the norm that
decides the clip is not finite (a NaN or an infinity in the gradient, or a sum
of squares that overflows), no rescaling factor is meaningful: multiplying by
``max_norm / inf = 0`` would turn an infinite entry into NaN and a NaN norm
would turn *every* entry into NaN without any sign of where it came from.
``on_nonfinite`` says what happens instead, for the affected block only (the
whole tree for the global norm, one leaf for the block RMS, one unit for the
adaptive clip):

* ``"zero"`` (default, the safe behaviour): the block's updates are exactly
  zero, so the parameters do not move. Stateful transformations later in a
  chain still see a zero gradient; wrap the whole optimizer in
  :func:`gradxform.apply_if_finite` to skip the step entirely.
* ``"nan"``: the block's updates are all NaN, deliberately and visibly, so a
  training loop that watches for NaN (or an enclosing ``apply_if_finite``)
  stops on it.
"""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import EmptyState, GradientTransformation, from_function

ClipState = EmptyState
"""The state of :func:`clip` (optax's name for it): an :class:`EmptyState`."""
ClipByGlobalNormState = EmptyState
"""The state of :func:`clip_by_global_norm` (optax's name for it): an :class:`EmptyState`."""
AdaptiveGradClipState = EmptyState
"""The state of :func:`adaptive_grad_clip` (optax's name for it): an :class:`EmptyState`."""

_NONFINITE = ("zero", "nan")


def _rescaled(
    x: chex.Array, norm: chex.Array, limit: chex.Numeric, on_nonfinite: str
) -> chex.Array:
    """``x * min(1, limit / norm)`` in at least float32, with the non-finite rule above."""
    dtype = _tree.compute_dtype(x.dtype)
    real = jnp.finfo(dtype).dtype
    norm = jnp.asarray(norm).astype(real)
    lim = jnp.asarray(limit).astype(real)
    ok = jnp.isfinite(norm)
    safe_norm = jnp.where(ok & (norm > 0), norm, jnp.ones([], real))
    factor = jnp.where(norm > lim, lim / safe_norm, jnp.ones([], real))
    y = x.astype(dtype) * factor.astype(dtype)
    fill = jnp.zeros([], dtype) if on_nonfinite == "zero" else jnp.full([], jnp.nan, dtype)
    return jnp.where(ok, y, fill).astype(x.dtype)


def clip(max_delta: chex.Numeric) -> GradientTransformation:
    """Clip every update element-wise to ``[-max_delta, max_delta]``.

    ``u <- min(max(u, -max_delta), max_delta)``. An infinite entry becomes
    ``+-max_delta``; a NaN entry stays NaN (there is no sensible value to clip
    it to). Real leaves only; integer leaves pass through.

    Args:
      max_delta: non-negative bound.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import clip
      >>> tx = clip(1.0)
      >>> tx.update(jnp.array([-3.0, 0.5, 2.0]), tx.init(jnp.zeros(3)))[0]
      Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    _checks.non_negative("max_delta", max_delta, allow_schedule=False)

    def f(updates, params):
        del params

        def one(u):
            d = jnp.asarray(max_delta).astype(_tree.compute_dtype(u.dtype))
            return jnp.clip(u.astype(d.dtype), -d, d).astype(u.dtype)

        return _tree.map_inexact(one, updates)

    return from_function(f)


def clip_by_global_norm(
    max_norm: chex.Numeric, *, on_nonfinite: str = "zero"
) -> GradientTransformation:
    """Rescale all updates together so that their global l2 norm is at most ``max_norm``.

    ::

        n = sqrt(sum_i ||u_i||**2)                   (over every floating leaf)
        u_i <- u_i * max_norm / n     if n > max_norm,   else unchanged

    (Pascanu, Mikolov & Bengio, 2013, "On the difficulty of training recurrent
    neural networks"). The norm and the rescaling are computed in at least
    float32. If ``n`` is not finite, every update is zero (``on_nonfinite=
    "zero"``, the default) or NaN (``"nan"``); see the module docstring.

    Args:
      max_norm: non-negative bound on the global norm.
      on_nonfinite: ``"zero"`` or ``"nan"``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import clip_by_global_norm
      >>> tx = clip_by_global_norm(1.0)
      >>> g = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}  # norm 5
      >>> tx.update(g, tx.init(g))[0]
      {'a': Array([0.6], dtype=float32), 'b': Array([0.8], dtype=float32)}
    """
    _checks.non_negative("max_norm", max_norm, allow_schedule=False)
    _checks.one_of("on_nonfinite", on_nonfinite, _NONFINITE)

    def f(updates, params):
        del params
        norm = _tree.global_norm(updates)
        return _tree.map_inexact(lambda u: _rescaled(u, norm, max_norm, on_nonfinite), updates)

    return from_function(f)


def clip_by_block_rms(
    threshold: chex.Numeric, *, on_nonfinite: str = "zero"
) -> GradientTransformation:
    """Rescale each leaf (block) so that its root mean square is at most ``threshold``.

    ::

        r = sqrt(mean(u**2))                 (per leaf)
        u <- u * threshold / r   if r > threshold,   else unchanged

    A leaf whose RMS is not finite becomes zero (``on_nonfinite="zero"``) or
    NaN (``"nan"``); the other leaves are unaffected.

    Args:
      threshold: non-negative bound on each leaf's RMS.
      on_nonfinite: ``"zero"`` or ``"nan"``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import clip_by_block_rms
      >>> tx = clip_by_block_rms(1.0)
      >>> tx.update(jnp.array([2.0, -2.0]), tx.init(jnp.zeros(2)))[0]  # rms 2
      Array([ 1., -1.], dtype=float32)
    """
    _checks.non_negative("threshold", threshold, allow_schedule=False)
    _checks.one_of("on_nonfinite", on_nonfinite, _NONFINITE)

    def f(updates, params):
        del params
        return _tree.map_inexact(
            lambda u: _rescaled(u, _tree.leaf_rms(u), threshold, on_nonfinite), updates
        )

    return from_function(f, per_leaf="clip_by_block_rms")


def _unit_axes(x: chex.Array, axis: int | tuple[int, ...] | None) -> Any:
    """optax's unit layout: the axes reduced for one unit of ``x`` (``None``: all of them)."""
    if axis is not None:
        return axis
    ndim = jnp.ndim(x)
    if ndim == 0 or sum(d != 1 for d in jnp.shape(x)) <= 1:
        return None  # scalars and vectors (also (1, n) or (n, 1)): one unit
    if ndim in (2, 3):  # dense (in, out), multi-head dense (in, heads, out): reduce axis 0
        return 0
    if ndim == 4:  # convolution kernels HWIO
        return (0, 1, 2)
    if ndim == 5:  # 3-D convolution kernels DHWIO
        return (0, 1, 2, 3)
    raise ValueError(
        f"unitwise_norm: no default unit layout for shape {jnp.shape(x)} (rank {ndim}); "
        f"give axis= (the axes that make up one unit)"
    )


def _unit_norms(x: chex.Array, axis: int | tuple[int, ...] | None) -> chex.Array:
    """Each unit's l2 norm in at least float32, with the reduced axes kept (size one)."""
    return _tree.leaf_norm(x, axis=_unit_axes(x, axis), keepdims=True)


def unitwise_norm(x: chex.ArrayLike, axis: int | tuple[int, ...] | None = None) -> chex.Array:
    """The l2 norm of each unit of ``x``, broadcast to the shape of ``x``.

    A unit is a slice of ``x`` over the axes ``axis``. Without ``axis`` the
    axes follow the layer conventions optax uses, by rank::

        rank 0-1 (or one axis longer than 1)    the whole array
        rank 2, 3 (dense, multi-head dense)     axis 0
        rank 4 (convolution kernel HWIO)        axes (0, 1, 2)
        rank 5 (3-D convolution kernel DHWIO)   axes (0, 1, 2, 3)

    and any other rank needs ``axis``. Each entry of the result is the norm
    ``sqrt(sum |x|**2)`` of the unit it belongs to, computed in at least float32
    and returned in the real dtype of ``x``.

    Args:
      x: an array.
      axis: an axis or tuple of axes reduced for one unit; ``None``: by rank, as above.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import unitwise_norm
      >>> unitwise_norm(jnp.array([[3.0, 0.0], [4.0, 1.0]]))
      Array([[5., 1.],
             [5., 1.]], dtype=float32)
    """
    x = jnp.asarray(x)
    norms = _unit_norms(x, axis)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        norms = norms.astype(jnp.finfo(x.dtype).dtype)
    return jnp.broadcast_to(norms, x.shape)


def unitwise_clip(
    g_norm: chex.ArrayLike,
    max_norm: chex.ArrayLike,
    grad: chex.ArrayLike,
    div_eps: chex.ArrayLike = 1e-6,
) -> chex.Array:
    """Rescale ``grad`` where its unit norm ``g_norm`` reaches ``max_norm``.

    ::

        grad                                         where g_norm < max_norm
        grad * max_norm / max(g_norm, div_eps)       elsewhere

    All three arrays have the same shape (as :func:`unitwise_norm` returns
    them); ``div_eps`` only guards the division. Computed in at least float32,
    returned in the dtype of ``grad``.

    Args:
      g_norm: the norm of the unit each entry of ``grad`` belongs to.
      max_norm: the largest norm allowed, per entry.
      grad: the gradient.
      div_eps: the floor of the divisor.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import unitwise_clip, unitwise_norm
      >>> g = jnp.array([[0.0], [10.0]])
      >>> unitwise_clip(unitwise_norm(g), jnp.full((2, 1), 2.5), g)
      Array([[0. ],
             [2.5]], dtype=float32)
    """
    g_norm, max_norm, grad = jnp.asarray(g_norm), jnp.asarray(max_norm), jnp.asarray(grad)
    for name, a in (("max_norm", max_norm), ("grad", grad)):
        if a.shape != g_norm.shape:
            raise ValueError(
                f"unitwise_clip: {name} has shape {a.shape} but g_norm has shape "
                f"{g_norm.shape}; the three arrays must have the same shape"
            )
    dtype = _tree.compute_dtype(grad.dtype)
    real = jnp.finfo(dtype).dtype
    n, m = g_norm.astype(real), max_norm.astype(real)
    clipped = grad.astype(dtype) * (m / jnp.maximum(n, jnp.asarray(div_eps).astype(real)))
    return jnp.where(n < m, grad.astype(dtype), clipped).astype(grad.dtype)


def adaptive_grad_clip(
    clipping: chex.Numeric,
    eps: chex.Numeric = 1e-3,
    axis: int | tuple[int, ...] | None = None,
    *,
    on_nonfinite: str = "zero",
) -> GradientTransformation:
    """Unit-wise adaptive gradient clipping (Brock et al., 2021, "High-Performance
    Large-Scale Image Recognition Without Normalization", NFNets).

    For each unit ``i`` (see :func:`unitwise_norm`) of each leaf::

        m_i = clipping * max(||theta_i||, eps)
        g_i <- g_i * m_i / ||g_i||    if ||g_i|| > m_i,   else unchanged

    The norms are computed in at least float32. A unit whose gradient norm is
    not finite becomes zero (``on_nonfinite="zero"``) or NaN (``"nan"``).

    Args:
      clipping: non-negative ratio ``lambda`` of gradient norm to parameter norm.
      eps: non-negative floor on the parameter norm, so that zero-initialised
        units can still move.
      axis: the axes that make up one unit; ``None``: by rank, as :func:`unitwise_norm`.
      on_nonfinite: ``"zero"`` or ``"nan"``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import adaptive_grad_clip
      >>> tx = adaptive_grad_clip(0.5)
      >>> p = jnp.array([[3.0], [4.0]])        # one unit, norm 5: bound 2.5
      >>> g = jnp.array([[0.0], [10.0]])       # norm 10
      >>> tx.update(g, tx.init(p), p)[0]
      Array([[0. ],
             [2.5]], dtype=float32)
    """
    _checks.non_negative("clipping", clipping, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _check_axis(axis)
    _checks.one_of("on_nonfinite", on_nonfinite, _NONFINITE)

    def f(updates, params):
        _checks.check_params(updates, params, "adaptive_grad_clip")

        def one(g, p):
            p_norm = _unit_norms(p, axis)
            p_norm = jnp.maximum(p_norm, jnp.asarray(eps).astype(p_norm.dtype))
            limit = jnp.asarray(clipping).astype(p_norm.dtype) * p_norm
            return _rescaled(g, _unit_norms(g, axis), limit, on_nonfinite)

        return _tree.map_inexact(one, updates, params)

    return from_function(f, per_leaf="adaptive_grad_clip")


def _check_axis(axis: Any) -> None:
    """``axis`` is None, an int or a tuple of ints."""
    items = axis if isinstance(axis, tuple) else (axis,)
    if axis is not None and not all(
        isinstance(a, int | np.integer) and not isinstance(a, bool) for a in items
    ):
        raise TypeError(f"axis={axis!r} must be None, an int or a tuple of ints")
