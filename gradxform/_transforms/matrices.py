"""Which axes of a leaf form a matrix: :class:`MuonDimensionNumbers` and the batch-of-matrices
view of a leaf that any matrix optimizer (Muon's orthogonalization) works on."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform._wrappers.masking import is_mask_fn


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a leaf are the rows (``reduction_axis``) and columns (``output_axis``)
    of the matrix Muon orthogonalizes; every other axis is a batch axis.

    For ``y = x @ W`` the reduction axis is the one contracted with ``x`` (0 for a
    ``(fan_in, fan_out)`` kernel: the default) and the output axis indexes ``y``.
    Several axes on one side are flattened together (a conv kernel ``(h, w, in, out)``:
    ``reduction_axis=(0, 1, 2), output_axis=3``); the other axes (stacked or scanned
    layers, attention heads) index independent matrices. Negative axes count from the
    end; an axis out of range or named twice is an error naming the leaf.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


def _axes(value: Any, name: str) -> tuple[int, ...]:
    axes = (value,) if isinstance(value, int | np.integer) else value
    if isinstance(axes, str) or not isinstance(axes, Sequence | np.ndarray):
        raise TypeError(f"{name}={value!r} must be an int or a sequence of ints")
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, int | np.integer):
            raise TypeError(f"{name}={value!r} must be an int or a sequence of ints")
    return tuple(int(a) for a in axes)


def check_dimension_numbers(dims: Any, name: str) -> None:
    """Check a :class:`MuonDimensionNumbers`'s axes are ints (their range needs a leaf)."""
    if not isinstance(dims, MuonDimensionNumbers):
        raise TypeError(f"{name}={dims!r} must be a MuonDimensionNumbers or None")
    _axes(dims.reduction_axis, f"{name}.reduction_axis")
    _axes(dims.output_axis, f"{name}.output_axis")


def _is_dims(x: Any) -> bool:
    return x is None or isinstance(x, MuonDimensionNumbers)


class _Box:
    """A leaf holding one leaf's dimension numbers (``None`` included) while mapping."""

    __slots__ = ("dims",)

    def __init__(self, dims: Any):
        self.dims = dims


DEFAULT = MuonDimensionNumbers()


def leaf_dimension_numbers(spec: Any, tree: Any, name: str) -> list[Any]:
    """The dimension numbers of every leaf of ``tree`` (flattening order) from ``spec``.

    ``spec`` is ``None`` (every leaf a 2-D matrix as it is: ``DEFAULT``), one
    :class:`MuonDimensionNumbers` for every leaf, a tree of them (or ``None``: not a
    Muon leaf) with the structure of ``tree`` or a prefix of it, or a function of
    ``tree`` returning any of these.
    """
    if spec is not None and not isinstance(spec, MuonDimensionNumbers) and is_mask_fn(spec):
        spec = spec(tree)
    n = len(jax.tree.leaves(tree))
    if spec is None or isinstance(spec, MuonDimensionNumbers):
        return [spec or DEFAULT] * n
    try:
        boxed = jax.tree.map(
            lambda d, sub: jax.tree.map(lambda _: _Box(d), sub), spec, tree, is_leaf=_is_dims
        )
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"{name} must be a MuonDimensionNumbers, or a tree of them (None for a leaf "
            f"Muon does not update) with the structure of the params or a prefix of it: {e}"
        ) from None
    out = [b.dims for b in jax.tree.leaves(boxed, is_leaf=lambda x: isinstance(x, _Box))]
    for d in out:
        if d is not None:
            check_dimension_numbers(d, name)
    return out


class MatrixLayout(NamedTuple):
    """How a leaf is viewed as a batch of ``(rows, cols)`` matrices (rows: the reduction)."""

    perm: tuple[int, ...]
    batch: int
    rows: int
    cols: int


def matrix_layout(shape: tuple[int, ...], dims: Any, where: str) -> MatrixLayout:
    """The batch-of-matrices view of a leaf of ``shape`` under ``dims``.

    ``dims=None`` is ``DEFAULT``. Raises a ``ValueError`` naming ``where`` (the leaf's
    key path) for a leaf of fewer than two axes or dimension numbers that do not fit it.
    """
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(
            f"leaf '{where}' of shape {shape} is routed to Muon, which needs a matrix (at "
            f"least 2 axes); give it None dimension numbers to route it elsewhere"
        )
    dims = dims or DEFAULT
    sides = []
    for side in ("reduction_axis", "output_axis"):
        axes = _axes(getattr(dims, side), side)
        if any(not -ndim <= a < ndim for a in axes):
            raise ValueError(f"leaf '{where}' of shape {shape}: {side}={axes} out of range")
        sides.append(tuple(a % ndim for a in axes))
    red, out = sides
    named = red + out
    if len(set(named)) != len(named):
        raise ValueError(
            f"leaf '{where}' of shape {shape}: the dimension numbers {dims} name an axis "
            f"twice (reduction axes {red}, output axes {out})"
        )
    batch = tuple(a for a in range(ndim) if a not in named)
    return MatrixLayout(
        perm=batch + red + out,
        batch=math.prod(shape[a] for a in batch),
        rows=math.prod(shape[a] for a in red),
        cols=math.prod(shape[a] for a in out),
    )


def to_matrices(x: chex.Array, layout: MatrixLayout) -> chex.Array:
    """``x`` as an array of shape ``(batch, rows, cols)``."""
    return jnp.transpose(x, layout.perm).reshape(layout.batch, layout.rows, layout.cols)


def from_matrices(m: chex.Array, layout: MatrixLayout, shape: tuple[int, ...]) -> chex.Array:
    """The inverse of :func:`to_matrices` for a leaf of ``shape``."""
    m = m.reshape(tuple(shape[a] for a in layout.perm))
    return jnp.transpose(m, tuple(np.argsort(layout.perm)))


def check_weight_dimension_numbers(spec: Any, name: str) -> None:
    """Check the types in a dimension-numbers argument given as a value (not a function)."""
    if spec is None or isinstance(spec, MuonDimensionNumbers):
        if spec is not None:
            check_dimension_numbers(spec, name)
        return
    if is_mask_fn(spec):
        return
    for d in jax.tree.leaves(spec, is_leaf=_is_dims):
        if d is not None:
            check_dimension_numbers(d, name)
