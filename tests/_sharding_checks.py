"""Sharding checks on 8 simulated CPU devices, run in a subprocess by ``test_sharding.py``.

Run as ``python -m tests._sharding_checks``: it sets
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` before importing JAX (so
the pytest process keeps its single device), runs every check, and prints one
JSON line: for each check, ``ok``, the error if any, and measured numbers.
Importing this module has no side effects.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import pathlib
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
N_DEVICES = 8
MARKER = "SHARDING_CHECKS_RESULT "


def _example():
    """``examples/data_parallel.py`` as a module."""
    spec = importlib.util.spec_from_file_location(
        "data_parallel", ROOT / "examples" / "data_parallel.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bytes_per_device(tree) -> dict[str, int]:
    """Bytes of ``tree`` held by each device (every shard and replica counted where it lives)."""
    import jax

    out: dict[str, int] = {}
    for leaf in jax.tree.leaves(tree):
        for shard in leaf.addressable_shards:
            key = str(shard.device.id)
            out[key] = out.get(key, 0) + shard.data.nbytes
    return out


def _matching_param(state_path, param_paths) -> int | None:
    """Index of the parameter whose key path ends the state leaf's (longest first)."""
    keys = tuple(str(k) for k in state_path)
    best, best_len = None, -1
    for i, path in enumerate(param_paths):
        if len(path) > best_len and keys[len(keys) - len(path) :] == path:
            best, best_len = i, len(path)
    return best


def _optimizers():
    import jax.numpy as jnp
    import optax

    import gradxform as gx

    return {
        "adam": gx.adam(0.1),
        "adamw-bf16-mu": gx.adamw(0.1, mu_dtype=jnp.bfloat16),
        "sgd-momentum": gx.sgd(0.1, momentum=0.9),
        "rmsprop-centered-momentum": gx.rmsprop(0.1, centered=True, momentum=0.9),
        "adagrad": gx.adagrad(0.1),
        "optax-adam": optax.adam(0.1),
        "chain-optax-clip-gx-adam": gx.chain(optax.clip_by_global_norm(1.0), gx.adam(0.1)),
    }


def check_state_shardings() -> dict[str, Any]:
    """Moments get their parameter's sharding, counts are replicated, init is never gathered."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    from gradxform import state_shardings

    checked = 0
    for axis_types in (AxisType.Explicit, AxisType.Auto):
        mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(axis_types,) * 2)
        specs = {
            "dense": {"kernel": P("data", "model"), "bias": P("model")},
            "embed": P(None, "data"),
            "scale": P(),
        }
        shapes = {"dense": {"kernel": (16, 8), "bias": (8,)}, "embed": (6, 32), "scale": ()}
        shardings = jax.tree.map(
            functools.partial(NamedSharding, mesh), specs, is_leaf=lambda s: isinstance(s, P)
        )
        abstract = jax.tree.map(
            lambda shape, s: jax.ShapeDtypeStruct(shape, jnp.float32, sharding=s),
            shapes,
            shardings,
            is_leaf=lambda s: isinstance(s, tuple),
        )
        concrete = jax.tree.map(
            lambda a: jax.device_put(jnp.ones(a.shape, a.dtype), a.sharding), abstract
        )
        flat, _ = jax.tree_util.tree_flatten_with_path(abstract)
        param_paths = [tuple(str(k) for k in p) for p, _ in flat]
        param_leaves = [a for _, a in flat]

        for name, tx in _optimizers().items():
            expected = state_shardings(tx, abstract)
            assert jax.tree.structure(expected) == jax.tree.structure(
                jax.eval_shape(tx.init, abstract)
            ), name
            jitted = jax.jit(tx.init, out_shardings=expected)(abstract)
            eager = tx.init(concrete)
            from_abstract = tx.init(abstract)
            for path, leaf in jax.tree_util.tree_flatten_with_path(jitted)[0]:
                where = f"{name} {axis_types} {jax.tree_util.keystr(path)}"
                i = _matching_param(path, param_paths)
                if i is not None and leaf.shape == param_leaves[i].shape:
                    want = param_leaves[i].sharding
                else:
                    assert leaf.ndim == 0, f"{where}: unmatched non-scalar leaf"
                    want = NamedSharding(mesh, P())
                assert leaf.sharding.is_equivalent_to(want, leaf.ndim), (
                    f"{where}: {leaf.sharding} instead of {want}"
                )
                for shard in leaf.addressable_shards:
                    assert shard.data.shape == want.shard_shape(leaf.shape), where
                checked += 1
            # Eager init from sharded arrays and from sharded ShapeDtypeStructs keeps the
            # parameter shardings for gradxform's own transformations and optax's alike.
            for how, state in (("eager", eager), ("abstract", from_abstract)):
                for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
                    i = _matching_param(path, param_paths)
                    if i is not None and leaf.ndim:
                        want = param_leaves[i].sharding
                        assert leaf.sharding.is_equivalent_to(want, leaf.ndim), (
                            f"{name} {how} {jax.tree_util.keystr(path)}: {leaf.sharding}"
                        )
    return {"leaves_checked": checked}


def check_explicit_sharding() -> dict[str, Any]:
    """Explicit sharding mode: jit(init) shards every parameter-shaped state leaf like its
    parameter, with no out_shardings, and update keeps each parameter's sharding; for every
    registry entry, per leaf and under flat()."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    import gradxform as gx
    from tests.registry import REGISTRY

    def spec(x):
        s = tuple(x.sharding.spec)
        return s + (None,) * (x.ndim - len(s))

    mesh = jax.make_mesh((4, 2), ("x", "y"), axis_types=(AxisType.Explicit,) * 2)
    checked = 0
    with jax.set_mesh(mesh):
        params = {
            "w": jax.device_put(jnp.ones((8, 6)), NamedSharding(mesh, P("x", "y"))),
            "b": jax.device_put(jnp.ones(8), NamedSharding(mesh, P("x"))),
            "s": jax.device_put(jnp.ones(3), NamedSharding(mesh, P())),
        }
        grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
        for entry in REGISTRY:
            for name, tx in (
                (entry.id, entry.make()),
                (f"flat({entry.id})", gx.flat(entry.make())),
            ):
                state = jax.jit(tx.init)(params)
                for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
                    keys = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
                    if keys and keys[-1] in params and leaf.shape == params[keys[-1]].shape:
                        want = spec(params[keys[-1]])
                        assert spec(leaf) == want, (name, jax.tree_util.keystr(path), spec(leaf))
                        checked += 1
                updates, _ = jax.jit(tx.update)(grads, state, params)
                for k, p in params.items():
                    assert spec(updates[k]) == spec(p), (name, "update", k, spec(updates[k]))
    return {"state_leaves_checked": checked}


def check_key_path_fallback() -> dict[str, Any]:
    """An ``init`` that ignores its parameters' shardings is still placed by key path."""
    from typing import NamedTuple

    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import gradxform as gx
    from gradxform import state_shardings

    class State(NamedTuple):
        count: jax.Array
        buffer: Any

    def init(params):
        return State(
            jnp.zeros([], jnp.int32), jax.tree.map(lambda p: jnp.zeros(p.shape, p.dtype), params)
        )

    tx = gx.GradientTransformation(init, lambda u, s, p=None: (u, s))
    mesh = jax.make_mesh((8,), ("data",))
    params = {
        "a": jax.ShapeDtypeStruct((16, 3), jnp.float32),
        "b": {"a": jax.ShapeDtypeStruct((3,), jnp.float32)},
    }
    shardings = {"a": NamedSharding(mesh, P("data")), "b": {"a": NamedSharding(mesh, P())}}
    out = state_shardings(tx, params, shardings)
    assert out.count.is_equivalent_to(NamedSharding(mesh, P()), 0)
    assert out.buffer["a"].is_equivalent_to(shardings["a"], 2), out.buffer["a"]
    assert out.buffer["b"]["a"].is_equivalent_to(shardings["b"]["a"], 1)
    state = jax.jit(tx.init, out_shardings=out)(params)
    assert state.buffer["a"].addressable_shards[0].data.shape == (2, 3)
    return {}


def check_zero1() -> dict[str, Any]:
    """ZeRO-1: replicated parameters, state split over 'data'; per-device bytes drop 8x."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import gradxform as gx
    from gradxform import state_shardings, zero1_shardings

    mesh = jax.make_mesh((N_DEVICES,), ("data",))
    replicated = NamedSharding(mesh, P())
    shapes = {
        "w1": (1024, 512),
        "b1": (512,),
        "w2": (512, 256),
        "b2": (256,),
        "w3": (256, 16),
        "b3": (16,),
    }
    params = {
        k: jax.ShapeDtypeStruct(s, jnp.float32, sharding=replicated) for k, s in shapes.items()
    }
    tx = gx.adam(1e-3)
    plain = jax.jit(tx.init, out_shardings=state_shardings(tx, params))(params)
    zero = jax.jit(tx.init, out_shardings=zero1_shardings(tx, params, axis="data"))(params)
    plain_bytes, zero_bytes = _bytes_per_device(plain), _bytes_per_device(zero)
    assert len(set(plain_bytes.values())) == 1 and len(set(zero_bytes.values())) == 1
    total = sum(leaf.nbytes for leaf in jax.tree.leaves(plain))
    count_bytes = 4  # the int32 step count stays replicated
    per_plain, per_zero = plain_bytes["0"], zero_bytes["0"]
    assert per_plain == total, (per_plain, total)
    assert per_zero == (total - count_bytes) // N_DEVICES + count_bytes, (per_zero, total)
    for leaf in jax.tree.leaves(zero[0].mu):
        assert leaf.sharding.spec[0] == "data", leaf.sharding

    # The ZeRO-1 step gives the same parameters and keeps the state split.
    rng = np.random.default_rng(0)
    values = {
        k: jax.device_put(jnp.asarray(rng.normal(size=s) * 0.1, jnp.float32), replicated)
        for k, s in shapes.items()
    }
    grads = [
        {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in shapes.items()}
        for _ in range(3)
    ]
    shardings = zero1_shardings(tx, params, axis="data")
    param_shardings = jax.tree.map(lambda _: replicated, values)

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return gx.apply_updates(p, u), s

    zstep = jax.jit(step, out_shardings=(param_shardings, shardings))
    p_zero, s_zero = values, zero
    p_ref, s_ref = jax.device_get(values), tx.init(jax.device_get(values))
    for g in grads:
        p_zero, s_zero = zstep(p_zero, s_zero, jax.device_put(g, replicated))
        p_ref, s_ref = jax.jit(step)(p_ref, s_ref, g)
    for k in shapes:
        np.testing.assert_allclose(
            np.asarray(p_zero[k]), np.asarray(p_ref[k]), rtol=1e-6, atol=1e-7
        )
        assert p_zero[k].sharding.is_fully_replicated
    assert _bytes_per_device(s_zero)["0"] == per_zero
    return {
        "per_device_state_bytes_replicated": per_plain,
        "per_device_state_bytes_zero1": per_zero,
        "devices": N_DEVICES,
        "param_bytes": total // 2,
    }


def check_data_parallel_example() -> dict[str, Any]:
    """shard_map, jit and ZeRO-1 data parallelism equal one device (rtol 1e-6)."""
    import jax
    import numpy as np

    example = _example()
    mesh = jax.make_mesh((N_DEVICES,), (example.AXIS,))
    steps = 10
    reference = example.train_single_device(steps)
    errors = {}
    for mode, run in (
        ("shard_map", lambda: example.train_shard_map(mesh, steps)),
        ("jit", lambda: example.train_jit(mesh, steps)),
        ("zero1", lambda: example.train_jit(mesh, steps, zero1=True)),
    ):
        params, state = run()
        errors[mode] = example.max_relative_error(params, reference)
        for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(reference), strict=True):
            np.testing.assert_allclose(
                got, want, rtol=1e-6, atol=1e-6 * float(np.max(np.abs(want))), err_msg=mode
            )
        if mode == "zero1":
            mu = state[0].mu["hidden"]["w"]
            assert mu.sharding.spec[0] == example.AXIS, mu.sharding
            assert mu.addressable_shards[0].data.shape[0] == mu.shape[0] // N_DEVICES
    assert example.main(["--steps", "3"]) == 0
    return {"max_relative_error": errors}


def check_orbax_checkpoint() -> dict[str, Any]:
    """Save sharded params and state with orbax; restore them into the same mesh."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import orbax.checkpoint as ocp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import gradxform as gx
    from gradxform import zero1_shardings

    mesh = jax.make_mesh((4, 2), ("data", "model"))
    param_shardings = {"w": NamedSharding(mesh, P(None, "model")), "b": NamedSharding(mesh, P())}
    rng = np.random.default_rng(0)
    values = {"w": rng.normal(size=(16, 8)), "b": rng.normal(size=(6,))}
    params = jax.tree.map(
        lambda v, s: jax.device_put(jnp.asarray(v, jnp.float32), s), values, param_shardings
    )
    tx = gx.adamw(0.1, weight_decay=0.01)
    shardings = zero1_shardings(tx, params, axis="data")

    def step(p, s):
        u, s = tx.update(jax.tree.map(jnp.sin, p), s, p)
        return gx.apply_updates(p, u), s

    step = jax.jit(step, out_shardings=(param_shardings, shardings))
    state = jax.jit(tx.init, out_shardings=shardings)(params)
    params, state = step(params, state)

    # The restore target is built from the optimizer and shardings alone, as after a restart.
    abstract_params = jax.tree.map(
        lambda v, s: jax.ShapeDtypeStruct(v.shape, jnp.float32, sharding=s), values, param_shardings
    )
    abstract_state = jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
        jax.eval_shape(tx.init, abstract_params),
        zero1_shardings(tx, abstract_params, axis="data"),
    )
    with tempfile.TemporaryDirectory() as tmp, ocp.StandardCheckpointer() as checkpointer:
        path = pathlib.Path(tmp) / "step_1"
        checkpointer.save(path, {"params": params, "opt_state": state})
        checkpointer.wait_until_finished()
        restored = checkpointer.restore(
            path, {"params": abstract_params, "opt_state": abstract_state}
        )
    saved = {"params": params, "opt_state": state}
    assert jax.tree.structure(restored) == jax.tree.structure(saved)
    assert isinstance(restored["opt_state"][0], gx.ScaleByAdamState)
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(saved), strict=True):
        assert got.dtype == want.dtype
        assert got.sharding.is_equivalent_to(want.sharding, want.ndim), (
            got.sharding,
            want.sharding,
        )
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    # Training continues identically from the restored copy.
    a = step(params, state)
    b = step(restored["params"], restored["opt_state"])
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    return {"leaves": len(jax.tree.leaves(saved))}


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "state_shardings": check_state_shardings,
    "key_path_fallback": check_key_path_fallback,
    "zero1": check_zero1,
    "data_parallel_example": check_data_parallel_example,
    "orbax_checkpoint": check_orbax_checkpoint,
    "explicit_sharding": check_explicit_sharding,
}


def main() -> int:
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={N_DEVICES}"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    warnings.simplefilter("error")
    import jax

    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    if jax.device_count() != N_DEVICES:
        raise RuntimeError(f"expected {N_DEVICES} devices, got {jax.devices()}")
    names = sys.argv[1:] or list(CHECKS)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            results[name] = {"ok": True, "metrics": CHECKS[name]()}
        except Exception:
            results[name] = {"ok": False, "error": traceback.format_exc()}
    print(MARKER + json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
