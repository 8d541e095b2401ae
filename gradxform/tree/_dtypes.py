"""Pytree dtype helpers with optax's names and semantics: casts and a tree's dtype."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any


def tree_cast(tree: PyTree, dtype: Any | None) -> PyTree:
    """Every leaf cast to ``dtype``; ``None`` returns the tree unchanged.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import tree
      >>> tree.tree_cast({"a": jnp.ones(2)}, jnp.bfloat16)
      {'a': Array([1, 1], dtype=bfloat16)}
    """
    if dtype is None:
        return tree
    return jax.tree.map(lambda x: _astype(x, dtype), tree)


def tree_cast_like(tree: PyTree, other_tree: PyTree) -> PyTree:
    """Every leaf cast to the dtype of the matching leaf of ``other_tree`` (if it has one)."""
    return jax.tree.map(
        lambda x, o: _astype(x, o.dtype) if hasattr(o, "dtype") else x, tree, other_tree
    )


def _astype(x: Any, dtype: Any) -> Any:
    return x.astype(dtype) if hasattr(x, "astype") else jnp.asarray(x).astype(dtype)


def _standard(f: Callable[..., Any]) -> Callable[..., Any]:
    """``f`` with the standard promotion lattice, whatever ``jax_numpy_dtype_promotion`` says."""

    @functools.wraps(f)
    def g(*args: Any) -> Any:
        with jax.numpy_dtype_promotion("standard"):
            return f(*args)

    return g


@_standard
def _lower(a: Any, b: Any) -> Any:
    joined = jnp.promote_types(a, b)
    if joined == a:
        return b
    if joined == b:
        return a
    raise ValueError(f"Cannot compare dtypes {a} and {b}: neither promotes to the other")


@_standard
def _higher(a: Any, b: Any) -> Any:
    return b if _lower(a, b) == a else a


def tree_dtype(tree: PyTree, mixed_dtype_handler: str | None = None) -> Any:
    """The dtype of the leaves of a tree.

    Args:
      tree: a tree of arrays or numbers. An empty tree gives JAX's default
        float dtype.
      mixed_dtype_handler: what to do when the leaves differ. ``None``: raise
        a ``ValueError``; ``"promote"``: their promoted dtype; ``"highest"`` /
        ``"lowest"``: the largest / smallest in the promotion order (a
        ``ValueError`` when two of them are not ordered, such as int32 and uint32).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import tree
      >>> t = {"a": jnp.ones(1, jnp.float16), "b": jnp.ones(1, jnp.float32)}
      >>> tree.tree_dtype(t, "lowest"), tree.tree_dtype(t, "highest")
      (dtype('float16'), dtype('float32'))
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.asarray([]).dtype
    dtypes = [jnp.asarray(x).dtype for x in leaves]
    if mixed_dtype_handler is None:
        flat = jax.tree_util.tree_flatten_with_path(tree)[0]
        wrong = [
            f"Expected dtype={dtypes[0]} for {jax.tree_util.keystr(p)} but got {d}."
            for (p, _), d in zip(flat, dtypes, strict=True)
            if d != dtypes[0]
        ]
        if wrong:
            raise ValueError("\n".join(wrong))
        return dtypes[0]
    if mixed_dtype_handler == "promote":
        return functools.reduce(_standard(jnp.promote_types), dtypes)
    if mixed_dtype_handler == "highest":
        return functools.reduce(_higher, dtypes)
    if mixed_dtype_handler == "lowest":
        return functools.reduce(_lower, dtypes)
    raise ValueError(
        f"Invalid value for mixed_dtype_handler={mixed_dtype_handler!r}, "
        f"possible values are: None, 'promote', 'highest', 'lowest'."
    )
