"""``cautious``: the Cautious mask of Liang et al. (2024) around any optimizer."""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformationExtraArgs, transformation, with_extra_args_support


def cautious(inner: Any, *, eps: float | None = None) -> GradientTransformationExtraArgs:
    """Keep only the coordinates of an update that move against the gradient (Liang, Chen,
    Liu & Liu, 2024, "Cautious Optimizers: Improving Training with One Line of Code").

    ``inner`` is a complete optimizer: its update ``u`` is added to the params. For each
    leaf, with ``g`` the gradient given to ``update`` and ``n`` the leaf's size::

        phi = [u * g < 0]                     (the step -u agrees in sign with g)
        u_c = u * phi / (mean(phi) + eps)     eps=None:  u * phi * n / (sum(phi) + 1)

    The rescaling keeps the update's average size when part of it is masked. The
    default, ``eps = 1 / n`` per leaf, is the normalisation of the authors' code and of
    pytorch-optimizer's ``cautious=True`` (``n / (nnz + 1)``); a float ``eps`` gives
    ``1 / (mean(phi) + eps)``. A complex coordinate is kept when ``Re(u conj(g)) < 0``.
    C-AdamW is ``cautious(adamw(...))`` and C-Lion ``cautious(lion(...))``; note that
    a weight decay inside ``inner`` is masked with the rest of its update (chain the decay
    outside the wrapper to leave it unmasked). The state is ``inner``'s.

    Args:
      inner: the optimizer whose updates are masked.
      eps: positive term added to the fraction of kept coordinates; ``None``: ``1 / n``.

    Returns:
      A transformation with ``inner``'s state.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.cautious(gx.sgd(1.0, momentum=0.9))
      >>> state = tx.init(jnp.zeros(3))
      >>> u, state = tx.update(jnp.array([1.0, 1.0, 1.0]), state)
      >>> u, state = tx.update(jnp.array([-0.5, 1.0, 3.0]), state)
      >>> u  # -(0.4, 1.9, 3.9): the first coordinate is masked, the rest scaled 3 / (2 + 1)
      Array([ 0. , -1.9, -3.9], dtype=float32)
    """
    _checks.transformation("inner", inner)
    if eps is not None:
        _checks.positive("eps", eps, allow_schedule=False)
    inner = with_extra_args_support(inner)

    def mask(u: chex.Array, g: chex.Array) -> chex.Array:
        u32 = _tree.to_compute(u)
        agree = jnp.real(u32 * jnp.conj(_tree.to_compute(g).astype(u32.dtype))) < 0
        real = _tree.real_dtype(u32.dtype)
        phi = agree.astype(real)
        floor = jnp.asarray(1.0 / max(phi.size, 1) if eps is None else eps, real)
        scale = 1.0 / (jnp.mean(phi) + floor)
        kept = jnp.where(agree, u32 * scale.astype(u32.dtype), jnp.zeros([], u32.dtype))
        return _tree.cast_like(kept, u)

    def update_fn(updates, state, params=None, **extra_args):
        new, state = inner.update(updates, state, params, **extra_args)
        _checks.check_same_layout(new, updates, what="inner updates", against="gradients")
        return _tree.map_inexact(mask, new, updates), state

    return transformation(inner.init, update_fn, per_leaf="cautious", inner=[inner])
