"""Per-example clipping: clip each example's gradient before averaging over the batch."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _tree
from gradxform._base import EmptyState

ClipState = EmptyState
"""The state of :func:`clip` (optax's name for it): an :class:`EmptyState`."""
ClipByGlobalNormState = EmptyState
"""The state of :func:`clip_by_global_norm` (optax's name for it): an :class:`EmptyState`."""
AdaptiveGradClipState = EmptyState
"""The state of :func:`adaptive_grad_clip` (optax's name for it): an :class:`EmptyState`."""

_NONFINITE = ("zero", "nan")


def check_batch(grads: chex.ArrayTree, who: str, what: str = "grads") -> list[Any]:
    """Raise, naming the key path, unless every leaf has the same batch size on axis 0."""
    leaves = jax.tree.leaves(grads)
    if not leaves:
        raise ValueError(f"{who}: {what} has no leaves")
    batch = jnp.shape(leaves[0])[0] if jnp.ndim(leaves[0]) >= 1 else None
    for path, g in _tree.leaf_paths(grads):
        if jnp.ndim(g) < 1 or jnp.shape(g)[0] != batch:
            raise ValueError(
                f"{who} expects every leaf of {what} to have the batch on axis 0 "
                f"(size {batch}); leaf '{path}' has shape {jnp.shape(g)}"
            )
    return leaves


def per_example_global_norm_clip(
    grads: chex.ArrayTree, l2_norm_clip: chex.Numeric
) -> tuple[chex.ArrayTree, chex.Array]:
    """Clip each example's gradient to global norm ``l2_norm_clip``, then sum over examples.

    Every leaf of ``grads`` holds one gradient per example on axis 0 (DP-SGD;
    Abadi et al., 2016, "Deep Learning with Differential Privacy")::

        n_b = sqrt(sum_leaves ||g_leaf[b]||**2)            (example b's global norm)
        c_b = min(l2_norm_clip / n_b, 1)                   (1 where n_b = 0)
        out_leaf = sum_b c_b g_leaf[b]

    Returns the tree of sums and the number of examples whose gradient was
    scaled down (``c_b < 1``). The norms and the sums are computed in at least
    float32; each sum is returned in its leaf's dtype (float32 for an integer leaf).

    Args:
      grads: a tree of per-example gradients, batch on axis 0 of every leaf.
      l2_norm_clip: the largest global norm of one example's gradient.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> grads = [jnp.array([[0.0, 0.0, 0.0], [0.0, 3.0, 4.0], [4.0, 0.0, 3.0]])]
      >>> gx.per_example_global_norm_clip(grads, 1.25)
      ([Array([1.  , 0.75, 1.75], dtype=float32)], Array(2, dtype=int32))
    """
    check_batch(grads, "per_example_global_norm_clip")
    sums, clipped = clipped_sums(grads, l2_norm_clip)

    def cast(g, s):
        return s.astype(jnp.asarray(g).dtype) if _tree.is_inexact(g) else s

    return jax.tree.map(cast, grads, sums), clipped


def clipped_sums(
    grads: chex.ArrayTree, l2_norm_clip: chex.Numeric
) -> tuple[chex.ArrayTree, chex.Array]:
    """The math of :func:`per_example_global_norm_clip`, the sums kept in at least float32.

    ``grads`` has already been checked by :func:`check_batch`.
    """
    leaves = jax.tree.leaves(grads)
    sq = sum(jnp.sum(_tree.abs_sq(g).reshape(jnp.shape(g)[0], -1), axis=1) for g in leaves)
    norms = jnp.sqrt(sq)
    limit = jnp.asarray(l2_norm_clip, norms.dtype)
    factors = jnp.nan_to_num(jnp.minimum(limit / norms, jnp.ones([], norms.dtype)), nan=1.0)
    clipped = jnp.sum(factors < 1).astype(jnp.int32)

    def total(g):
        gc = _tree.to_compute(jnp.asarray(g))
        return jnp.tensordot(factors.astype(gc.dtype), gc, axes=1)

    return jax.tree.map(total, grads), clipped


def per_example_layer_norm_clip(
    grads: chex.ArrayTree, global_l2_norm_clip: chex.Numeric, uniform: bool = True
) -> tuple[chex.ArrayTree, chex.ArrayTree]:
    """Clip each example's gradient leaf by leaf (per layer), then sum over examples.

    Each of the ``K`` leaves is clipped as :func:`per_example_global_norm_clip`
    would clip it alone, to its own bound (McMahan et al., 2018, "Learning
    Differentially Private Recurrent Language Models")::

        uniform=True:    C_i = global_l2_norm_clip / sqrt(K)
        uniform=False:   C_i = global_l2_norm_clip * sqrt(D_i / D)
                         (D_i entries per example in leaf i, D in all leaves)

    so that the clipped per-example gradient has global norm at most
    ``global_l2_norm_clip``. Returns the tree of sums and a tree (same
    structure) of the number of examples clipped in each leaf.

    Args:
      grads: a tree of per-example gradients, batch on axis 0 of every leaf.
      global_l2_norm_clip: the overall bound ``C``.
      uniform: share ``C`` equally between the leaves, or by their sizes.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> grads = [jnp.array([[0.0, 3.0, 4.0], [4.0, 0.0, 3.0]])]
      >>> gx.per_example_layer_norm_clip(grads, 2.5)
      ([Array([2. , 1.5, 3.5], dtype=float32)], [Array(2, dtype=int32)])
    """
    leaves = check_batch(grads, "per_example_layer_norm_clip")
    if uniform:
        k = len(leaves)
        bounds = jax.tree.map(lambda _: global_l2_norm_clip * (1.0 / k) ** 0.5, grads)
    else:
        total = sum(int(np.prod(jnp.shape(g)[1:])) for g in leaves)
        bounds = jax.tree.map(
            lambda g: global_l2_norm_clip * (int(np.prod(jnp.shape(g)[1:])) / total) ** 0.5, grads
        )
    result = jax.tree.map(per_example_global_norm_clip, grads, bounds)
    return jax.tree.transpose(
        outer_treedef=jax.tree.structure(grads),
        inner_treedef=jax.tree.structure((0, 0)),
        pytree_to_transpose=result,
    )
