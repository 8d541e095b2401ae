"""A flat-buffer engine: optimizer state kept in one contiguous buffer per dtype.

A model with many small parameter arrays pays, with the per-leaf path, one set
of kernels per leaf at every step and one set of HLO ops per leaf at compile
time. :func:`flat` wraps any transformation so that its state lives in one
flat buffer per parameter dtype and its update runs once over the
concatenated gradients::

    flat_grads[dtype] = concatenate([g.ravel() for g in leaves of that dtype])
    flat_updates, state = tx.update(flat_grads, state, flat_params)
    updates = flat_updates split back into the leaves' shapes

The results are those of ``tx`` itself whenever ``tx`` treats every
coordinate independently or the whole tree at once (Adam and its family, SGD
with momentum, RMSProp, AdaGrad, Lion, global-norm clipping, schedules).
Transformations that compute a statistic per leaf (LAMB's and LARS' trust
ratios, Adafactor's factored moments, ``clip_by_block_rms``) need
``elementwise=False``: the state is then still stored in one buffer per
dtype, but unpacked into its per-leaf tree around each update, so the result
is exactly the per-leaf one.

For the fewest HLO ops and kernels, keep the parameters themselves flat
(:func:`flatten_params`) and unflatten them only inside the loss: the
gradients then arrive as flat buffers and the whole optimizer step is one
update per dtype, whatever the number of leaves.

Integer and boolean leaves pass through unchanged, as with every
transformation. Under ``jit``, ``vmap`` and ``lax.scan`` the wrapper behaves
like ``tx``. With sharded parameters, leaves larger than ``max_leaf_size``
keep their own buffer and so their parameter's sharding; the concatenated
buffer of the small leaves is laid out as XLA chooses (give it an explicit
sharding through ``jit``'s ``out_shardings`` if it matters).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _sharding, _tree
from gradxform._base import (
    GradientTransformation,
    OptState,
    Params,
    Updates,
    per_leaf_members,
    transformation,
    with_extra_args_support,
)

__all__ = ["DEFAULT_MAX_LEAF_SIZE", "FlatState", "Layout", "flat", "flatten_params"]

DEFAULT_MAX_LEAF_SIZE = 2**16
"""Leaves larger than this keep their own buffer in :func:`flat` (see its docstring)."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each floating-point leaf of a tree lives in the flat buffers.

    Attributes:
      treedef: the tree's structure.
      shapes: the shape of every leaf, in tree order.
      groups: for each buffer key (a dtype name), the indices of its leaves in
        tree order; leaves in no group (integer, boolean) pass through.
    """

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    groups: tuple[tuple[str, tuple[int, ...]], ...]

    @classmethod
    def of(cls, tree: chex.ArrayTree, max_leaf_size: int | None = None) -> Layout:
        """The layout of ``tree`` (arrays or ``ShapeDtypeStruct``\\ s), grouped by dtype.

        Leaves with more than ``max_leaf_size`` elements get a group of their
        own (keyed ``"<dtype>/<index>"``) and keep their shape, so they are
        never copied; ``None`` puts every leaf of a dtype in one group.
        """
        leaves, treedef = jax.tree.flatten(tree)
        groups: dict[str, list[int]] = {}
        for i, x in enumerate(leaves):
            if _tree.is_inexact(x):
                name = np.dtype(x.dtype).name
                if max_leaf_size is not None and _size(np.shape(x)) > max_leaf_size:
                    name = f"{name}/{i:06d}"
                groups.setdefault(name, []).append(i)
        return cls(
            treedef,
            tuple(tuple(np.shape(x)) for x in leaves),
            tuple((k, tuple(v)) for k, v in sorted(groups.items())),
        )

    def size(self, key: str) -> int:
        """The number of elements in buffer ``key``."""
        return sum(_size(self.shapes[i]) for i in dict(self.groups)[key])

    def flatten(self, tree: chex.ArrayTree) -> dict[str, chex.Array]:
        """One buffer per group: its leaves raveled and concatenated in tree order.

        Leaves of one group that differ in dtype are concatenated in their
        promoted dtype.
        """
        leaves = jax.tree.leaves(tree)
        out = {}
        for key, idx in self.groups:
            parts = [jnp.asarray(leaves[i]) for i in idx]
            if "/" in key:  # a large leaf in a buffer of its own keeps its shape
                out[key] = parts[0]
                continue
            dtype = _tree.promote(*(p.dtype for p in parts))
            parts = [_sharding.replicated(p).reshape(-1).astype(dtype) for p in parts]
            out[key] = parts[0] if len(parts) == 1 else jnp.concatenate(parts)
        return out

    def flatten_abstract(self, tree: chex.ArrayTree) -> dict[str, jax.ShapeDtypeStruct]:
        """Like :meth:`flatten` for a tree of ``ShapeDtypeStruct``\\ s: the buffers' shapes."""
        leaves = jax.tree.leaves(tree)
        return {
            key: jax.ShapeDtypeStruct(
                self.shapes[idx[0]] if "/" in key else (self.size(key),), leaves[idx[0]].dtype
            )
            for key, idx in self.groups
        }

    def unflatten(
        self,
        buffers: dict[str, chex.Array],
        rest: chex.ArrayTree,
        like: chex.ArrayTree | None = None,
    ) -> chex.ArrayTree:
        """Split the buffers back into leaves; leaves in no group are taken from ``rest``.

        Each leaf is cast to the dtype of the matching leaf of ``like`` (default
        ``rest``).
        """
        leaves = list(jax.tree.leaves(rest))
        targets = list(jax.tree.leaves(rest if like is None else like))
        dtypes = [_tree.dtype_of(x) for x in targets]

        def leaf(i: int, part: chex.Array) -> chex.Array:
            return _sharding.sharded_like(
                part.reshape(self.shapes[i]).astype(dtypes[i]), targets[i]
            )

        for key, idx in self.groups:
            buf = buffers[key]
            if len(idx) == 1:
                leaves[idx[0]] = leaf(idx[0], buf)
                continue
            offsets = np.cumsum([_size(self.shapes[i]) for i in idx])[:-1]
            for i, part in zip(idx, jnp.split(buf, offsets), strict=True):
                leaves[i] = leaf(i, part)
        return jax.tree.unflatten(self.treedef, leaves)


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _is_abstract(tree: chex.ArrayTree) -> bool:
    return any(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(tree))


def flatten_params(
    params: Params,
) -> tuple[dict[str, chex.Array], Callable[[dict[str, chex.Array]], Params]]:
    """Parameters as one flat buffer per dtype, and the function that restores the tree.

    Keep the flat buffers as the parameters of the training loop and call
    ``unflatten`` inside the loss: gradients then come out flat too, and any
    transformation updates each dtype's buffer in one pass. Integer and
    boolean leaves are kept by ``unflatten`` as they were.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> from gradxform import flatten_params
      >>> params = {"b": jnp.zeros(2), "w": jnp.ones((2, 2))}
      >>> flat_params, unflatten = flatten_params(params)
      >>> flat_params["float32"].shape
      (6,)
      >>> loss = lambda fp: jnp.sum(unflatten(fp)["w"] ** 2)
      >>> tx = gx.sgd(0.25)
      >>> updates, _ = tx.update(jax.grad(loss)(flat_params), tx.init(flat_params))
      >>> unflatten(gx.apply_updates(flat_params, updates))["w"]
      Array([[0.5, 0.5],
             [0.5, 0.5]], dtype=float32)
    """
    layout = Layout.of(params)
    buffers = layout.flatten(params)

    def unflatten(flat_params: dict[str, chex.Array]) -> Params:
        return layout.unflatten(flat_params, params)

    return buffers, unflatten


class FlatState(NamedTuple):
    """The state of :func:`flat`.

    ``inner`` is the wrapped transformation's state: with ``elementwise=True``
    its state for the flat buffers (a dict of one buffer per dtype wherever it
    keeps a per-parameter moment); with ``elementwise=False`` its per-leaf
    state packed into one buffer per dtype.
    """

    inner: OptState


def flat(
    tx: Any, *, elementwise: bool | None = None, max_leaf_size: int | None = DEFAULT_MAX_LEAF_SIZE
) -> GradientTransformation:
    """Keep ``tx``'s state in one flat buffer per dtype and update all leaves in one pass.

    On the fast path ``tx`` is applied to the gradients raveled and
    concatenated per dtype, and its updates are split back into the leaves:
    one kernel per dtype instead of one per leaf. That gives ``tx``'s own
    results only when ``tx`` treats every coordinate alike or the whole tree at
    once (the moment methods, momentum, global-norm clipping, schedules). A
    transformation that needs a statistic of each leaf (LAMB's and LARS' trust
    ratios, Adafactor's factored moments, ``clip_by_block_rms``, masks) instead
    runs on the per-leaf tree, with its state packed into one buffer per dtype
    between steps: exact, but it saves no kernels.

    Every gradxform transformation declares which it is, and ``flat`` reads
    that (``elementwise=None``): the result is always the per-leaf one. A
    transformation that declares nothing (an optax one, or one built with
    :func:`gradxform.stateless`) takes the exact packed path unless
    ``elementwise=True`` says it is safe to concatenate; ``elementwise=True``
    on a transformation that declares a per-leaf member is an error naming it.
    ``elementwise=False`` always takes the packed path.

    Concatenating copies the gradients and splitting copies the updates, which
    for a large leaf costs more than the kernel launch it saves; so on the fast
    path leaves of more than ``max_leaf_size`` elements keep a buffer of their
    own (the leaf itself, not copied) and only the smaller ones are concatenated.

    Args:
      tx: any transformation (gradxform or optax).
      elementwise: ``None`` (read what ``tx`` declares), ``True`` (concatenate;
        an error if ``tx`` declares a per-leaf member) or ``False`` (per-leaf tree).
      max_leaf_size: leaves with more elements keep their own buffer; ``None``
        concatenates every leaf of a dtype.

    Returns:
      A transformation with the same updates as ``tx`` and a :class:`FlatState`.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> params = {"b": jnp.zeros(2), "w": jnp.ones((2, 2))}
      >>> tx = gx.flat(gx.adam(0.1))
      >>> state = tx.init(params)
      >>> state.inner[0].mu["float32"].shape  # one buffer for both leaves
      (6,)
      >>> grads = jax.tree.map(jnp.ones_like, params)
      >>> updates, state = jax.jit(tx.update)(grads, state, params)
      >>> updates["w"]
      Array([[-0.1, -0.1],
             [-0.1, -0.1]], dtype=float32)
    """
    _checks.transformation("tx", tx)
    if elementwise is not None and not isinstance(elementwise, bool):
        raise TypeError(f"elementwise={elementwise!r} must be None, True or False")
    if max_leaf_size is not None:
        _checks.integer("max_leaf_size", max_leaf_size, low=1)
    members = per_leaf_members(tx)
    if elementwise and members:
        raise ValueError(
            f"flat(tx, elementwise=True): {', '.join(members)} in tx computes a statistic of "
            f"each leaf, which a concatenated buffer would change; leave elementwise=None to "
            f"run it on the per-leaf tree"
        )
    concatenate = members == () if elementwise is None else elementwise
    tx = with_extra_args_support(tx)
    if concatenate:
        return _flat_elementwise(tx, max_leaf_size)
    return _flat_packed(tx)


def _flat_elementwise(tx: Any, max_leaf_size: int | None) -> GradientTransformation:
    def init_fn(params: Params) -> FlatState:
        layout = Layout.of(params, max_leaf_size)
        if _is_abstract(params):
            buffers: Any = layout.flatten_abstract(params)
        else:
            buffers = layout.flatten(params)
        return FlatState(inner=tx.init(buffers))

    def update_fn(
        updates: Updates, state: FlatState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, FlatState]:
        if params is not None:
            _checks.check_same_layout(updates, params, what="updates", against="params")
        layout = Layout.of(updates if params is None else params, max_leaf_size)
        flat_updates = layout.flatten(updates)
        flat_params = None if params is None else layout.flatten(params)
        new_updates, inner = tx.update(flat_updates, state.inner, flat_params, **extra_args)
        return layout.unflatten(new_updates, updates), FlatState(inner=inner)

    return transformation(init_fn, update_fn, inner=(tx,))


def _flat_packed(tx: Any) -> GradientTransformation:
    def state_layout(params: Params) -> _PackedLayout:
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(np.shape(x), _tree.dtype_of(x)), params
        )
        return _PackedLayout.of(jax.eval_shape(tx.init, abstract))

    def init_fn(params: Params) -> FlatState:
        inner = tx.init(params)
        return FlatState(inner=_PackedLayout.of(inner).pack(inner))

    def update_fn(
        updates: Updates, state: FlatState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, FlatState]:
        packing = state_layout(updates if params is None else params)
        inner = packing.unpack(state.inner)
        new_updates, inner = tx.update(updates, inner, params, **extra_args)
        new_updates = jax.tree.map(_sharding.sharded_like, new_updates, updates)
        return new_updates, FlatState(inner=packing.pack(inner))

    return transformation(init_fn, update_fn, inner=(tx,))


@dataclasses.dataclass(frozen=True)
class _PackedLayout:
    """Every leaf of a state tree (of any dtype) in one buffer per dtype."""

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype, ...]

    @classmethod
    def of(cls, tree: chex.ArrayTree) -> _PackedLayout:
        leaves, treedef = jax.tree.flatten(tree)
        return cls(
            treedef,
            tuple(tuple(np.shape(x)) for x in leaves),
            tuple(np.dtype(x.dtype) for x in leaves),
        )

    def _groups(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for i, d in enumerate(self.dtypes):
            groups.setdefault(d.name, []).append(i)
        return dict(sorted(groups.items()))

    def pack(self, tree: chex.ArrayTree) -> dict[str, chex.Array]:
        leaves = jax.tree.leaves(tree)
        if len(leaves) != len(self.shapes):
            raise ValueError(f"state has {len(leaves)} leaves, expected {len(self.shapes)}")
        out = {}
        for key, idx in self._groups().items():
            parts = [_sharding.replicated(jnp.asarray(leaves[i])).reshape(-1) for i in idx]
            out[key] = parts[0] if len(parts) == 1 else jnp.concatenate(parts)
        return out

    def unpack(self, buffers: dict[str, chex.Array]) -> chex.ArrayTree:
        leaves: list[Any] = [None] * len(self.shapes)
        for key, idx in self._groups().items():
            buf = buffers[key]
            sizes = [_size(self.shapes[i]) for i in idx]
            if buf.shape != (sum(sizes),):
                raise ValueError(
                    f"packed state buffer '{key}' has shape {buf.shape}, "
                    f"expected ({sum(sizes)},): the state does not belong to "
                    f"these parameters"
                )
            parts = [buf] if len(idx) == 1 else jnp.split(buf, np.cumsum(sizes)[:-1])
            for i, part in zip(idx, parts, strict=True):
                leaves[i] = part.reshape(self.shapes[i])
        return jax.tree.unflatten(self.treedef, leaves)
