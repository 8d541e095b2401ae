"""The gradxform contract: types, ``GradientTransformation``, ``chain`` and friends.

A gradient transformation is a pair of pure functions::

    state = init(params)
    updates, state = update(updates, state, params=None, **extra_args)

``init`` depends only on the shapes and dtypes of ``params``; ``update`` maps a
tree of gradients (or of updates produced by an earlier transformation) to a
tree of updates of the same structure, shapes and dtypes. States are
``NamedTuple``\\ s (or tuples of them) whose leaves are arrays, so they pass
through ``jax.jit``, ``lax.scan``, checkpointing and sharding unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, TypeAlias

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree

Params: TypeAlias = chex.ArrayTree
"""A tree of parameters."""
Updates: TypeAlias = chex.ArrayTree
"""A tree of gradients or updates, with the structure of :data:`Params`."""
OptState: TypeAlias = chex.ArrayTree
"""The state of a transformation: a ``NamedTuple`` or a tuple of them."""
Schedule: TypeAlias = Callable[[chex.Numeric], chex.Numeric]
"""A pure function ``step -> value``."""
ScalarOrSchedule: TypeAlias = float | jax.Array | Schedule
"""A constant (Python float or JAX scalar) or a :data:`Schedule`."""
Mask: TypeAlias = chex.ArrayTree | Callable[[Any], Any] | None
"""Which leaves a transformation acts on: a tree of bools shaped like the params, a
function of the params returning one, or ``None`` for every leaf."""


class TransformInitFn(Protocol):
    def __call__(self, params: Params) -> OptState: ...


class TransformUpdateFn(Protocol):
    def __call__(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]: ...


class GradientTransformation(NamedTuple):
    """An optimizer or a building block of one: ``init`` and ``update``.

    Any object with ``init`` and ``update`` attributes of this form (an optax
    transformation, for example) can be used where a ``GradientTransformation``
    is expected.
    """

    init: TransformInitFn
    update: TransformUpdateFn


class GradientTransformationExtraArgs(GradientTransformation):
    """A transformation whose ``update`` accepts extra keyword arguments (``value=loss``, ...).

    Every gradxform transformation is one; :func:`with_extra_args_support`
    makes one of any transformation. The class exists under optax's name so
    that code checking ``isinstance(tx, GradientTransformationExtraArgs)`` works.
    """

    __slots__ = ()


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


def init_empty_state(params: Params) -> EmptyState:
    """The ``init`` of a stateless transformation: :class:`EmptyState` whatever the params."""
    del params
    return EmptyState()


# ------------------------------------------------------------------ declared properties

# The property ``flat`` reads, recorded on a transformation's ``update`` function: the
# names of the members that need a statistic of each leaf (a trust ratio, a factored
# moment, a per-leaf norm, a mask over the params' leaves), () when the transformation
# treats every coordinate alike or the whole tree at once, absent when undeclared.
_PER_LEAF = "__gradxform_per_leaf__"


def transformation(
    init_fn: TransformInitFn,
    update_fn: TransformUpdateFn,
    *,
    per_leaf: str | None = None,
    inner: Sequence[Any] = (),
) -> GradientTransformationExtraArgs:
    """Build a transformation and declare whether it needs each leaf's own statistics.

    Every gradxform transformation is made here. ``per_leaf`` names a
    transformation that computes a statistic of each leaf (so it cannot run on
    leaves concatenated into one buffer); a wrapper passes its ``inner``
    transformations and needs what they need. Neither: the transformation acts
    on each coordinate independently or on the whole tree at once.
    """
    members: tuple[str, ...] | None = (per_leaf,) if per_leaf is not None else ()
    for t in inner:
        theirs = per_leaf_members(t)
        members = None if members is None or theirs is None else members + theirs
    checked = _with_state_check(init_fn, update_fn)
    if members is not None:
        setattr(checked, _PER_LEAF, tuple(dict.fromkeys(members)))
    return GradientTransformationExtraArgs(init_fn, checked)


def _is_empty(state: Any) -> bool:
    """An empty container: ``EmptyState()``, ``()`` or ``{}`` (optax's stateless states)."""
    return isinstance(state, tuple | list | dict) and not state


def _with_state_check(init_fn: TransformInitFn, update_fn: TransformUpdateFn) -> TransformUpdateFn:
    """``update_fn``, explaining a failure caused by a state this transformation did not make.

    Costs nothing while updates succeed. When ``update_fn`` fails, the state is
    compared with the structure ``init_fn`` gives for these updates; a state of
    another transformation (or chain, or model) is then reported by its type
    and first differing key path instead of the error it caused inside.
    """
    who = getattr(update_fn, "__qualname__", "transformation").split(".<locals>")[0]

    def update(updates, state, params=None, **extra_args):
        if init_fn is init_empty_state and not (state is None or _is_empty(state)):
            _checks.empty_state(state, who)  # a stateless update would not notice
        try:
            return update_fn(updates, state, params, **extra_args)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
            _checks.check_state(state, init_fn, updates, who, error)
            raise

    update.__wrapped__ = update_fn  # type: ignore[attr-defined]
    return update


def per_leaf_members(tx: Any) -> tuple[str, ...] | None:
    """The members of ``tx`` that need per-leaf statistics; ``None`` if ``tx`` declares nothing."""
    return getattr(tx.update, _PER_LEAF, None)


def accepts_extra_args(update: Callable[..., Any]) -> bool:
    """Whether an ``update`` function takes ``**extra_args``."""
    try:
        parameters = inspect.signature(update).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def with_extra_args_support(tx: Any) -> GradientTransformationExtraArgs:
    """``tx`` as a transformation whose ``update`` accepts (and may ignore) extra arguments.

    Wrappers and :func:`chain` call this once, at construction, and then always
    forward extra keyword arguments. A transformation whose ``update`` takes
    ``**extra_args`` is returned as it is; any other gets an ``update`` that
    drops them. Declared properties are kept.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> plain = gx.GradientTransformation(lambda p: (), lambda u, s, p=None: (u, s))
      >>> tx = gx.with_extra_args_support(plain)
      >>> tx.update(jnp.ones(1), (), value=jnp.float32(3.0))[0]
      Array([1.], dtype=float32)
    """
    _checks.transformation("tx", tx)
    if isinstance(tx, GradientTransformationExtraArgs):
        return tx
    if accepts_extra_args(tx.update):
        return GradientTransformationExtraArgs(tx.init, tx.update)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        return tx.update(updates, state, params)

    members = per_leaf_members(tx)
    if members is not None:
        setattr(update_fn, _PER_LEAF, members)
    return GradientTransformationExtraArgs(tx.init, update_fn)


# ------------------------------------------------------------------ building blocks


def identity() -> GradientTransformationExtraArgs:
    """The transformation that returns its updates unchanged.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.identity()
      >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0]
      Array([1., 1.], dtype=float32)
    """

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return updates, state

    return transformation(init_empty_state, update_fn)


def _stateless_update(f: Callable[[Updates, Params | None], Updates]) -> TransformUpdateFn:
    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        return f(updates, params), state

    return update_fn


def stateless(
    f: Callable[[Updates, Params | None], Updates],
) -> GradientTransformationExtraArgs:
    """A transformation from a pure function ``f(updates, params) -> updates``.

    Nothing is assumed about ``f``: under :func:`gradxform.flat` it runs on the
    per-leaf tree unless ``flat(..., elementwise=True)`` says otherwise.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> halve = gx.stateless(lambda u, p: jax.tree.map(lambda x: x / 2, u))
      >>> halve.update(jnp.ones(2), halve.init(jnp.zeros(2)))[0]
      Array([0.5, 0.5], dtype=float32)
    """
    return GradientTransformationExtraArgs(init_empty_state, _stateless_update(f))


def stateless_with_tree_map(
    f: Callable[[chex.Array, chex.Array | None], chex.Array],
) -> GradientTransformationExtraArgs:
    """A transformation from a function ``f(update, param) -> update`` of one leaf.

    :func:`stateless` with the tree map done for you: ``f`` is applied to each
    leaf of the updates together with the matching leaf of the params, or with
    ``None`` when no params are given. Nothing is assumed about ``f``: under
    :func:`gradxform.flat` it runs on the per-leaf tree.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.stateless_with_tree_map(lambda u, p: u if p is None else u + p)
      >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)), jnp.full(2, 3.0))[0]
      Array([4., 4.], dtype=float32)
    """

    def update_fn(updates, state, params=None, **extra_args):
        del state, extra_args
        if params is None:
            return jax.tree.map(lambda u: f(u, None), updates), EmptyState()
        return jax.tree.map(f, updates, params), EmptyState()

    return GradientTransformationExtraArgs(init_empty_state, update_fn)


def from_function(
    f: Callable[[Updates, Params | None], Updates], *, per_leaf: str | None = None
) -> GradientTransformationExtraArgs:
    """:func:`stateless` for gradxform's own transformations, with the property declared."""
    return transformation(init_empty_state, _stateless_update(f), per_leaf=per_leaf)


def chain(*transforms: Any) -> GradientTransformationExtraArgs:
    """Apply transformations one after the other; the state is a tuple of theirs.

    Each member may be a gradxform transformation or any object with ``init``
    and ``update`` (optax transformations included). Extra keyword arguments
    given to ``update`` (``value=loss``, for example) reach every member
    (see :func:`with_extra_args_support`).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.chain(gx.scale_by_adam(), gx.scale_by_learning_rate(0.1))
      >>> updates, state = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
      >>> updates
      Array([-0.1, -0.1], dtype=float32)
    """
    for i, t in enumerate(transforms):
        _checks.transformation(f"chain argument {i}", t)
    members = tuple(with_extra_args_support(t) for t in transforms)

    def init_fn(params):
        return tuple(t.init(params) for t in members)

    def update_fn(updates, state, params=None, **extra_args):
        _checks.chain_state(state, len(members))
        new_state = []
        for t, s in zip(members, state, strict=True):
            updates, s = t.update(updates, s, params, **extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    return transformation(init_fn, update_fn, inner=members)


def apply_updates(params: Params, updates: Updates) -> Params:
    """Return ``params + updates``, each leaf keeping its parameter's dtype.

    The sum is computed in the wider of the two dtypes and cast back to the
    parameter's dtype. Leaves that are not floating point (integer or boolean
    parameters: counters, indices, masks) are returned unchanged, whatever the
    update, so they are never truncated. A ``None`` parameter (the whole tree or
    a leaf) stays ``None`` whatever its update, as in optax. A tree or shape
    mismatch raises an error naming the key path of the first offending leaf;
    nothing is broadcast.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.apply_updates({"w": jnp.ones(2)}, {"w": jnp.full(2, -0.5)})
      {'w': Array([0.5, 0.5], dtype=float32)}
    """
    updates = _drop_where_none(params, updates)
    _checks.check_same_layout(updates, params, what="updates", against="params")

    def add(p, u):
        p = jnp.asarray(p)
        if not jnp.issubdtype(p.dtype, jnp.inexact):
            return p
        dtype = _tree.promote(p.dtype, jnp.asarray(u).dtype)
        return (p.astype(dtype) + jnp.asarray(u).astype(dtype)).astype(p.dtype)

    return jax.tree.map(add, params, updates)


def _is_none(x: Any) -> bool:
    return x is None


def _drop_where_none(reference: Any, tree: Any) -> Any:
    """``tree`` with ``None`` wherever ``reference`` has a ``None`` leaf (optax's None handling).

    Left as it is when ``reference`` has no ``None`` or does not fit (the layout
    check then names the offending key path).
    """
    if not any(x is None for x in jax.tree.leaves(reference, is_leaf=_is_none)):
        return tree
    try:
        return jax.tree.map(
            lambda r, t: None if r is None else t, reference, tree, is_leaf=_is_none
        )
    except (ValueError, TypeError):
        return tree
