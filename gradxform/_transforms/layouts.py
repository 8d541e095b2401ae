"""Layouts: run a transformation on all parameters concatenated into one vector."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformationExtraArgs,
    transformation,
    with_extra_args_support,
)


def _concatenate(tree: chex.ArrayTree) -> chex.Array:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((0,), jnp.float32)
    dtype = _tree.promote(*(_tree.dtype_of(x) for x in leaves))
    return jnp.concatenate([jnp.reshape(jnp.asarray(x), (-1,)).astype(dtype) for x in leaves])


def _split_like(vector: chex.Array, like: chex.ArrayTree) -> chex.ArrayTree:
    leaves, treedef = jax.tree.flatten(like)
    sizes = [int(np.size(x)) for x in leaves]
    if int(vector.shape[0]) != sum(sizes):
        raise ValueError(
            f"flatten: the inner transformation returned {vector.shape[0]} numbers for "
            f"{sum(sizes)} parameters"
        )
    offsets = np.cumsum(sizes)[:-1].tolist()
    pieces = jnp.split(vector, offsets) if leaves else []
    out = [
        jnp.reshape(piece, jnp.shape(x)).astype(_tree.dtype_of(x))
        for piece, x in zip(pieces, leaves, strict=True)
    ]
    return jax.tree.unflatten(treedef, out)


def flatten(inner: Any) -> GradientTransformationExtraArgs:
    """Run ``inner`` on one vector: all leaves flattened and concatenated, in tree order.

    ::

        init(params)                 = inner.init(concat(params))
        update(updates, s, params)   = split(inner.update(concat(updates), s, concat(params)))

    as optax's ``flatten``: many small leaves become one array, which can be
    faster, at the cost of a copy. The leaves are concatenated in their
    promoted dtype and each piece of the result is cast back to its update's
    dtype. A per-leaf statistic of ``inner`` (a trust ratio, a factored moment)
    is then taken over the whole vector. Extra arguments (``value=loss``) reach
    ``inner``. (:func:`gradxform.flat` keeps one buffer per dtype and keeps
    per-leaf statistics per leaf.)

    Args:
      inner: the transformation to run on the concatenated vector.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.flatten(gx.scale_by_adam())
      >>> params = {"a": jnp.zeros(2), "b": jnp.zeros((1, 3))}
      >>> state = tx.init(params)
      >>> state.mu.shape
      (5,)
      >>> tx.update({"a": jnp.ones(2), "b": -jnp.ones((1, 3))}, state)[0]["b"]
      Array([[-1., -1., -1.]], dtype=float32)
    """
    _checks.transformation("inner", inner)
    inner = with_extra_args_support(inner)

    def init_fn(params):
        return inner.init(_concatenate(params))

    def update_fn(updates, state, params=None, **extra_args):
        flat_params = None if params is None else _concatenate(params)
        flat, state = inner.update(_concatenate(updates), state, flat_params, **extra_args)
        return _split_like(flat, updates), state

    return transformation(init_fn, update_fn, inner=(inner,))
