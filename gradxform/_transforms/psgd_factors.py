"""PSGD-Kron's factor math: the layout of a leaf's factors, the fit, the preconditioning.

A leaf of shape ``(d_1, ..., d_n)`` has one factor ``Q_i`` per axis, an upper triangular
matrix or a diagonal (a vector); ``Q = Q_1 (x) ... (x) Q_n`` acts axis by axis. Every
function here works in the dtype of its arguments (the caller promotes to float32 at least).
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _tree

_HI = jax.lax.Precision.HIGHEST
# The floor of the fit's normalizers (the smallest normal float32).
_TINY = float(np.finfo(np.float32).tiny)


# ------------------------------------------------------------------- factor layout


def diagonal_axes(
    shape: tuple[int, ...],
    max_size_triangular: int,
    min_ndim_triangular: int,
    memory_save_mode: str | None,
) -> tuple[bool, ...]:
    """Which axes of a leaf of ``shape`` get a diagonal factor (the others: triangular).

    An axis is diagonal when its size is 1 or above ``max_size_triangular``, when the leaf
    has fewer than ``min_ndim_triangular`` axes, or by ``memory_save_mode``:
    ``"one_diag"`` the largest axis (the last of equals), ``"smart_one_diag"`` the largest
    axis if strictly larger than every other, ``"all_diag"`` every axis.
    """
    n = len(shape)
    forced = [False] * n
    largest = n - 1 - int(np.argmax(np.asarray(shape[::-1]))) if n else 0
    if memory_save_mode == "all_diag":
        forced = [True] * n
    elif memory_save_mode == "one_diag" and n:
        forced[largest] = True
    elif memory_save_mode == "smart_one_diag" and n >= 2:
        ordered = sorted(shape)
        if ordered[-1] > ordered[-2]:
            forced[largest] = True
    return tuple(
        d == 1 or d > max_size_triangular or n < min_ndim_triangular or forced[i]
        for i, d in enumerate(shape)
    )


def init_factors(x: Any, diag: tuple[bool, ...], scale: Any, dtype: Any) -> tuple[Any, ...]:
    """The initial factors of leaf ``x``: ``scale**(1/n) * I`` per axis (one scalar
    ``scale`` if ``n = 0``). A vector's diagonal factor is shaped, and sharded, like it."""
    shape = tuple(jnp.shape(x))
    if not shape or (len(shape) == 1 and diag[0]):
        return (_tree.full_like(x, 1.0, dtype) * jnp.asarray(scale, dtype),)
    s = jnp.asarray(scale, jnp.float32) ** (1.0 / len(shape))
    return tuple(
        (jnp.ones((d,), dtype) if is_diag else jnp.eye(d, dtype=dtype)) * s.astype(dtype)
        for d, is_diag in zip(shape, diag, strict=True)
    )


# ------------------------------------------------------------------- factor math


def _broadcast(f: chex.Array, ndim: int, axis: int) -> chex.Array:
    """A diagonal factor shaped to multiply along ``axis`` of an ``ndim``-axis array."""
    return f.reshape(tuple(-1 if i == axis else 1 for i in range(ndim))) if ndim else f


def _along(x: chex.Array, f: chex.Array, axis: int, transpose: bool = False) -> chex.Array:
    """The factor ``f`` (or ``f^T``) applied along ``axis`` of ``x``."""
    if f.ndim < 2:
        return x * _broadcast(f, x.ndim, axis)
    m = f.T if transpose else f
    return jnp.moveaxis(jnp.tensordot(m, x, axes=([1], [axis]), precision=_HI), 0, axis)


def _solve_along(x: chex.Array, f: chex.Array, axis: int) -> chex.Array:
    """``f^{-T}`` applied along ``axis`` of ``x`` (``f`` upper triangular or a diagonal)."""
    if f.ndim < 2:
        return x / _broadcast(f, x.ndim, axis)
    moved = jnp.moveaxis(x, axis, 0)
    y = jax.scipy.linalg.solve_triangular(f, moved.reshape(f.shape[0], -1), trans=1, lower=False)
    return jnp.moveaxis(y.reshape(moved.shape), 0, axis)


def _gram(x: chex.Array, axis: int, diag: bool) -> chex.Array:
    """``X_(i) X_(i)^T`` of the mode-``axis`` unfolding of ``x`` (its diagonal if ``diag``)."""
    if x.ndim == 0:
        return x * x
    moved = jnp.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    if diag:
        return jnp.sum(moved * moved, axis=1)
    return jnp.matmul(moved, moved.T, precision=_HI)


def norm_lower_bound(s: chex.Array) -> chex.Array:
    """A lower bound of the spectral norm of a symmetric matrix ``s``, within a factor of
    about ``sqrt(d)``: one power step from its largest column, ``||S x|| / ||x||`` with
    ``x = S s_j`` and ``s_j`` the column of largest norm (``s`` first scaled to a largest
    entry of 1, so that the squares neither overflow nor underflow)."""
    top = jnp.max(jnp.abs(s))
    s = s / jnp.where(top > 0, top, jnp.ones_like(top))
    j = jnp.argmax(jnp.sum(s * s, axis=0))
    x = jnp.matmul(s, s[:, j], precision=_HI)
    x = x / jnp.maximum(jnp.linalg.norm(x), _TINY)
    return top * jnp.linalg.norm(jnp.matmul(s, x, precision=_HI))


def balance(factors: tuple[chex.Array, ...]) -> tuple[chex.Array, ...]:
    """Rescale the factors to equal largest entries (their geometric mean): ``Q`` itself,
    the product, is unchanged; the factors neither overflow nor underflow."""
    if len(factors) < 2:
        return factors
    norms = jnp.stack([jnp.max(jnp.abs(f)) for f in factors])
    mean = jnp.exp(jnp.mean(jnp.log(norms)))
    return tuple(f * (mean / n) for f, n in zip(factors, norms, strict=True))


def fit_factors(
    factors: tuple[chex.Array, ...], g: chex.Array, v: chex.Array, lr: chex.Numeric
) -> tuple[chex.Array, ...]:
    """One step of the PSGD fit of ``Q`` to the pair ``(v, h)`` (Li 2015, 2022)::

        A = Q h,  B = Q^{-T} v,   per axis i:  G_i = A_(i) A_(i)^T,  H_i = B_(i) B_(i)^T
        Q_i <- Q_i - lr * triu(G_i - H_i) Q_i / ||G_i + H_i||        (triangular)
        q_i <- q_i - lr * (G_i - H_i) q_i / max|G_i + H_i|           (diagonal)

    a descent step of ``E[h^T P h + v^T P^{-1} v]`` on the Lie group of ``Q``, whose
    minimizer is ``P = (E[h h^T])^{-1/2}`` for the unit-variance probe ``v``. The norm of a
    triangular step is the lower bound :func:`norm_lower_bound`.
    """
    n = g.ndim
    a, b = g, v
    for i, f in enumerate(factors if n else ()):
        a = _along(a, f, i)
        b = _solve_along(b, f, i)
    if n == 0:
        a, b = a * factors[0], b / factors[0]
    out = []
    for i, f in enumerate(factors):
        diag = f.ndim < 2
        t1, t2 = _gram(a, i, diag), _gram(b, i, diag)
        if diag:
            step = lr * (t1 - t2) * f / (jnp.max(jnp.abs(t1 + t2)) + _TINY)
        else:
            step = lr * jnp.matmul(jnp.triu(t1 - t2), f, precision=_HI)
            step = step / (norm_lower_bound(t1 + t2) + _TINY)
        out.append(f - step)
    return tuple(out)


def precondition(factors: tuple[chex.Array, ...], g: chex.Array) -> chex.Array:
    """``P g = Q^T Q g``, axis by axis."""
    if g.ndim == 0:
        return factors[0] * factors[0] * g
    for i, f in enumerate(factors):
        g = _along(_along(g, f, i), f, i, transpose=True)
    return g


def _exponent(x: chex.Array) -> chex.Array:
    """The power of two ``e`` with ``max|x| = f 2^e``, ``f`` in ``[0.5, 1)`` (0 if ``x = 0``)."""
    return jnp.frexp(jnp.max(jnp.abs(x)))[1]


def capped_direction(factors: tuple[chex.Array, ...], m: chex.Array) -> chex.Array:
    """The capped direction ``P m * min(1, 1.1 / (rms(P m) + 1e-6))``, ``P = Q^T Q``.

    Computed without overflow or NaN for finite factors and a finite ``m``: ``m`` and each
    factor are first scaled by powers of two to largest entries in ``[0.5, 1)`` (exact), so
    ``y = P' m'`` neither overflows nor underflows, and ``P m = y 2^E``. Where ``P m``
    itself would overflow, the cap still returns the capped direction (of RMS 1.1) rather
    than ``inf * 0``; where it fits in the dtype the result is the formula's.
    """
    shifts = [_exponent(f) for f in factors]
    total = _exponent(m) + 2 * sum(shifts, start=jnp.zeros([], jnp.int32))
    y = precondition(
        tuple(jnp.ldexp(f, -e) for f, e in zip(factors, shifts, strict=True)),
        jnp.ldexp(m, -_exponent(m)),
    )
    top = jnp.max(jnp.abs(y))
    ones = jnp.ones_like(top)
    rms = top * jnp.sqrt(jnp.mean(jnp.square(y / jnp.where(top > 0, top, ones))))
    # rms(P m) + 1e-6 > 1.1, without forming 2^E (it may overflow):
    capped = rms > jnp.ldexp(jnp.asarray(1.1 - 1e-6, y.dtype), -total)
    cap = 1.1 / (rms + jnp.ldexp(jnp.asarray(1e-6, y.dtype), -total))
    return jnp.where(capped, y * jnp.where(rms > 0, cap, 0 * ones), jnp.ldexp(y, total))


def probes(step_key: jax.Array, shapes: list[tuple[int, ...]]) -> list[chex.Array]:
    """The probe vectors of one fit: leaf ``i`` (in the order of ``jax.tree.leaves``) draws
    ``jax.random.normal(jax.random.fold_in(step_key, i), shape, float32)``, ``step_key``
    the second key of the split of the state's key at that step."""
    return [
        jax.random.normal(jax.random.fold_in(step_key, i), s, jnp.float32)
        for i, s in enumerate(shapes)
    ]
