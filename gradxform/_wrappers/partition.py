"""Parameter groups and named chains: ``partition``, ``freeze``, ``selective_transform``,
``named_chain``."""

from __future__ import annotations

import collections
from collections.abc import Hashable, Mapping
from typing import Any, NamedTuple

import jax

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformationExtraArgs,
    transformation,
    with_extra_args_support,
)
from gradxform._wrappers.masking import (
    MaskedState,
    MaskOrFn,
    check_prefix,
    is_mask_fn,
    is_params_placeholder,
    masked_as,
    masked_init,
    masked_update,
    resolve_mask,
    set_to_zero,
)


class PartitionState(NamedTuple):
    """One :class:`MaskedState` per label, each over the leaves carrying that label."""

    inner_states: Mapping[Hashable, Any]


def _resolve_labels(param_labels: Any, tree: Any, known: Mapping[Hashable, Any]) -> Any:
    labels = param_labels(tree) if is_mask_fn(param_labels) else param_labels
    for path, label in jax.tree_util.tree_flatten_with_path(labels)[0]:
        if not isinstance(label, Hashable) or label not in known:
            raise ValueError(
                f"partition: leaf '{_tree.path_name(path)}' has the label {label!r}, "
                f"which is not one of the transforms' labels {sorted(map(repr, known))}"
            )
    check_prefix(labels, tree, "param_labels", "params")
    return labels


def partition(
    transforms: Mapping[Hashable, Any],
    param_labels: Any,
    *,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformationExtraArgs:
    """Parameter groups: a different transformation for each label of leaves.

    ``param_labels`` gives every leaf a label: a tree of labels (any hashable:
    strings, ints) with the structure of the params or a *prefix* of it (a
    label standing where the params have a subtree labels all its leaves),
    or a function returning one (such as :func:`label_by_path`), called with
    the params in ``init`` and with the updates in ``update``. The leaves
    labelled ``k`` are updated by ``transforms[k]``, wrapped in
    :func:`masked`: ``state.inner_states[k]`` is a :class:`MaskedState`
    over those leaves only. This is the ``param_groups`` idea of
    ``torch.optim``. A label with no transformation is an error naming the
    leaf; a transformation with no leaves is allowed. :func:`multi_transform`
    is the same function under its older optax name.

    Args:
      transforms: a mapping from label to transformation.
      param_labels: a (prefix) tree of labels, or a function of the params returning one.
      mask_compatible_extra_args: also mask the extra arguments of ``update``
        that have the structure of the updates.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import partition, scale
      >>> tx = partition({"fast": scale(-1.0), "slow": scale(-0.1)},
      ...                {"w": "fast", "b": "slow"})
      >>> g = {"w": jnp.ones(1), "b": jnp.ones(1)}
      >>> tx.update(g, tx.init(g))[0]
      {'b': Array([-0.1], dtype=float32), 'w': Array([-1.], dtype=float32)}
    """
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError(
            f"transforms={transforms!r} must be a non-empty dict of label -> transformation"
        )
    for label, t in transforms.items():
        _checks.transformation(f"transforms[{label!r}]", t)
    if not isinstance(mask_compatible_extra_args, bool):
        raise TypeError(f"mask_compatible_extra_args={mask_compatible_extra_args!r} must be a bool")
    transforms = {k: with_extra_args_support(t) for k, t in transforms.items()}

    def group(labels, k):
        return jax.tree.map(lambda lab: lab == k, labels)

    def init_fn(params):
        if is_params_placeholder(params):
            return PartitionState(
                {k: MaskedState(inner_state=t.init(params)) for k, t in transforms.items()}
            )
        labels = _resolve_labels(param_labels, params, transforms)
        return PartitionState(
            {k: masked_init(t, group(labels, k), params) for k, t in transforms.items()}
        )

    def update_fn(updates, state, params=None, **extra_args):
        labels = _resolve_labels(param_labels, updates, transforms)
        new_states = {}
        for k, t in transforms.items():
            updates, new_states[k] = masked_update(
                t,
                group(labels, k),
                updates,
                state.inner_states[k],
                params,
                extra_args,
                mask_compatible_extra_args,
            )
        return updates, PartitionState(new_states)

    return transformation(
        init_fn, update_fn, per_leaf="partition", inner=tuple(transforms.values())
    )


multi_transform = partition
MultiTransformState = PartitionState


def selective_transform(
    optimizer: Any, *, freeze_mask: MaskOrFn
) -> GradientTransformationExtraArgs:
    """Only the leaves not frozen by ``freeze_mask`` go through ``optimizer``; frozen leaves
    get exactly zero updates and no optimizer state.

    ``partition({"train": optimizer, "freeze": set_to_zero()}, labels)`` with
    ``labels`` the ``"freeze"``/``"train"`` reading of ``freeze_mask``: a
    (prefix) tree of booleans, true for frozen, or a single boolean, or a
    function of the params returning one (see :func:`masked`). Unlike
    :func:`freeze` placed in a chain before a stateful optimizer, the frozen
    leaves are not moved by momentum or weight decay either, and their updates
    are zero even when the gradient is NaN or infinite.

    Args:
      optimizer: the transformation for the trainable leaves.
      freeze_mask: which leaves to freeze.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import selective_transform, sgd
      >>> tx = selective_transform(sgd(0.5), freeze_mask={"w": False, "b": True})
      >>> g = {"w": jnp.ones(1), "b": jnp.ones(1)}
      >>> tx.update(g, tx.init(g))[0]
      {'b': Array([0.], dtype=float32), 'w': Array([-0.5], dtype=float32)}
    """
    _checks.transformation("optimizer", optimizer)

    def labels(tree):
        frozen = resolve_mask(freeze_mask, tree, "selective_transform freeze")
        return jax.tree.map(lambda f: "freeze" if f else "train", frozen)

    return partition({"train": optimizer, "freeze": set_to_zero()}, labels)


def freeze(mask: MaskOrFn, *, inner: Any | None = None) -> GradientTransformationExtraArgs:
    """Zero the updates of the leaves where ``mask`` is true; pass the others through.

    ``freeze(mask)`` is ``masked(set_to_zero(), mask)``, as in optax: its
    state is a :class:`MaskedState` holding ``EmptyState()``. ``mask`` is a
    (prefix) tree of booleans, true for frozen, a single boolean, or a
    function of the params returning one (see :func:`masked`). Place it
    *after* a stateful optimizer, or wrap the optimizer: in a chain
    *before* one, a zero gradient would still move a leaf through momentum
    or weight decay. ``freeze(mask, inner=opt)`` does the wrapping: it is
    :func:`selective_transform` ``(opt, freeze_mask=mask)``.

    Args:
      mask: which leaves to freeze.
      inner: the transformation for the trainable leaves (keyword only), or None.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import freeze
      >>> tx = freeze({"w": False, "b": True})
      >>> g = {"w": jnp.ones(1), "b": jnp.ones(1)}
      >>> tx.update(g, tx.init(g))[0]
      {'b': Array([0.], dtype=float32), 'w': Array([1.], dtype=float32)}
    """
    if inner is not None:
        return selective_transform(inner, freeze_mask=mask)
    return masked_as(set_to_zero(), mask, False, "freeze")


def named_chain(*args: tuple[str, Any]) -> GradientTransformationExtraArgs:
    """:func:`~gradxform.chain` whose state is a dict keyed by the members' names.

    Each argument is a ``(name, transformation)`` pair; the state is an
    ordered dict ``{name: state}`` in the order given, so
    ``state["adam"]`` finds a member's state. Extra keyword arguments of
    ``update`` reach every member that accepts them. Names must be unique.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import named_chain, scale, scale_by_adam
      >>> tx = named_chain(("adam", scale_by_adam()), ("lr", scale(-0.1)))
      >>> updates, state = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
      >>> list(state), updates
      (['adam', 'lr'], Array([-0.1, -0.1], dtype=float32))
    """
    for i, pair in enumerate(args):
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise TypeError(
                f"named_chain argument {i}={pair!r} must be a (name, transformation) pair"
            )
        _checks.transformation(f"named_chain argument {i} ({pair[0]!r})", pair[1])
    names = [name for name, _ in args]
    if len(names) != len(set(names)):
        raise ValueError(f"named_chain names must be unique, got {names}")
    members = [(name, with_extra_args_support(t)) for name, t in args]

    def init_fn(params):
        return collections.OrderedDict((name, t.init(params)) for name, t in members)

    def update_fn(updates, state, params=None, **extra_args):
        new_state = collections.OrderedDict()
        for name, t in members:
            updates, new_state[name] = t.update(updates, state[name], params, **extra_args)
        return updates, new_state

    return transformation(init_fn, update_fn, inner=[t for _, t in members])
