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
from collections.abc import Callable
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


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


def identity() -> GradientTransformation:
    """The transformation that returns its updates unchanged.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.identity()
      >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0]
      Array([1., 1.], dtype=float32)
    """

    def init_fn(params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return updates, state

    return GradientTransformation(init_fn, update_fn)


def stateless(
    f: Callable[[Updates, Params | None], Updates],
) -> GradientTransformation:
    """A transformation from a pure function ``f(updates, params) -> updates``.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> halve = gx.stateless(lambda u, p: jax.tree.map(lambda x: x / 2, u))
      >>> halve.update(jnp.ones(2), halve.init(jnp.zeros(2)))[0]
      Array([0.5, 0.5], dtype=float32)
    """

    def init_fn(params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        return f(updates, params), state

    return GradientTransformation(init_fn, update_fn)


def accepts_extra_args(update: Callable[..., Any]) -> bool:
    """Whether an ``update`` function takes ``**extra_args`` (so wrappers may forward them)."""
    try:
        parameters = inspect.signature(update).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def chain(*transforms: Any) -> GradientTransformation:
    """Apply transformations one after the other; the state is a tuple of theirs.

    Each member may be a gradxform transformation or any object with ``init``
    and ``update`` (optax transformations included). Extra keyword arguments
    given to ``update`` (``value=loss``, for example) are passed to each member
    whose ``update`` accepts ``**extra_args``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.chain(gx.scale_by_adam(), gx.scale_by_learning_rate(0.1))
      >>> updates, state = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
      >>> updates
      Array([-0.1, -0.1], dtype=float32)
    """
    for i, t in enumerate(transforms):
        _checks.transformation(f"chain argument {i}", t)
    forwards = tuple(accepts_extra_args(t.update) for t in transforms)

    def init_fn(params):
        return tuple(t.init(params) for t in transforms)

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise ValueError(
                f"chain of {len(transforms)} transformations got a state that is not a "
                f"tuple of {len(transforms)} states: {type(state).__name__}"
            )
        new_state = []
        for t, s, forward in zip(transforms, state, forwards, strict=True):
            extra = extra_args if forward else {}
            updates, s = t.update(updates, s, params, **extra)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init_fn, update_fn)


def apply_updates(params: Params, updates: Updates) -> Params:
    """Return ``params + updates``, each leaf keeping its parameter's dtype.

    The sum is computed in the wider of the two dtypes and cast back to the
    parameter's dtype. Leaves that are not floating point (integer or boolean
    parameters: counters, indices, masks) are returned unchanged, whatever the
    update, so they are never truncated. A tree or shape mismatch raises an
    error naming the key path of the first offending leaf; nothing is broadcast.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.apply_updates({"w": jnp.ones(2)}, {"w": jnp.full(2, -0.5)})
      {'w': Array([0.5, 0.5], dtype=float32)}
    """
    _tree.check_same_layout(updates, params, what="updates", against="params")

    def add(p, u):
        p = jnp.asarray(p)
        if not jnp.issubdtype(p.dtype, jnp.inexact):
            return p
        dtype = _tree.promote(p.dtype, jnp.asarray(u).dtype)
        return (p.astype(dtype) + jnp.asarray(u).astype(dtype)).astype(p.dtype)

    return jax.tree.map(add, params, updates)
