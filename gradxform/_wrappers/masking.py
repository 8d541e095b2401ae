"""Choosing which leaves a transformation sees: ``masked``, ``set_to_zero``, path rules.

A mask is static: a tree of booleans, or a function returning one. As in optax,
the mask may be a *prefix* of the params tree: a boolean where the params
have a whole subtree (``{"encoder": False}`` for every leaf under
``encoder``), or a single boolean for the whole tree, applies to every leaf
of that subtree. A subtree that a transformation does not see is replaced
by one :class:`MaskedNode`, a pytree node with no leaves, so the inner
state holds nothing for it. A mask that is neither the params' structure nor
a prefix of it is an error naming the first mismatching key path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeAlias

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformationExtraArgs,
    from_function,
    transformation,
    with_extra_args_support,
)

MaskOrFn: TypeAlias = chex.ArrayTree | Callable[[Any], Any]


class MaskedNode(NamedTuple):
    """Stands in for a subtree hidden from an inner transformation; it has no leaves."""


class MaskedState(NamedTuple):
    """The state of the inner transformation, which sees only the selected leaves."""

    inner_state: Any


# ------------------------------------------------------------------ mask trees


def is_mask_fn(mask: Any) -> bool:
    """Whether ``mask`` is a function to call, not a tree: every leaf of it is callable.

    An Equinox module holding booleans is callable, yet a tree of booleans:
    its leaves are not callable, so it is a mask tree.
    """
    leaves = jax.tree.leaves(jax.tree.map(callable, mask))
    return bool(leaves) and all(leaves)


def is_params_placeholder(params: Any) -> bool:
    """Whether ``init`` was called by ``tree_map_params`` (gradxform's or optax's) on a marker."""
    return type(params).__name__ in ("_ParamsMarker", "_ParamsPlaceholder")


def _as_bool(path: tuple[Any, ...], m: Any, who: str) -> bool:
    if isinstance(m, bool | np.bool_):
        return bool(m)
    if isinstance(m, jax.core.Tracer):
        raise TypeError(
            f"{who} mask leaf '{_tree.path_name(path)}' is traced: a mask must be static "
            f"(Python bools, or a function of the shapes of the params)"
        )
    if (
        isinstance(m, jax.Array | np.ndarray)
        and np.ndim(m) == 0
        and np.asarray(m).dtype == np.bool_
    ):
        return bool(m)
    raise TypeError(
        f"{who} mask leaf '{_tree.path_name(path)}' must be a Python bool (or a 0-d "
        f"boolean array), got {type(m).__name__}"
    )


def check_prefix(prefix: Any, tree: Any, what: str, against: str) -> None:
    """Raise, naming a key path, unless ``prefix`` is ``tree``'s structure or a prefix of it."""
    try:
        jax.tree.map(lambda *_: None, prefix, tree)
    except ValueError as e:
        _checks.check_same_layout(prefix, tree, what=what, against=against)
        raise ValueError(f"{what} is not a prefix of {against}: {e}") from None


def resolve_mask(mask: MaskOrFn, tree: Any, who: str) -> Any:
    """``mask`` (or ``mask(tree)``) as a prefix tree of Python bools, checked against ``tree``.

    ``None`` selects every leaf.
    """
    if mask is None:
        return True
    m = mask(tree) if is_mask_fn(mask) else mask
    m = jax.tree_util.tree_map_with_path(lambda p, x: _as_bool(p, x, who), m)
    check_prefix(m, tree, f"{who} mask", "params")
    return m


def select(tree: Any, mask: Any) -> Any:
    """``tree`` with every subtree whose mask is false replaced by a :class:`MaskedNode`."""
    return jax.tree.map(lambda on, sub: sub if on else MaskedNode(), mask, tree)


def merge(mask: Any, new: Any, old: Any) -> Any:
    """``new`` where the (prefix) mask is true, ``old`` elsewhere."""
    return jax.tree.map(lambda on, n, o: n if on else o, mask, new, old)


def masked_init(inner: Any, mask: Any, params: Any) -> MaskedState:
    return MaskedState(inner_state=inner.init(select(params, mask)))


def masked_update(
    inner: Any,
    mask: Any,
    updates: Any,
    state: MaskedState,
    params: Any,
    extra_args: dict[str, Any],
    mask_extra_args: bool,
) -> tuple[Any, MaskedState]:
    """One ``update`` of ``inner`` on the selected subtrees; the others pass through."""
    if mask_extra_args:
        extra_args = {
            k: select(v, mask) if _tree.same_structure(v, updates) else v
            for k, v in extra_args.items()
        }
    sub_params = None if params is None else select(params, mask)
    new, inner_state = inner.update(
        select(updates, mask), state.inner_state, sub_params, **extra_args
    )
    return merge(mask, new, updates), MaskedState(inner_state=inner_state)


def masked(
    inner: Any, mask: MaskOrFn, *, mask_compatible_extra_args: bool = False
) -> GradientTransformationExtraArgs:
    """Apply ``inner`` to the leaves where ``mask`` is true; pass the others through unchanged.

    ::

        u_i <- inner(u)_i   if mask_i,   else u_i

    The inner state covers the selected leaves only: each unselected subtree
    is one :class:`MaskedNode`. ``mask`` is a tree of booleans (Python bools
    or 0-d boolean arrays) with the structure of the params or a *prefix* of
    it, as in optax: a boolean standing where the params have a subtree
    applies to every leaf of that subtree, and a single boolean to the whole
    tree. ``mask`` may also be a function returning such a tree; it is called
    with the params in ``init`` and with the updates in ``update``. ``None``
    selects every leaf. A mask that is neither the params' structure nor a
    prefix of it, or whose leaves are not booleans, is an error naming the key
    path.

    Args:
      inner: the transformation to apply (gradxform or optax).
      mask: a (prefix) tree of booleans, or a function of the params returning one.
      mask_compatible_extra_args: also mask the extra arguments of ``update``
        that have the structure of the updates (per-parameter tags, say).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import masked, scale
      >>> tx = masked(scale(10.0), {"w": True, "b": False})
      >>> g = {"w": jnp.ones(1), "b": {"x": jnp.ones(1), "y": jnp.ones(1)}}
      >>> tx.update(g, tx.init(g))[0]["b"]                  # the prefix False covers b/x, b/y
      {'x': Array([1.], dtype=float32), 'y': Array([1.], dtype=float32)}
      >>> tx.init(g).inner_state
      EmptyState()
    """
    return masked_as(inner, mask, mask_compatible_extra_args, "masked")


def masked_as(
    inner: Any, mask: MaskOrFn, mask_compatible_extra_args: bool, who: str
) -> GradientTransformationExtraArgs:
    """:func:`masked`, its errors naming ``who``."""
    _checks.transformation("inner", inner)
    if not isinstance(mask_compatible_extra_args, bool):
        raise TypeError(f"mask_compatible_extra_args={mask_compatible_extra_args!r} must be a bool")
    inner = with_extra_args_support(inner)

    def init_fn(params):
        if is_params_placeholder(params):  # tree_map_params: the marker goes through whole
            return MaskedState(inner_state=inner.init(params))
        return masked_init(inner, resolve_mask(mask, params, who), params)

    def update_fn(updates, state, params=None, **extra_args):
        m = resolve_mask(mask, updates, who)
        return masked_update(
            inner, m, updates, state, params, extra_args, mask_compatible_extra_args
        )

    return transformation(init_fn, update_fn, per_leaf="masked", inner=(inner,))


def set_to_zero() -> GradientTransformationExtraArgs:
    """Replace every floating-point update by exact zeros (integer leaves pass through).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import set_to_zero
      >>> tx = set_to_zero()
      >>> tx.update(jnp.array([jnp.nan, 2.0]), tx.init(jnp.zeros(2)))[0]
      Array([0., 0.], dtype=float32)
    """
    return from_function(lambda updates, params: _tree.map_inexact(jnp.zeros_like, updates))


# ------------------------------------------------------------------ path rules


def _compile(pattern: str, name: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"{name}={pattern!r} is not a valid regular expression: {e}") from None


def label_by_path(
    rules: Mapping[str, str] | Sequence[tuple[str, str]], *, default: str | None = None
) -> Callable[[Any], Any]:
    """A function of the params giving each leaf the label of the first rule matching its path.

    Key paths are written as by :func:`gradxform.state_dict` (``"encoder/dense/kernel"``)
    and matched with :func:`re.search`. A leaf that no rule matches gets
    ``default``; with no default it is an error naming the leaf.

    Args:
      rules: ``{pattern: label}`` (in order) or a sequence of ``(pattern, label)`` pairs.
      default: the label of unmatched leaves.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import label_by_path
      >>> labels = label_by_path({r"(bias|scale)$": "no_decay"}, default="decay")
      >>> labels({"dense": {"kernel": jnp.ones(2), "bias": jnp.ones(2)}, "norm": {"scale": 1.0}})
      {'dense': {'bias': 'no_decay', 'kernel': 'decay'}, 'norm': {'scale': 'no_decay'}}
    """
    pairs = list(rules.items()) if isinstance(rules, Mapping) else list(rules)
    compiled = []
    for i, pair in enumerate(pairs):
        if not (
            isinstance(pair, tuple)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and isinstance(pair[1], str)
        ):
            raise TypeError(f"rules[{i}]={pair!r} must be a (pattern, label) pair of str")
        compiled.append((_compile(pair[0], f"rules[{i}] pattern"), pair[1]))

    def fn(params):
        def label(path, _):
            name = _tree.path_name(path)
            for pattern, lab in compiled:
                if pattern.search(name):
                    return lab
            if default is None:
                raise ValueError(
                    f"label_by_path: no rule matches the leaf '{name}' and "
                    f"there is no default label"
                )
            return default

        return jax.tree_util.tree_map_with_path(label, params)

    return fn


def mask_by_path(*patterns: str) -> Callable[[Any], Any]:
    """A function of the params marking the leaves whose key path matches any pattern.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import mask_by_path
      >>> mask_by_path(r"kernel$")({"dense": {"kernel": jnp.ones(2), "bias": jnp.ones(2)}})
      {'dense': {'bias': False, 'kernel': True}}
    """
    compiled = [_compile(p, f"patterns[{i}]") for i, p in enumerate(patterns)]

    def fn(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: any(p.search(_tree.path_name(path)) for p in compiled), params
        )

    return fn
