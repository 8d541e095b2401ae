"""Pytree arithmetic, reductions, norms, moments and dtypes with optax's names and semantics."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp

from gradxform import _tree

PyTree = Any
KeyEntry = Any
KeyPath = tuple[KeyEntry, ...]
Filter = Callable[[KeyPath, Any], bool]

# ------------------------------------------------------------------------ arithmetic


def tree_add(tree_x: PyTree, tree_y: PyTree, *other_trees: PyTree) -> PyTree:
    """Leafwise sum of two or more trees of the same structure.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import tree
      >>> tree.tree_add({"a": jnp.ones(2)}, {"a": jnp.ones(2)}, {"a": jnp.ones(2)})
      {'a': Array([3., 3.], dtype=float32)}
    """
    return jax.tree.map(
        lambda *xs: functools.reduce(operator.add, xs), tree_x, tree_y, *other_trees
    )


def tree_sub(tree_x: PyTree, tree_y: PyTree) -> PyTree:
    """Leafwise difference ``tree_x - tree_y``."""
    return jax.tree.map(operator.sub, tree_x, tree_y)


def tree_mul(tree_x: PyTree, tree_y: PyTree) -> PyTree:
    """Leafwise product ``tree_x * tree_y``."""
    return jax.tree.map(operator.mul, tree_x, tree_y)


def tree_div(tree_x: PyTree, tree_y: PyTree) -> PyTree:
    """Leafwise true division ``tree_x / tree_y``."""
    return jax.tree.map(operator.truediv, tree_x, tree_y)


def tree_scale(scalar: chex.Numeric, tree: PyTree) -> PyTree:
    """Every leaf multiplied by ``scalar``: ``scalar * tree``."""
    return jax.tree.map(lambda x: scalar * x, tree)


def tree_add_scale(tree_x: PyTree, scalar: chex.Numeric, tree_y: PyTree) -> PyTree:
    """``tree_x + scalar * tree_y``; a ``None`` in ``tree_x`` stays ``None``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import tree
      >>> tree.tree_add_scale(jnp.ones(2), 0.5, jnp.array([2.0, 4.0]))
      Array([2., 3.], dtype=float32)
    """
    s = jnp.asarray(scalar)
    return jax.tree.map(
        lambda x, y: None if x is None else x + s * y, tree_x, tree_y, is_leaf=lambda x: x is None
    )


def tree_conj(tree: PyTree) -> PyTree:
    """The complex conjugate of every leaf."""
    return jax.tree.map(jnp.conj, tree)


def tree_real(tree: PyTree) -> PyTree:
    """The real part of every leaf."""
    return jax.tree.map(jnp.real, tree)


def tree_clip(
    tree: PyTree, min_value: chex.Numeric | None = None, max_value: chex.Numeric | None = None
) -> PyTree:
    """Every leaf clipped to ``[min_value, max_value]`` (``None``: no bound on that side)."""
    return jax.tree.map(lambda x: jnp.clip(x, min_value, max_value), tree)


def tree_where(condition: chex.Array, tree_x: PyTree, tree_y: PyTree) -> PyTree:
    """``jnp.where(condition, x, y)`` leaf by leaf: ``tree_x`` where true, ``tree_y`` elsewhere."""
    return jax.tree.map(lambda x, y: jnp.where(condition, x, y), tree_x, tree_y)


def tree_batch_shape(tree: PyTree, shape: tuple[int, ...] = ()) -> PyTree:
    """Every leaf broadcast to ``(*shape, *leaf.shape)``: leading batch dimensions added."""
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (*shape, *jnp.shape(x))), tree)


# ------------------------------------------------------------------------ reductions


def _inner(a: Any, b: Any) -> jax.Array:
    """``jnp.vdot(a, b)`` (``a`` conjugated) at the highest matmul precision."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"tree_vdot needs leaves of equal shapes, got {a.shape} and {b.shape}")
    return jnp.vdot(a, b, precision=jax.lax.Precision.HIGHEST)


def tree_vdot(tree_x: PyTree, tree_y: PyTree) -> chex.Numeric:
    """The inner product of two trees, conjugating ``tree_x`` (as ``jnp.vdot``).

    Args:
      tree_x: the first tree; its complex leaves are conjugated.
      tree_y: a tree of the same structure and leaf shapes.

    Returns:
      A scalar (``0`` for trees without leaves).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import tree
      >>> tree.tree_vdot({"a": jnp.array([1.0, 2.0])}, {"a": jnp.array([3.0, 4.0])})
      Array(11., dtype=float32)
    """
    with jax.numpy_dtype_promotion("standard"):
        return _total(jax.tree.leaves(jax.tree.map(_inner, tree_x, tree_y)))


def tree_sum(tree: PyTree, associative_reduction: bool = False) -> chex.Numeric:
    """The sum of every entry of every leaf (``0`` for a tree without leaves).

    Args:
      tree: a tree of arrays or numbers.
      associative_reduction: add the leaf sums pairwise as a balanced tree
        rather than left to right (a shallower graph for trees with many
        leaves; the rounding may differ in the last bits).
    """
    return _total([jnp.sum(x) for x in jax.tree.leaves(tree)], balanced=associative_reduction)


def _total(values: list[Any], balanced: bool = False) -> chex.Numeric:
    """``0 + v_1 + v_2 + ...``, promoting across leaves by JAX's standard rules.

    Leaves of different dtypes are summed whatever ``jax_numpy_dtype_promotion``
    says; ``balanced`` adds pairwise as a balanced tree instead of left to right.
    """
    with jax.numpy_dtype_promotion("standard"):
        if not balanced or not values:
            return functools.reduce(operator.add, values, 0)
        while len(values) > 1:
            pairs = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
            values = pairs + ([values[-1]] if len(values) % 2 else [])
        return values[0]


def _extremum(
    tree: PyTree, reduce: Callable[..., Any], combine: Callable[..., Any], start: float
) -> chex.Numeric:
    """Combine the ``reduce`` of every non-empty leaf, starting from ``start``."""
    out: Any = start
    with jax.numpy_dtype_promotion("standard"):
        for x in jax.tree.leaves(tree):
            if jnp.size(x):
                out = combine(out, reduce(x))
    return out


def tree_max(tree: PyTree) -> chex.Numeric:
    """The largest entry of the tree; empty leaves are skipped (``-inf`` if all are empty)."""
    return _extremum(tree, jnp.max, jnp.maximum, -float("inf"))


def tree_min(tree: PyTree) -> chex.Numeric:
    """The smallest entry of the tree; empty leaves are skipped (``inf`` if all are empty)."""
    return _extremum(tree, jnp.min, jnp.minimum, float("inf"))


def tree_size(tree: PyTree) -> int:
    """The number of entries in all leaves together."""
    return sum(int(jnp.size(x)) for x in jax.tree.leaves(tree))


def _abs_sq(x: Any) -> jax.Array:
    """``|x|**2`` of a real or complex leaf, as a real array."""
    x = jnp.asarray(x)
    return jnp.square(jnp.real(x)) + jnp.square(jnp.imag(x))


def tree_norm(
    tree: PyTree, ord: int | float | str | None = None, squared: bool = False
) -> jax.Array:
    """The vector norm of all leaves taken together.

    Args:
      tree: a tree of real or complex arrays.
      ord: ``None`` or ``2`` (euclidean), ``1`` (sum of absolute values), or
        ``jnp.inf`` / ``"inf"`` / ``"infinity"`` (largest absolute value).
      squared: return the square of the norm.

    Returns:
      A scalar array.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import tree
      >>> t = {"a": jnp.array([3.0]), "b": jnp.array([-4.0])}
      >>> tree.tree_norm(t), tree.tree_norm(t, ord=1), tree.tree_norm(t, ord="inf")
      (Array(5., dtype=float32), Array(7., dtype=float32), Array(4., dtype=float32))
    """
    if ord is None or (not isinstance(ord, str) and ord == 2):
        total = tree_sum(jax.tree.map(_abs_sq, tree))
        return jnp.asarray(total if squared else jnp.sqrt(total))
    if not isinstance(ord, str) and ord == 1:
        out = tree_sum(jax.tree.map(jnp.abs, tree))
    elif ord in ("inf", "infinity") or (not isinstance(ord, str) and ord == jnp.inf):
        out = tree_max(jax.tree.map(jnp.abs, tree))
    else:
        raise ValueError(f"Unsupported ord: {ord!r}; use None, 1, 2 or inf")
    return jnp.asarray(_abs_sq(out) if squared else out)


def tree_l1_norm(tree: PyTree, squared: bool = False) -> jax.Array:
    """``tree_norm(tree, ord=1, squared=squared)``."""
    return tree_norm(tree, ord=1, squared=squared)


def tree_l2_norm(tree: PyTree, squared: bool = False) -> jax.Array:
    """``tree_norm(tree, ord=2, squared=squared)``."""
    return tree_norm(tree, ord=2, squared=squared)


def tree_linf_norm(tree: PyTree, squared: bool = False) -> jax.Array:
    """``tree_norm(tree, ord="inf", squared=squared)``."""
    return tree_norm(tree, ord="inf", squared=squared)


def tree_allclose(
    a: PyTree,
    b: PyTree,
    rtol: chex.Numeric = 1e-05,
    atol: chex.Numeric = 1e-08,
    equal_nan: bool = False,
) -> Any:
    """Whether every leaf of ``a`` is ``jnp.allclose`` to the matching leaf of ``b``.

    Returns ``True`` for trees without leaves, else a boolean scalar array.
    """
    close = jax.tree.map(
        lambda x, y: jnp.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan), a, b
    )
    return functools.reduce(operator.and_, jax.tree.leaves(close), True)


# ------------------------------------------------------------------------ constructors


def tree_zeros_like(tree: PyTree, dtype: Any | None = None) -> PyTree:
    """Zeros shaped like every leaf, in ``dtype`` or the leaf's own dtype."""
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def tree_ones_like(tree: PyTree, dtype: Any | None = None) -> PyTree:
    """Ones shaped like every leaf, in ``dtype`` or the leaf's own dtype."""
    return jax.tree.map(lambda x: jnp.ones_like(x, dtype=dtype), tree)


def tree_full_like(tree: PyTree, fill_value: chex.Numeric, dtype: Any | None = None) -> PyTree:
    """``fill_value`` shaped like every leaf, in ``dtype`` or the leaf's own dtype."""
    return jax.tree.map(lambda x: jnp.full_like(x, fill_value, dtype=dtype), tree)


# ------------------------------------------------------------------------ moments


def _skip_none(f: Callable[..., Any]) -> Callable[..., Any]:
    return lambda g, m: None if g is None else f(g, m)


def tree_update_moment(updates: PyTree, moments: PyTree, decay: chex.Numeric, order: int) -> PyTree:
    """The exponential moving average ``(1 - decay) * g**order + decay * m``.

    ``None`` leaves of ``updates`` stay ``None``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import tree
      >>> tree.tree_update_moment(jnp.array([2.0]), jnp.array([1.0]), 0.5, 2)
      Array([2.5], dtype=float32)
    """
    return jax.tree.map(
        _skip_none(lambda g, m: (1 - decay) * (g**order) + decay * m),
        updates,
        moments,
        is_leaf=lambda x: x is None,
    )


def tree_update_infinity_moment(
    updates: PyTree, moments: PyTree, decay: chex.Numeric, eps: chex.Numeric
) -> PyTree:
    """The decaying maximum ``max(|g| + eps, decay * m)`` (Adamax's infinity norm)."""
    return jax.tree.map(
        _skip_none(lambda g, m: jnp.maximum(jnp.abs(g) + eps, decay * m)),
        updates,
        moments,
        is_leaf=lambda x: x is None,
    )


def tree_update_moment_per_elem_norm(
    updates: PyTree, moments: PyTree, decay: chex.Numeric, order: int
) -> PyTree:
    """The moving average of ``|g|**order`` entry by entry (``g**order`` for real ``g``).

    For complex leaves the modulus is used, so the second moment stays real.
    """

    def power(g: Any) -> Any:
        if not jnp.iscomplexobj(g):
            return g**order
        half = order / 2
        return _abs_sq(g) ** (int(half) if float(half).is_integer() else half)

    return jax.tree.map(
        _skip_none(lambda g, m: (1 - decay) * power(g) + decay * m),
        updates,
        moments,
        is_leaf=lambda x: x is None,
    )


def tree_bias_correction(moment: PyTree, decay: chex.Numeric, count: chex.Numeric) -> PyTree:
    """A moment divided by ``1 - decay**count``, each leaf in its own dtype.

    The factor is computed in at least float32 (``decay**count`` rounds to 1
    in bfloat16) and cast to each leaf's dtype for the division.
    """
    count = jnp.asarray(count)
    real = _tree.compute_dtype(jnp.asarray(decay).dtype)
    factor = 1 - jnp.asarray(decay, real) ** count.astype(real)
    return jax.tree.map(lambda m: m / factor.astype(m.dtype), moment)
