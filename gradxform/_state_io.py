"""Optimizer state as a flat ``{key path: array}`` dict, and back.

``state_dict`` names every array of a state by its key path (``"0/mu/encoder/
dense/kernel"``: member 0 of a chain, field ``mu``, then the parameter's own
path), so a checkpoint is readable, diffable and independent of Python
classes. ``load_state_dict`` puts such a dict back into the structure of a
freshly initialised *template* state and refuses anything that does not fit
exactly: a missing key, an unexpected key, or a shape or dtype mismatch is an
error naming the key. A momentum state therefore cannot be loaded into an
AdaGrad template (``"0/trace/w"`` is not ``"0/sum_of_squares/w"``), and a
checkpoint of a different model fails on the first parameter that differs.

The pattern for saving mid-run and resuming::

    np.savez(path, **state_dict(state))                 # or any other array store
    ...
    state = load_state_dict(tx.init(params), dict(np.load(path)))

The restored leaves are bit-identical to the saved ones; each is placed with
the sharding of the template's leaf when the template has one. ``np.savez``
writes dtypes that NumPy does not know natively (``bfloat16``, the float8
types) as raw bytes (``|V2``, ``|V1``); ``load_state_dict`` reinterprets such
raw data as the template's dtype when the template's dtype is also one of
these and the sizes match. orbax-checkpoint keeps those dtypes as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _tree


def _named_leaves(state: chex.ArrayTree) -> list[tuple[str, Any]]:
    named = [(_tree.path_name(p), x) for p, x in jax.tree_util.tree_flatten_with_path(state)[0]]
    seen: set[str] = set()
    for name, _ in named:
        if name in seen:
            raise ValueError(
                f"two leaves of the state have the same key path '{name}' "
                f"(a key containing '/'?); they cannot be told apart"
            )
        seen.add(name)
    return named


def state_dict(state: chex.ArrayTree) -> dict[str, Any]:
    """The arrays of ``state`` keyed by their key paths, in flattening order.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> from gradxform import state_dict
      >>> state = gx.sgd(0.1, momentum=0.9).init({"w": jnp.zeros(2)})
      >>> state_dict(state)
      {'0/trace/w': Array([0., 0.], dtype=float32)}
    """
    return dict(_named_leaves(state))


def load_state_dict(template_state: chex.ArrayTree, d: Mapping[str, Any]) -> chex.ArrayTree:
    """Rebuild a state with the structure of ``template_state`` from the arrays in ``d``.

    Every key of the template must be in ``d`` with the template leaf's shape
    and dtype, and ``d`` must have no other key; otherwise a ``ValueError``
    (missing or unexpected key, shape) or ``TypeError`` (dtype) names the key.
    The template's values are not used, only its structure, shapes, dtypes and
    shardings (``jax.ShapeDtypeStruct`` leaves work too).

    Args:
      template_state: a state of the same transformation, e.g. ``tx.init(params)``.
      d: a mapping from key path to array, as made by :func:`state_dict`.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> from gradxform import load_state_dict
      >>> template = gx.sgd(0.1, momentum=0.9).init({"w": jnp.zeros(2)})
      >>> load_state_dict(template, {"0/trace/w": jnp.ones(2)})
      (TraceState(trace={'w': Array([1., 1.], dtype=float32)}), EmptyState())
    """
    named = _named_leaves(template_state)
    expected = {name for name, _ in named}
    unexpected = [k for k in d if k not in expected]
    missing = [name for name, _ in named if name not in d]
    if missing:
        raise ValueError(
            f"load_state_dict: key '{missing[0]}' of the template state is "
            f"missing from the state dict ({len(missing)} missing)"
        )
    if unexpected:
        raise ValueError(
            f"load_state_dict: unexpected key '{unexpected[0]}' in the state "
            f"dict, not in the template state ({len(unexpected)} unexpected)"
        )
    leaves = []
    for name, t in named:
        value = d[name]
        if np.shape(value) != np.shape(t):
            raise ValueError(
                f"load_state_dict: key '{name}' has shape {np.shape(value)} but "
                f"the template has {np.shape(t)}"
            )
        dtype = np.dtype(getattr(value, "dtype", np.asarray(value).dtype))
        want = np.dtype(getattr(t, "dtype", np.asarray(t).dtype))
        if dtype != want and dtype.kind == want.kind == "V" and dtype.itemsize == want.itemsize:
            value, dtype = np.asarray(value).view(want), want  # raw bytes, e.g. from np.savez
        if dtype != want:
            raise TypeError(
                f"load_state_dict: key '{name}' has dtype {dtype} but the template has {want}"
            )
        sharding = getattr(t, "sharding", None)
        leaves.append(
            jax.device_put(value, sharding) if sharding is not None else jnp.asarray(value)
        )
    return jax.tree.unflatten(jax.tree.structure(template_state), leaves)
