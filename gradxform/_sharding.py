"""Shardings for optimizer states, for use with JAX's own SPMD machinery.

gradxform has no distribution layer of its own: a state is a pytree of arrays,
so ``jax.jit`` with shardings, ``shard_map`` and ``jax.distributed`` handle it
like the parameters. This module answers the one question JAX cannot answer by
itself -- where should each state leaf live? -- so that a state can be created
directly in place, without ever being materialized on one device::

    shardings = state_shardings(tx, params, param_shardings)
    state = jax.jit(tx.init, out_shardings=shardings)(params)

:func:`state_shardings` gives every moment its parameter's sharding and
replicates scalars such as step counts. :func:`zero1_shardings` additionally
splits the state over a data-parallel mesh axis (ZeRO stage 1; Rajbhandari et
al., 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter
Models"), so each device keeps ``1 / axis_size`` of it even when the
parameters are replicated; ``jit`` inserts the gathers the update needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import chex
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["state_shardings", "zero1_shardings"]


def state_shardings(
    tx: Any,
    params: chex.ArrayTree,
    param_shardings: NamedSharding | chex.ArrayTree | None = None,
) -> chex.ArrayTree:
    """The sharding of every leaf of ``tx.init(params)``, from the parameters' shardings.

    A state leaf derived from a parameter (a moment such as Adam's ``mu`` and
    ``nu``, a momentum trace, a sum of squares) gets exactly that parameter's
    sharding; a leaf that belongs to no parameter (a step count, a scalar) is
    replicated over the mesh. Nothing is computed: ``tx.init`` is only traced.

    Each leaf is placed by tracing ``tx.init`` on abstract parameters whose
    axes are explicitly sharded, so the shardings propagate through whatever
    ``init`` computes (this works for optax transformations too). A leaf that
    comes out unsharded although it has the shape of a sharded parameter whose
    key path ends its own (an ``init`` that builds ``jnp.zeros(p.shape)``)
    gets that parameter's sharding.

    Args:
      tx: a gradient transformation (anything with ``init``).
      params: the parameters, as arrays or ``jax.ShapeDtypeStruct``\\ s.
      param_shardings: a ``NamedSharding`` per parameter (a tree with the
        structure of ``params``), or one ``NamedSharding`` for all of them, or
        ``None`` to use each leaf's own ``.sharding``. All on one mesh.

    Returns:
      A tree of ``NamedSharding``\\ s with the structure of ``tx.init(params)``,
      to pass as ``out_shardings`` of ``jax.jit(tx.init)``, as the shardings of
      a training step, or in a ``ShapeDtypeStruct`` checkpoint-restore target.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> from jax.sharding import NamedSharding, PartitionSpec as P
      >>> from gradxform import state_shardings
      >>> mesh = jax.make_mesh((1,), ("data",))
      >>> params = {"w": jnp.zeros((4, 2))}
      >>> tx = gx.adam(0.1)
      >>> shardings = state_shardings(tx, params, NamedSharding(mesh, P("data")))
      >>> shardings[0].mu["w"].spec, shardings[0].nu["w"].spec, shardings[0].count.spec
      (P('data', None), P('data', None), P())
      >>> state = jax.jit(tx.init, out_shardings=shardings)(params)
      >>> state[0].mu["w"].sharding.spec
      P('data', None)
    """
    return _state_shardings(tx, params, param_shardings)[0]


def zero1_shardings(
    tx: Any,
    params: chex.ArrayTree,
    param_shardings: NamedSharding | chex.ArrayTree | None = None,
    *,
    axis: str,
) -> chex.ArrayTree:
    """Like :func:`state_shardings`, with the state also split over the mesh axis ``axis``.

    ZeRO stage 1 (Rajbhandari et al., 2020): in data-parallel training every
    device holds the same parameters and, normally, the same optimizer state.
    Here each state leaf is additionally sharded over the data-parallel axis
    ``axis`` along its first dimension that is not sharded yet and whose size
    is divisible by the axis size, so every device keeps ``1 / mesh.shape[axis]``
    of the state (failing that, along a dimension already sharded over other
    axes, if its size allows). A leaf with no such dimension (a step count, a
    bias of odd size), or already sharded over ``axis``, keeps its sharding
    from :func:`state_shardings`.

    Use the result as the state's ``in_shardings`` and ``out_shardings`` of the
    jitted training step, with the parameters' own shardings for the
    parameters: XLA then updates each slice of the state on its device and
    all-gathers the parameter updates. The update is the same as without
    ZeRO-1; only where the state lives changes.

    Args:
      tx: a gradient transformation (anything with ``init``).
      params: the parameters, as arrays or ``jax.ShapeDtypeStruct``\\ s.
      param_shardings: as in :func:`state_shardings` (typically the replicated
        ``NamedSharding(mesh, PartitionSpec())``).
      axis: the name of the data-parallel mesh axis.

    Returns:
      A tree of ``NamedSharding``\\ s with the structure of ``tx.init(params)``.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> from jax.sharding import NamedSharding, PartitionSpec as P
      >>> from gradxform import zero1_shardings
      >>> mesh = jax.make_mesh((1,), ("data",))
      >>> params = {"w": jnp.zeros((4, 2)), "b": jnp.zeros(2)}
      >>> replicated = NamedSharding(mesh, P())
      >>> shardings = zero1_shardings(gx.sgd(0.1, momentum=0.9), params, replicated,
      ...                             axis="data")
      >>> jax.tree.map(lambda s: s.spec, shardings)[0]
      TraceState(trace={'b': P('data',), 'w': P('data', None)})
    """
    if not isinstance(axis, str):
        raise TypeError(f"axis={axis!r} must be the name of a mesh axis (a str)")
    base, abstract, mesh = _state_shardings(tx, params, param_shardings)
    if axis not in mesh.axis_names:
        raise ValueError(
            f"axis={axis!r} is not an axis of the mesh; its axes are {mesh.axis_names}"
        )
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes, strict=True))
    size = sizes[axis]

    def split(sharding: NamedSharding, leaf: Any) -> NamedSharding:
        shape = tuple(leaf.shape)
        spec = list(sharding.spec) + [None] * (len(shape) - len(sharding.spec))
        if any(axis in _axis_names(entry) for entry in spec):
            return sharding
        for d, n in enumerate(shape):
            if spec[d] is None and n % size == 0:
                spec[d] = axis
                return NamedSharding(mesh, PartitionSpec(*spec))
        for d, n in enumerate(shape):
            names = _axis_names(spec[d])
            if names and n % (size * math.prod(sizes[a] for a in names)) == 0:
                spec[d] = (*names, axis)
                return NamedSharding(mesh, PartitionSpec(*spec))
        return sharding

    return jax.tree.map(split, base, abstract)


# ------------------------------------------------------------------------ internals


def _axis_names(entry: Any) -> tuple[str, ...]:
    if entry is None or entry is PartitionSpec.UNCONSTRAINED:
        return ()
    return tuple(entry) if isinstance(entry, tuple) else (entry,)


def _abstract_leaf(path: Any, x: Any) -> jax.ShapeDtypeStruct:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return jax.ShapeDtypeStruct(tuple(x.shape), x.dtype)
    if isinstance(x, bool | int | float | complex | np.number):
        return jax.ShapeDtypeStruct((), jax.numpy.asarray(x).dtype)
    raise TypeError(
        f"params leaf '{_name(path)}' must be an array or a "
        f"jax.ShapeDtypeStruct, got {type(x).__name__}"
    )


def _name(path: Sequence[Any]) -> str:
    return jax.tree_util.keystr(tuple(path), simple=True, separator="/") or "<root>"


def _param_shardings(
    params: chex.ArrayTree,
    param_shardings: Any,
) -> tuple[list[Any], list[jax.ShapeDtypeStruct], list[NamedSharding], Mesh]:
    """Flattened key paths, abstract leaves and shardings of the params, and their mesh."""
    flat, _ = jax.tree_util.tree_flatten_with_path(params)
    if not flat:
        raise ValueError("params has no leaves: there is no state to shard")
    paths = [p for p, _ in flat]
    abstract = [_abstract_leaf(p, x) for p, x in flat]
    if param_shardings is None:
        shardings = [getattr(x, "sharding", None) for _, x in flat]
        source = "the sharding of params leaf"
    elif isinstance(param_shardings, jax.sharding.Sharding):
        shardings = [param_shardings] * len(flat)
        source = "param_shardings for leaf"
    else:
        s_flat, _ = jax.tree_util.tree_flatten_with_path(
            param_shardings, is_leaf=lambda s: isinstance(s, jax.sharding.Sharding)
        )
        if [_name(p) for p, _ in s_flat] != [_name(p) for p in paths]:
            raise ValueError(
                "param_shardings must be one NamedSharding or a tree with the structure of "
                f"params: params has leaves {[_name(p) for p in paths]}, param_shardings "
                f"has {[_name(p) for p, _ in s_flat]}"
            )
        shardings = [s for _, s in s_flat]
        source = "param_shardings for leaf"
    mesh = None
    checked: list[NamedSharding] = []
    for path, s in zip(paths, shardings, strict=True):
        if s is None:
            raise TypeError(
                f"params leaf '{_name(path)}' has no sharding: give "
                f"param_shardings, or params carrying NamedShardings"
            )
        if not isinstance(s, NamedSharding):
            raise TypeError(
                f"{source} '{_name(path)}' must be a jax.sharding.NamedSharding, "
                f"got {type(s).__name__}"
            )
        if not isinstance(s.mesh, Mesh):
            raise TypeError(
                f"{source} '{_name(path)}' is on an abstract mesh; give a "
                f"NamedSharding on a concrete jax.sharding.Mesh"
            )
        if mesh is None:
            mesh = s.mesh
        elif s.mesh != mesh:
            raise ValueError(
                f"{source} '{_name(path)}' is on mesh {s.mesh}, other leaves "
                f"on {mesh}: all parameters must share one mesh"
            )
        checked.append(s)
    assert mesh is not None
    return paths, abstract, checked, mesh


def _traced_specs(
    tx: Any,
    treedef: Any,
    abstract: list[jax.ShapeDtypeStruct],
    shardings: list[NamedSharding],
    mesh: Mesh,
) -> list[PartitionSpec] | None:
    """The state's partition specs from tracing ``init`` with explicitly sharded axes.

    ``None`` if ``init`` cannot be traced that way (an operation that explicit
    sharding rejects); the caller then falls back to matching by key path.
    """
    try:
        from jax.sharding import AbstractMesh, AxisType, use_abstract_mesh
    except ImportError:  # a JAX without explicit sharding: match by key path only
        return None
    explicit = AbstractMesh(
        tuple(mesh.axis_sizes),
        tuple(mesh.axis_names),
        axis_types=(AxisType.Explicit,) * len(mesh.axis_names),
    )
    leaves = [
        jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=NamedSharding(explicit, s.spec))
        for a, s in zip(abstract, shardings, strict=True)
    ]
    try:
        with use_abstract_mesh(explicit):
            out = jax.eval_shape(tx.init, jax.tree.unflatten(treedef, leaves))
    except Exception:
        # Explicit sharding rejects some operations (JAX raises its own error
        # types for them). ``init`` itself traced fine without shardings (the
        # caller did that first), so fall back to matching by key path.
        return None
    specs = []
    for leaf in jax.tree.leaves(out):
        sharding = getattr(leaf, "sharding", None)
        specs.append(sharding.spec if isinstance(sharding, NamedSharding) else PartitionSpec())
    return specs


def _suffix_match(
    state_path: Sequence[Any],
    shape: tuple[int, ...],
    param_paths: list[tuple[str, ...]],
    param_shapes: list[tuple[int, ...]],
) -> int | None:
    """The index of the parameter with the longest key path ending ``state_path`` and its shape."""
    keys = tuple(str(k) for k in state_path)
    best, best_len = None, -1
    for i, (path, pshape) in enumerate(zip(param_paths, param_shapes, strict=True)):
        n = len(path)
        if pshape == shape and n > best_len and n <= len(keys) and keys[len(keys) - n :] == path:
            best, best_len = i, n
    return best


def _is_replicated(spec: PartitionSpec) -> bool:
    return not any(_axis_names(entry) for entry in spec)


def _state_shardings(
    tx: Any,
    params: chex.ArrayTree,
    param_shardings: Any,
) -> tuple[chex.ArrayTree, chex.ArrayTree, Mesh]:
    """State shardings, the abstract state, and the mesh."""
    if not callable(getattr(tx, "init", None)):
        raise TypeError(
            f"tx must be a gradient transformation with a callable `init`, got {type(tx).__name__}"
        )
    paths, abstract, shardings, mesh = _param_shardings(params, param_shardings)
    treedef = jax.tree.structure(params)
    state = jax.eval_shape(tx.init, jax.tree.unflatten(treedef, abstract))
    state_flat, state_def = jax.tree_util.tree_flatten_with_path(state)
    traced = _traced_specs(tx, treedef, abstract, shardings, mesh)
    if traced is not None and len(traced) != len(state_flat):
        traced = None
    param_paths = [tuple(str(k) for k in p) for p in paths]
    param_shapes = [tuple(a.shape) for a in abstract]
    out = []
    for i, (path, leaf) in enumerate(state_flat):
        spec = traced[i] if traced is not None else PartitionSpec()
        if _is_replicated(spec):
            j = _suffix_match(path, tuple(leaf.shape), param_paths, param_shapes)
            if j is not None:
                spec = shardings[j].spec
        out.append(NamedSharding(mesh, spec))
    return jax.tree.unflatten(state_def, out), state, mesh


# ------------------------------------------------ explicit sharding mode, leaf by leaf


def explicit_spec(x: Any) -> Any:
    """The partition spec of ``x`` when its mesh axes are explicitly sharded, else ``None``.

    Under JAX's explicit sharding mode, arrays sharded differently cannot be
    concatenated, and a slice of a replicated buffer stays replicated; elsewhere
    XLA propagates shardings itself and nothing needs doing.
    """
    try:
        sharding = jax.typeof(x).sharding
    except (TypeError, AttributeError):  # a ShapeDtypeStruct or a NumPy value
        return None
    axis_types = getattr(sharding.mesh, "axis_types", ())
    if not any(t == jax.sharding.AxisType.Explicit for t in axis_types):
        return None
    return sharding.spec


def replicated(x: chex.Array) -> chex.Array:
    """``x`` replicated over an explicit mesh, so that leaves of any sharding concatenate."""
    spec = explicit_spec(x)
    if spec is None or all(s is None for s in spec):
        return x
    return jax.sharding.reshard(x, on_mesh_of(x, jax.sharding.PartitionSpec()))


def sharded_like(x: chex.Array, target: Any) -> chex.Array:
    """``x`` with the explicit sharding of ``target`` (a slice of a buffer gets its leaf's)."""
    spec = explicit_spec(target)
    if spec is None or explicit_spec(x) == spec:
        return x
    return jax.sharding.reshard(x, on_mesh_of(target, spec))


def on_mesh_of(x: Any, spec: Any) -> Any:
    """``spec`` on the mesh of ``x``: its own mesh outside ``jit``, else the abstract one."""
    sharding = (
        x.sharding if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer) else None
    )
    mesh = (
        sharding.mesh
        if isinstance(sharding, jax.sharding.NamedSharding)
        else jax.typeof(x).sharding.mesh
    )
    return jax.sharding.NamedSharding(mesh, spec)
