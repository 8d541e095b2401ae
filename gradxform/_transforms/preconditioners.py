"""Kronecker-factored preconditioners: the matrix math Shampoo and SOAP share.

A matrix ``G`` (``m x n``, one of a leaf's batch of matrices, see ``matrices``) gets
two statistics, ``L`` (``m x m``) from ``G G^T`` and ``R`` (``n x n``) from ``G^T G``.
Here, once each:

* :func:`update_statistics`: ``S <- decay * S + weight * X X^T`` for a batch of ``X``;
* :func:`inverse_root`: ``S^{-1/p}`` by a symmetric eigendecomposition (``eigh``);
* :func:`eigenbasis` and :func:`refresh_eigenbasis`: the eigenvectors of ``S``, exactly
  (``eigh``) or refreshed by one power iteration and a QR decomposition;
* :func:`finite`, :func:`keep_finite` and :func:`count_failures`: the guard every refresh
  takes (a new matrix that is not finite leaves the previous one, and is counted);
* :func:`by_shape`: a refresh's decompositions, one call per distinct matrix shape;
* :class:`BlockLayout`, :func:`to_blocks`, :func:`from_blocks`: a large matrix cut into
  blocks of at most ``block_size`` rows and columns, each preconditioned alone.

All of it runs in float32 (float64 under x64 with float64 params) whatever the dtype
of the params, and returns that precision; callers store the results in the state's
dtype.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _tree
from gradxform._transforms.matrices import (
    MatrixLayout,
    MuonDimensionNumbers,
    leaf_dimension_numbers,
    matrix_layout,
)

# ------------------------------------------------------------------------ blocks


class BlockLayout(NamedTuple):
    """Blocks of a ``(rows, cols)`` matrix: ``row_blocks`` blocks of ``block_rows`` rows
    (the last zero-padded) by ``col_blocks`` blocks of ``block_cols`` columns."""

    rows: int
    cols: int
    row_blocks: int
    block_rows: int
    col_blocks: int
    block_cols: int


def _split(n: int, block_size: int) -> tuple[int, int]:
    """(number of blocks, block length) for a side of ``n``: one block when it fits."""
    if n <= block_size:
        return 1, n
    return math.ceil(n / block_size), block_size


def block_layout(rows: int, cols: int, block_size: int) -> BlockLayout:
    """The blocks of a ``(rows, cols)`` matrix with sides of at most ``block_size``."""
    return BlockLayout(rows, cols, *_split(rows, block_size), *_split(cols, block_size))


def to_blocks(x: chex.Array, layout: BlockLayout) -> chex.Array:
    """``x`` of shape ``(batch, rows, cols)`` as ``(batch, row_blocks, col_blocks, br, bc)``.

    A side that does not divide evenly is padded with zeros: a zero row of ``G`` adds
    nothing to ``G G^T`` off its own diagonal entry, so the block's preconditioner
    acts on the real rows as on an unpadded block, and the padded rows stay zero.
    """
    batch = x.shape[0]
    pr = layout.row_blocks * layout.block_rows - layout.rows
    pc = layout.col_blocks * layout.block_cols - layout.cols
    if pr or pc:
        x = jnp.pad(x, ((0, 0), (0, pr), (0, pc)))
    x = x.reshape(batch, layout.row_blocks, layout.block_rows, layout.col_blocks, layout.block_cols)
    return jnp.swapaxes(x, 2, 3)


def from_blocks(x: chex.Array, layout: BlockLayout) -> chex.Array:
    """The inverse of :func:`to_blocks` (the padding cut off)."""
    batch = x.shape[0]
    x = jnp.swapaxes(x, 2, 3).reshape(
        batch, layout.row_blocks * layout.block_rows, layout.col_blocks * layout.block_cols
    )
    return x[:, : layout.rows, : layout.cols]


def identity_stack(shape: tuple[int, ...], n: int, value: float, dtype) -> chex.Array:
    """``value * I_n`` stacked to ``shape + (n, n)``."""
    return jnp.broadcast_to(value * jnp.eye(n, dtype=dtype), (*shape, n, n))


# -------------------------------------------------------------------- statistics


def gram(x: chex.Array) -> chex.Array:
    """``X X^T`` for a batch of matrices ``X`` (shape ``(..., r, c)`` to ``(..., r, r)``)."""
    return x @ jnp.swapaxes(x, -1, -2)


def update_statistics(
    stat: chex.Array, x: chex.Array, decay: chex.Numeric, weight: chex.Numeric
) -> chex.Array:
    """``decay * S + weight * X X^T`` in the compute dtype of ``X`` (float32 at least)."""
    x = _tree.to_compute(x)
    s = stat.astype(x.dtype)
    return jnp.asarray(decay, x.dtype) * s + jnp.asarray(weight, x.dtype) * gram(x)


# ---------------------------------------------------------------- failed refreshes

UINT32_MAX = np.iinfo(np.uint32).max


def count_failures(previous: chex.Array, failed: chex.Array) -> chex.Array:
    """The counter of failed refreshes ``previous`` (uint32) plus ``failed`` (a bool or a
    count), saturating at ``2**32 - 1`` instead of wrapping."""
    previous = jnp.asarray(previous, jnp.uint32)
    failed = jnp.asarray(failed).astype(jnp.uint32)
    room = jnp.uint32(UINT32_MAX) - previous
    return jnp.where(failed > room, jnp.uint32(UINT32_MAX), previous + failed)


# ---------------------------------------------------------------- inverse roots


def eigh(stat: chex.Array) -> tuple[chex.Array, chex.Array]:
    """Eigenvalues (ascending) and eigenvectors of symmetric ``S`` in float32 at least.

    ``S`` is symmetrized first (``(S + S^T) / 2``): rounding in the statistics'
    updates may leave it asymmetric by an ulp, and ``eigh`` reads one triangle only.
    """
    s = _tree.to_compute(stat)
    s = 0.5 * (s + jnp.swapaxes(s, -1, -2))
    return jnp.linalg.eigh(s, symmetrize_input=False)


def inverse_root(stat: chex.Array, p: int) -> tuple[chex.Array, chex.Array]:
    """``S^{-1/p}`` for a batch of symmetric positive semi-definite ``S``, and whether each
    is finite.

    By the eigendecomposition ``S = Q diag(lambda) Q^T``::

        S^{-1/p} = Q diag(max(lambda, f)^{-1/p}) Q^T,   f = 2^-23 * max(lambda)

    exact to float32 (``eigh`` is backward stable; the iterative alternatives,
    Newton or Schur-Newton, stop at a tolerance). ``f``: eigenvalues below float32's
    resolution of the largest are rounding noise (they may come out negative), so
    they are raised to that resolution; a statistic that starts at ``eps * I`` has
    none when ``eps`` exceeds it. The second result is ``False`` for a matrix whose
    root is not finite (a NaN statistic, or ``S = 0``); callers keep the previous root.
    """
    lam, q = eigh(stat)
    top = jnp.max(lam, axis=-1, keepdims=True)
    lam = jnp.maximum(lam, top * jnp.asarray(2.0**-23, lam.dtype))
    scale = lam ** jnp.asarray(-1.0 / p, lam.dtype)
    root = (q * scale[..., None, :]) @ jnp.swapaxes(q, -1, -2)
    return root, finite(root)


# ------------------------------------------------------------------------ guard


def finite(m: chex.Array) -> chex.Array:
    """Whether each matrix of a batch ``(..., r, c)`` is finite (shape ``(...)``)."""
    return jnp.all(jnp.isfinite(m), axis=(-2, -1))


def keep_finite(new: chex.Array, old: chex.Array, ok: chex.Array) -> chex.Array:
    """``new`` (cast to ``old``'s dtype) where ``ok``, else ``old``, matrix by matrix."""
    return jnp.where(ok[..., None, None], new.astype(old.dtype), old)


# ------------------------------------------------------------------- eigenbasis


def eigenbasis(stat: chex.Array) -> tuple[chex.Array, chex.Array]:
    """The eigenvectors of symmetric ``S`` as columns, eigenvalues in descending order,
    and whether each basis is finite (``False`` for a statistic that is not)."""
    _, q = eigh(stat)
    q = jnp.flip(q, axis=-1)
    return q, finite(q)


def refresh_eigenbasis(
    stat: chex.Array, q: chex.Array
) -> tuple[chex.Array, chex.Array, chex.Array]:
    """One power iteration from the basis ``Q`` towards the eigenvectors of ``S``, then QR.

    The columns of ``S Q`` are ordered by the estimated eigenvalues
    ``diag(Q^T S Q)``, largest first, and orthonormalized by a QR decomposition
    (Vyas et al. 2024, Algorithm 4). Returns the new basis, for each matrix the order
    taken (the new column ``j`` continues the old column ``order[j]``; moments kept in
    the basis are reordered the same way), and whether each new basis is finite. Where
    it is not, the order is the identity, so that a caller keeping the previous basis
    keeps its moments' order too.
    """
    s = _tree.to_compute(stat)
    q = q.astype(s.dtype)
    sq = s @ q
    estimate = jnp.sum(q * sq, axis=-2)
    order = jnp.argsort(-estimate, axis=-1, stable=True)
    power = jnp.take_along_axis(sq, order[..., None, :], axis=-1)
    new, _ = jnp.linalg.qr(power)
    ok = finite(new)
    identity = jnp.broadcast_to(jnp.arange(order.shape[-1], dtype=order.dtype), order.shape)
    return new, jnp.where(ok[..., None], order, identity), ok


# ----------------------------------------------------- one decomposition per shape


def by_shape(fn: Any, *batches: list[chex.Array]) -> list[tuple[chex.Array, ...]]:
    """``fn`` on aligned lists of matrix batches ``(b_i, r, c)``, one call per shape.

    The batches whose matrices share shapes and dtypes are concatenated, ``fn`` (which
    maps batches to a tuple of results with the same leading axis) runs once on each
    group, and its results are split back: item ``i`` of the returned list is ``fn``'s
    tuple for the ``i``-th batches. A refresh thus holds one ``eigh`` or ``qr`` per
    distinct shape instead of one per leaf: fewer, larger LAPACK calls, and it avoids
    a stall of XLA on CPU, which with jax 0.10 never finishes a ``lax.cond`` branch of
    a few dozen separate batched ``eigh`` calls (20 calls on batches of 9 matrices of
    64 x 64 stall; one call on the 180 matrices does not).
    """
    groups: dict[Any, list[int]] = {}
    for i, mats in enumerate(zip(*batches, strict=True)):
        groups.setdefault(tuple((m.shape[1:], m.dtype) for m in mats), []).append(i)
    out: list[Any] = [None] * len(batches[0])
    for idx in groups.values():
        args = [jnp.concatenate([b[i] for i in idx]) for b in batches]
        cuts = np.cumsum([batches[0][i].shape[0] for i in idx])[:-1]
        parts = [jnp.split(r, cuts) for r in fn(*args)]
        for k, i in enumerate(idx):
            out[i] = tuple(p[k] for p in parts)
    return out


# ------------------------------------------------------------------ leaf views

# A leaf of more than two axes, given no dimension numbers: its last axis the columns,
# the others flattened into the rows (a convolution kernel ``(h, w, in, out)`` is one
# ``(h * w * in, out)`` matrix).
_LAST_AXIS_COLUMNS = "last axis columns"


def matrix_views(spec: Any, tree: Any, name: str) -> list[MatrixLayout | None]:
    """The matrix view of every leaf of ``tree`` (flattening order), or ``None`` for a leaf
    preconditioned diagonally.

    ``spec`` is ``None`` (2-D leaves as they are; leaves of more axes as one matrix, the
    last axis the columns; 0-D and 1-D leaves diagonal), a :class:`MuonDimensionNumbers`
    for every leaf, a tree of them (a prefix of the params; ``None``: diagonal), or a
    function of the params returning one. Integer, boolean and empty leaves: ``None``.
    """
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    if spec is None:
        dims: list[Any] = [_LAST_AXIS_COLUMNS] * len(flat)
    else:
        dims = leaf_dimension_numbers(spec, tree, name)
    out: list[MatrixLayout | None] = []
    for (path, leaf), d in zip(flat, dims, strict=True):
        shape = tuple(leaf.shape)
        if d is None or not _tree.is_inexact(leaf) or math.prod(shape) == 0:
            out.append(None)
        elif d is _LAST_AXIS_COLUMNS:
            if len(shape) < 2:
                out.append(None)
                continue
            d = MuonDimensionNumbers(tuple(range(len(shape) - 1)), len(shape) - 1)
            out.append(matrix_layout(shape, d, _tree.path_name(path)))
        else:
            out.append(matrix_layout(shape, d, _tree.path_name(path)))
    return out
