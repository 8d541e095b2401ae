"""Random trees, and finding and replacing values inside optimizer states by key or name.

optax's names and semantics (``optax.tree_utils`` / ``optax.tree``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import chex
import jax

PyTree = Any
KeyEntry = Any
KeyPath = tuple[KeyEntry, ...]
Filter = Callable[[KeyPath, Any], bool]


# ------------------------------------------------------------------------ random trees


def tree_split_key_like(rng_key: chex.PRNGKey, target_tree: PyTree) -> PyTree:
    """One fresh key per leaf of ``target_tree``, in a tree of the same structure."""
    leaves, treedef = jax.tree.flatten(target_tree)
    return jax.tree.unflatten(treedef, list(jax.random.split(rng_key, len(leaves))))


def tree_random_like(
    rng_key: chex.PRNGKey,
    target_tree: PyTree,
    sampler: Callable[..., Any] = jax.random.normal,
    dtype: Any | None = None,
) -> PyTree:
    """A tree of random arrays shaped (and sharded) like the leaves of ``target_tree``.

    Args:
      rng_key: the key to split, one key per leaf.
      target_tree: a tree of arrays.
      sampler: ``sampler(key, shape, dtype)`` (optionally with an
        ``out_sharding`` keyword), ``jax.random.normal`` by default.
      dtype: the dtype of the samples; ``None`` uses each leaf's dtype.
    """
    keys = tree_split_key_like(rng_key, target_tree)
    try:
        sharded = "out_sharding" in inspect.signature(sampler).parameters
    except (TypeError, ValueError):
        sharded = False

    def sample(leaf: Any, key: Any) -> Any:
        d = dtype or leaf.dtype
        if sharded:
            return sampler(key, leaf.shape, d, out_sharding=jax.typeof(leaf).sharding)
        return sampler(key, leaf.shape, d)

    return jax.tree.map(sample, target_tree, keys)


def tree_unwrap_random_key_data(input_tree: PyTree) -> PyTree:
    """Typed PRNG keys replaced by their raw ``jax.random.key_data`` (for comparisons)."""

    def unwrap(x: Any) -> Any:
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.key_data(x)
        return x

    return jax.tree.map(unwrap, input_tree)


# ------------------------------------------------------------------------ state access


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """A key-path entry for the field ``name`` of a NamedTuple of class ``tuple_name``.

    The paths that :func:`tree_get_all_with_path` returns (and that the
    ``filtering`` functions of :func:`tree_get` and :func:`tree_set` receive)
    use it instead of ``jax.tree_util.GetAttrKey`` for NamedTuple fields, so a
    filter can tell ``ScaleByAdamState.count`` from ``ScaleByLionState.count``.
    """

    tuple_name: str
    name: str

    def __str__(self) -> str:
        return f"{self.tuple_name}.{self.name}"


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _has_key(node: Any, keys: Iterable[Any]) -> bool:
    """Whether a dict holds one of ``keys``, or a NamedTuple has it as a field or class name."""
    if _is_namedtuple(node):
        return any(k in node._fields or k == type(node).__name__ for k in keys)
    if isinstance(node, dict):
        return any(k in node for k in keys)
    return False


def _children(path: KeyPath, node: Any) -> list[tuple[KeyPath, Any, Any]]:
    """``(path, key, child)`` for the fields of a NamedTuple or the items of a dict."""
    if _is_namedtuple(node):
        name = type(node).__name__
        return [((*path, NamedTupleKey(name, f)), f, getattr(node, f)) for f in node._fields]
    if isinstance(node, dict):
        return [((*path, jax.tree_util.DictKey(k)), k, v) for k, v in node.items()]
    raise ValueError(f"Subtree must be a dict or a NamedTuple. Got {type(node)}")


def _outermost(
    tree: PyTree, stop: Callable[[Any], bool], path: KeyPath = ()
) -> list[tuple[KeyPath, Any]]:
    """The nodes where ``stop`` holds and the leaves outside them, with NamedTuple-aware paths."""
    out: list[tuple[KeyPath, Any]] = []
    flat = jax.tree_util.tree_flatten_with_path(
        tree, is_leaf=lambda x: stop(x) or _is_namedtuple(x)
    )[0]
    for p, node in flat:
        if _is_namedtuple(node) and not stop(node):
            for child_path, _, child in _children((*path, *p), node):
                out += _outermost(child, stop, child_path)
        else:
            out.append(((*path, *p), node))
    return out


def _find(tree: PyTree, key: Any, path: KeyPath = ()) -> list[tuple[KeyPath, Any]]:
    """Every match of ``key``: the outermost ones first, then those nested in each."""
    has = functools.partial(_has_key, keys=(key,))
    tops = [(p, n) for p, n in _outermost(tree, has, path) if has(n)]
    found = []
    for p, node in tops:
        if _is_namedtuple(node) and type(node).__name__ == key:
            found.append((p, node))
        elif _is_namedtuple(node):
            found.append(((*p, NamedTupleKey(type(node).__name__, key)), getattr(node, key)))
        else:
            found.append(((*p, jax.tree_util.DictKey(key)), node[key]))
    for p, node in tops:
        for child_path, _, child in _children(p, node):
            found += _find(child, key, child_path)
    return found


def tree_get_all_with_path(
    tree: PyTree, key: Any, filtering: Filter | None = None
) -> list[tuple[KeyPath, Any]]:
    """Every value of ``key`` in ``tree``, with its path.

    A value matches when it is the entry ``key`` of a dict, the field ``key``
    of a NamedTuple, or a NamedTuple whose class is named ``key``. Paths are
    tuples of ``jax.tree_util`` key entries, with :class:`NamedTupleKey` for
    NamedTuple fields; ``jax.tree_util.keystr`` prints them.

    Args:
      tree: the tree to search (an optimizer state, typically).
      key: the dict key, field name or NamedTuple class name to look for.
      filtering: an optional ``filtering(path, value) -> bool`` that keeps a
        match only when it returns true.

    Returns:
      A list of ``(path, value)``.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> from gradxform import tree
      >>> state = gx.adam(1e-3).init(jnp.zeros(2))
      >>> [(jax.tree_util.keystr(p), v) for p, v in tree.tree_get_all_with_path(state, "count")]
      [('[0]ScaleByAdamState.count', Array(0, dtype=int32))]
    """
    found = _find(tree, key)
    if filtering is not None:
        found = [(p, v) for p, v in found if filtering(p, v)]
    return found


def tree_get(
    tree: PyTree, key: Any, default: Any | None = None, filtering: Filter | None = None
) -> Any:
    """The single value of ``key`` in ``tree`` (see :func:`tree_get_all_with_path`).

    Returns ``default`` when there is none and raises ``KeyError`` when there
    are several (narrow them with ``filtering``).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> from gradxform import tree
      >>> tree.tree_get(gx.adam(1e-3).init(jnp.zeros(2)), "count")
      Array(0, dtype=int32)
    """
    found = tree_get_all_with_path(tree, key, filtering=filtering)
    if len(found) > 1:
        raise KeyError(f"Found multiple values for '{key}' in {tree}.")
    return found[0][1] if found else default


def _one_level(node: Any) -> tuple[list[tuple[KeyPath, Any]], Any] | None:
    """The direct children of a pytree node with their key entries, or ``None`` for a leaf."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    if len(flat) == 1 and flat[0][0] == () and flat[0][1] is node:
        return None
    return flat, treedef


def tree_set(tree: PyTree, filtering: Filter | None = None, /, **kwargs: Any) -> PyTree:
    """A copy of ``tree`` with the values of the given keys replaced.

    Every value found by :func:`tree_get_all_with_path` for a keyword (and
    kept by ``filtering``) is replaced by the keyword's value; a keyword
    naming a NamedTuple class replaces the whole NamedTuple.

    Args:
      tree: the tree to copy.
      filtering: an optional ``filtering(path, value) -> bool`` restricting
        which matches are replaced (positional only).
      **kwargs: ``key=new_value`` pairs.

    Returns:
      A tree of the same structure.

    Raises:
      KeyError: when a key matches nothing (after ``filtering``).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> from gradxform import tree
      >>> state = tree.tree_set(gx.adam(1e-3).init(jnp.zeros(2)), count=jnp.asarray(5))
      >>> tree.tree_get(state, "count")
      Array(5, dtype=int32, weak_type=True)
    """
    for key in kwargs:
        if not tree_get_all_with_path(tree, key, filtering):
            how = " given the filtering operation" if filtering else ""
            raise KeyError(f"Found no values matching '{key}'{how} in {tree}")

    def keep(path: KeyPath, value: Any) -> bool:
        return filtering is None or filtering(path, value)

    def rebuild(path: KeyPath, node: Any) -> Any:
        if _is_namedtuple(node) and type(node).__name__ in kwargs and keep(path, node):
            return kwargs[type(node).__name__]
        if _has_key(node, kwargs):
            new = {}
            for child_path, k, child in _children(path, node):
                new[k] = (
                    kwargs[k]
                    if k in kwargs and keep(child_path, child)
                    else rebuild(child_path, child)
                )
            if _is_namedtuple(node):
                return node._replace(**new)
            return new if type(node) is dict else type(node)(new)
        level = _one_level(node)
        if level is None:
            return node
        flat, treedef = level
        if _is_namedtuple(node):
            name = type(node).__name__
            entries = [(*path, NamedTupleKey(name, f)) for f in node._fields]
        else:
            entries = [(*path, *p) for p, _ in flat]
        return jax.tree.unflatten(
            treedef, [rebuild(e, c) for e, (_, c) in zip(entries, flat, strict=True)]
        )

    return rebuild((), tree)


@jax.tree_util.register_pytree_node_class
class _ParamsMarker:
    """An empty pytree standing for the params when an optimizer is initialized symbolically."""

    def tree_flatten(self) -> tuple[tuple[()], None]:
        return (), None

    @classmethod
    def tree_unflatten(cls, aux: Any, children: Any) -> _ParamsMarker:
        del aux, children
        return cls()


def tree_map_params(
    initable: Any,
    f: Callable[..., Any],
    state: PyTree,
    /,
    *rest: PyTree,
    transform_non_params: Callable[..., Any] | None = None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> PyTree:
    """Apply ``f`` to every copy of the params held in an optimizer state.

    The state layout is found by calling ``initable`` (an ``init`` function or
    an object with an ``init`` method) on a marker instead of the params:
    every part of the state that ``init`` built from the params is mapped
    with ``jax.tree.map(f, part, *rest, is_leaf=is_leaf)``; every other leaf
    is passed to ``transform_non_params`` when given, or kept. Useful to
    derive shardings or partition specs of a state from those of the params.

    Args:
      initable: ``init(params) -> state`` or an object with such an ``init``.
      f: the function mapped over the params-shaped parts of the state.
      state: the state.
      *rest: trees shaped like the params, passed to ``f`` alongside.
      transform_non_params: an optional function for the other leaves.
      is_leaf: passed to ``jax.tree.map`` over the params-shaped parts.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> from gradxform import tree
      >>> opt = gx.adam(1e-3)
      >>> state = opt.init({"w": jnp.ones(2)})
      >>> shapes = tree.tree_map_params(opt, lambda p: p.shape, state,
      ...                               transform_non_params=lambda _: None)
      >>> shapes[0].mu, shapes[0].count
      ({'w': (2,)}, None)
    """
    marker = _ParamsMarker()
    init = initable.init if hasattr(initable, "init") else initable
    layout = init(marker)

    def visit(slot: Any, value: Any) -> Any:
        if isinstance(slot, _ParamsMarker):
            return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
        return value if transform_non_params is None else transform_non_params(value)

    return jax.tree.map(visit, layout, state, is_leaf=lambda x: isinstance(x, _ParamsMarker))
