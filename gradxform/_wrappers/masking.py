"""Choosing what a transformation updates: ``masked``, ``multi_transform``, ``freeze``.

Masks and labels are static (Python bools and strings, given as a tree with the
structure of the params or as a function of the params), so they cost nothing
under ``jit``. A leaf that a transformation does not see is replaced by a
:class:`MaskedNode`, a pytree node with no leaves: the inner state holds
nothing for it. A mask or label tree that does not fit the params is an error
naming the first mismatching key path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeAlias

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
    from_function,
    identity,
    transformation,
    with_extra_args_support,
)

MaskOrFn: TypeAlias = chex.ArrayTree | Callable[[Any], Any]


class MaskedNode(NamedTuple):
    """Stands in for a leaf hidden from an inner transformation; it has no leaves."""


class MaskedState(NamedTuple):
    """The state of the inner transformation, which sees only the selected leaves."""

    inner_state: Any


class MultiTransformState(NamedTuple):
    """One inner state per label, each over the leaves carrying that label."""

    inner_states: dict[str, Any]


def _check_tree(tree: chex.ArrayTree, reference: chex.ArrayTree, what: str, against: str) -> None:
    if not _tree.same_structure(tree, reference):
        _checks.check_same_layout(tree, reference, what=what, against=against)


def _select(tree: chex.ArrayTree, mask: chex.ArrayTree) -> chex.ArrayTree:
    return jax.tree.map(lambda x, on: x if on else MaskedNode(), tree, mask)


def _init_selected(inner: Any, params: chex.ArrayTree, mask: chex.ArrayTree) -> Any:
    return inner.init(_select(params, mask))


def _update_selected(
    inner: Any,
    updates: chex.ArrayTree,
    inner_state: Any,
    params: chex.ArrayTree | None,
    mask: chex.ArrayTree,
    extra_args: dict[str, Any],
) -> tuple[list[Any], Any]:
    """Run ``inner`` on the selected leaves; return their new values in leaf order."""
    sub_params = None if params is None else _select(params, mask)
    new, inner_state = inner.update(_select(updates, mask), inner_state, sub_params, **extra_args)
    return jax.tree.leaves(new), inner_state


def masked(inner: Any, mask: MaskOrFn) -> GradientTransformation:
    """Apply ``inner`` to the leaves where ``mask`` is true; pass the others through unchanged.

    ::

        u_i <- inner(u)_i   if mask_i,   else u_i

    The inner state covers the selected leaves only. ``mask`` is a tree of
    Python bools with the structure of the params, or a function returning one;
    the function is called with the params (with the updates when ``update``
    is given no params).

    Args:
      inner: the transformation to apply (gradxform or optax).
      mask: a tree of bools, or a function of the params returning one.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale
      >>> from gradxform import masked
      >>> tx = masked(scale(10.0), {"w": True, "b": False})
      >>> g = {"w": jnp.ones(1), "b": jnp.ones(1)}
      >>> tx.update(g, tx.init(g))[0]
      {'b': Array([1.], dtype=float32), 'w': Array([10.], dtype=float32)}
    """
    _checks.transformation("inner", inner)
    inner = with_extra_args_support(inner)

    def init_fn(params):
        return MaskedState(
            inner_state=_init_selected(inner, params, _checks.resolve_mask(mask, params, "masked"))
        )

    def update_fn(updates, state, params=None, **extra_args):
        m = _checks.resolve_mask(mask, updates if params is None else params, "masked")
        _check_tree(updates, m, "updates", "the masked mask")
        new, inner_state = _update_selected(
            inner, updates, state.inner_state, params, m, extra_args
        )
        it = iter(new)
        leaves, treedef = jax.tree.flatten(updates)
        out = [next(it) if on else u for u, on in zip(leaves, jax.tree.leaves(m), strict=True)]
        return jax.tree.unflatten(treedef, out), MaskedState(inner_state=inner_state)

    return transformation(init_fn, update_fn, per_leaf="masked")


def _resolve_labels(
    param_labels: Any, params: chex.ArrayTree, known: Mapping[str, Any]
) -> chex.ArrayTree:
    labels = param_labels(params) if callable(param_labels) else param_labels
    _check_tree(labels, params, "param_labels", "params")
    for path, label in jax.tree_util.tree_flatten_with_path(labels)[0]:
        if label not in known:
            raise ValueError(
                f"multi_transform: leaf '{_tree.path_name(path)}' has the label {label!r}, "
                f"which is not one of the transforms' labels {sorted(known)}"
            )
    return labels


def multi_transform(transforms: Mapping[str, Any], param_labels: Any) -> GradientTransformation:
    """Parameter groups: a different transformation for each label of leaves.

    ``param_labels`` gives every leaf a label (a tree of strings with the
    structure of the params, or a function of the params returning one, such
    as :func:`label_by_path`); the leaves labelled ``k`` are updated by
    ``transforms[k]``, whose state covers those leaves only. This is the
    ``param_groups`` idea of ``torch.optim``. A label with no transformation is
    an error naming the leaf; a transformation with no leaves is allowed.

    Args:
      transforms: a mapping from label (str) to transformation.
      param_labels: a tree of labels, or a function of the params returning one.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale
      >>> from gradxform import multi_transform
      >>> tx = multi_transform({"fast": scale(-1.0), "slow": scale(-0.1)},
      ...                      {"w": "fast", "b": "slow"})
      >>> g = {"w": jnp.ones(1), "b": jnp.ones(1)}
      >>> tx.update(g, tx.init(g))[0]
      {'b': Array([-0.1], dtype=float32), 'w': Array([-1.], dtype=float32)}
    """
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError(
            f"transforms={transforms!r} must be a non-empty dict of label -> transformation"
        )
    for label, t in transforms.items():
        if not isinstance(label, str):
            raise TypeError(f"transforms label {label!r} must be a str")
        _checks.transformation(f"transforms[{label!r}]", t)
    transforms = {k: with_extra_args_support(t) for k, t in transforms.items()}

    def masks(labels):
        return {k: jax.tree.map(lambda lab, k=k: lab == k, labels) for k in transforms}

    def init_fn(params):
        ms = masks(_resolve_labels(param_labels, params, transforms))
        return MultiTransformState(
            inner_states={k: _init_selected(t, params, ms[k]) for k, t in transforms.items()}
        )

    def update_fn(updates, state, params=None, **extra_args):
        labels = _resolve_labels(param_labels, updates if params is None else params, transforms)
        _check_tree(updates, labels, "updates", "param_labels")
        leaves, treedef = jax.tree.flatten(updates)
        flat_labels = jax.tree.leaves(labels)
        out = list(leaves)
        new_states = {}
        for k, m in masks(labels).items():
            new, new_states[k] = _update_selected(
                transforms[k], updates, state.inner_states[k], params, m, extra_args
            )
            positions = [i for i, lab in enumerate(flat_labels) if lab == k]
            for i, u in zip(positions, new, strict=True):
                out[i] = u
        return jax.tree.unflatten(treedef, out), MultiTransformState(inner_states=new_states)

    return transformation(init_fn, update_fn, per_leaf="multi_transform")


def set_to_zero() -> GradientTransformation:
    """Replace every floating-point update by exact zeros (integer leaves pass through).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import set_to_zero
      >>> set_to_zero().update(jnp.array([jnp.nan, 2.0]), None)[0]
      Array([0., 0.], dtype=float32)
    """
    return from_function(lambda updates, params: _tree.map_inexact(jnp.zeros_like, updates))


def freeze(mask: MaskOrFn, inner: Any | None = None) -> GradientTransformation:
    """Frozen leaves (``mask`` true) get exactly zero updates and no state.

    The other leaves go through ``inner`` (unchanged if ``inner`` is None),
    whose state covers them only. Wrap the whole optimizer, as in
    ``freeze(mask, adamw(...))``: placed *before* a stateful optimizer in a
    chain, a zero gradient would still move a leaf through momentum or weight
    decay. Frozen updates are zero even when the gradient is NaN or infinite.

    Args:
      mask: a tree of bools (true = frozen), or a function of the params returning one.
      inner: the transformation for the trainable leaves, or None.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale
      >>> from gradxform import freeze
      >>> tx = freeze({"w": False, "b": True}, scale(-0.5))
      >>> g = {"w": jnp.ones(1), "b": jnp.ones(1)}
      >>> tx.update(g, tx.init(g))[0]
      {'b': Array([0.], dtype=float32), 'w': Array([-0.5], dtype=float32)}
    """

    def labels(params):
        frozen = _checks.resolve_mask(mask, params, "freeze")
        return jax.tree.map(lambda f: "frozen" if f else "trainable", frozen)

    return multi_transform(
        {"frozen": set_to_zero(), "trainable": identity() if inner is None else inner}, labels
    )


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
