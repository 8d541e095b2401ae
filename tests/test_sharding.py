"""State shardings, ZeRO-1, data parallelism and sharded checkpoints.

The multi-device checks live in ``tests/_sharding_checks.py`` and run in one
subprocess with 8 simulated CPU devices, so this process keeps its single
device. The tests below that run here use a one-device mesh: they cover the
argument checks and the bookkeeping that does not need more devices.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import gradxform as gx
from gradxform import (
    state_shardings,
    zero1_shardings,
)
from tests import _sharding_checks
from tests.registry import REGISTRY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def mesh():
    return jax.make_mesh((1,), ("data",))


def _params():
    return {"dense": {"kernel": jnp.ones((4, 3)), "bias": jnp.zeros(3)}, "scale": jnp.ones(())}


# ------------------------------------------------------------------ one device, in process


@pytest.mark.parametrize("entry", REGISTRY, ids=[e.id for e in REGISTRY])
def test_state_shardings_for_every_optimizer(entry, mesh):
    params = _params()
    specs = {"dense": {"kernel": P("data", None), "bias": P("data")}, "scale": P()}
    shardings = jax.tree.map(
        lambda s: NamedSharding(mesh, s), specs, is_leaf=lambda s: isinstance(s, P)
    )
    tx = entry.make()
    out = state_shardings(tx, params, shardings)
    chex.assert_trees_all_equal_structs(out, jax.eval_shape(tx.init, params))
    state = jax.jit(tx.init, out_shardings=out)(params)
    chex.assert_trees_all_equal(state, tx.init(params))
    shapes = jax.eval_shape(tx.init, params)
    for (path, s), leaf in zip(
        jax.tree_util.tree_flatten_with_path(out)[0], jax.tree.leaves(shapes), strict=True
    ):
        # a list of statistics under a parameter's path (SM3's per-axis accumulators) is
        # checked as that parameter's statistics
        name = re.sub(r"(\[\d+\])+$", "", jax.tree_util.keystr(path))
        # sharded like its parameter when shaped like it; scalars replicated; statistics of
        # another shape (factored rows and columns, placeholders) as state_shardings derives
        if name.endswith("['kernel']") and leaf.shape == (4, 3):
            assert s.spec[0] == "data", name
        elif name.endswith("['bias']") and leaf.shape == (3,):
            assert tuple(s.spec) == ("data",), name
        elif leaf.ndim == 0 or not name.endswith(("['kernel']", "['bias']")):
            assert all(e is None for e in s.spec), f"{name} should be replicated: {s.spec}"


def test_state_shardings_from_leaf_shardings_and_one_sharding(mesh):
    tx = gx.adam(0.1)
    row = NamedSharding(mesh, P("data"))
    abstract = jax.tree.map(
        lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype, sharding=row),
        {"a": jnp.ones(4), "b": jnp.ones((2, 2))},
    )
    from_leaves = state_shardings(tx, abstract)
    from_one = state_shardings(tx, {"a": jnp.ones(4), "b": jnp.ones((2, 2))}, row)
    assert jax.tree.map(lambda s: s.spec, from_leaves) == jax.tree.map(lambda s: s.spec, from_one)
    assert from_one[0].mu["b"].spec[0] == "data"
    assert from_one[0].count.spec == P()


def test_zero1_shardings_split_over_axis(mesh):
    params = {"w": jnp.ones((4, 3)), "odd": jnp.ones((3,)), "s": jnp.ones(())}
    out = zero1_shardings(gx.sgd(0.1, momentum=0.9), params, NamedSharding(mesh, P()), axis="data")
    trace = out[0].trace
    assert trace["w"].spec[0] == "data"
    assert trace["odd"].spec[0] == "data"  # 3 % 1 == 0 on a one-device mesh
    assert trace["s"].spec == P()


def test_state_is_created_with_the_sharding_of_its_parameter(mesh):
    sharding = NamedSharding(mesh, P("data"))
    x = jax.device_put(jnp.ones((2, 3)), sharding)
    sds = jax.ShapeDtypeStruct((2, 3), jnp.float32, sharding=sharding)
    for leaf in (x, sds):
        zeros = gx.adam(0.1, mu_dtype=jnp.bfloat16).init({"a": leaf})[0].mu["a"]
        full = gx.adagrad(0.1, initial_accumulator_value=0.5).init({"a": leaf})[0]
        for out in (zeros, full.sum_of_squares["a"]):
            assert out.sharding == sharding
            assert out.shape == (2, 3)
        assert zeros.dtype == jnp.bfloat16
    filled = gx.adagrad(0.1, initial_accumulator_value=0.5).init(sds)[0].sum_of_squares
    assert float(filled[0, 0]) == 0.5
    ints = jax.device_put(jnp.ones(3, jnp.int32), sharding)
    assert gx.adam(0.1, mu_dtype=jnp.bfloat16).init(ints)[0].mu.dtype == jnp.int32


def test_init_under_jit_has_explicit_sharding_of_params(mesh):
    sharding = NamedSharding(mesh, P("data"))
    sds = jax.ShapeDtypeStruct((4,), jnp.float32, sharding=sharding)
    out = jax.eval_shape(gx.adam(0.1).init, sds)  # jax.make_mesh axes are explicit
    assert out[0].mu.sharding.spec == P("data")
    assert out[0].nu.sharding.spec == P("data")


class _State(NamedTuple):
    buf: dict


def test_key_path_fallback_for_init_ignoring_shardings(mesh):
    tx = gx.GradientTransformation(
        lambda p: _State(jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), p)),
        lambda u, s, p=None: (u, s),
    )
    shardings = {"a": NamedSharding(mesh, P("data")), "b": NamedSharding(mesh, P())}
    out = state_shardings(tx, {"a": jnp.ones(2), "b": jnp.ones(2)}, shardings)
    assert out.buf["a"].spec == P("data")
    assert out.buf["b"].spec == P()


def test_bad_arguments_name_the_argument(mesh):
    params = {"a": jnp.ones(2), "b": {"c": jnp.ones(3)}}
    rep = NamedSharding(mesh, P())
    with pytest.raises(TypeError, match="tx must be"):
        state_shardings(object(), params, rep)
    with pytest.raises(TypeError, match="'b/c' has no sharding"):
        state_shardings(
            gx.adam(0.1),
            {
                "a": jax.ShapeDtypeStruct((2,), jnp.float32, sharding=rep),
                "b": {"c": jax.ShapeDtypeStruct((3,), jnp.float32)},
            },
        )
    with pytest.raises(TypeError, match="param_shardings for leaf 'b/c' must be a"):
        state_shardings(
            gx.adam(0.1),
            params,
            {"a": rep, "b": {"c": jax.sharding.SingleDeviceSharding(jax.devices()[0])}},
        )
    with pytest.raises(ValueError, match="param_shardings must be one NamedSharding or a tree"):
        state_shardings(gx.adam(0.1), params, {"a": rep})
    with pytest.raises(TypeError, match="params leaf 'x' must be an array"):
        state_shardings(gx.adam(0.1), {"x": "not an array"}, rep)
    with pytest.raises(ValueError, match="params has no leaves"):
        state_shardings(gx.adam(0.1), {}, rep)
    with pytest.raises(ValueError, match="axis='model' is not an axis of the mesh"):
        zero1_shardings(gx.adam(0.1), params, rep, axis="model")
    with pytest.raises(TypeError, match="axis=0 must be the name"):
        zero1_shardings(gx.adam(0.1), params, rep, axis=0)  # type: ignore[arg-type]
    other = jax.sharding.Mesh(jax.devices(), ("model",))
    with pytest.raises(ValueError, match="all parameters must share one mesh"):
        state_shardings(gx.adam(0.1), params, {"a": rep, "b": {"c": NamedSharding(other, P())}})


# ------------------------------------------------------------------ 8 devices, subprocess


def _strict_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(
        JAX_PLATFORMS="cpu",
        JAX_NUMPY_DTYPE_PROMOTION="strict",
        JAX_NUMPY_RANK_PROMOTION="raise",
        PYTHONWARNINGS="error",
        PYTHONPATH=os.pathsep.join([ROOT, env.get("PYTHONPATH", "")]),
        **extra,
    )
    return env


def test_on_8_devices_in_a_subprocess():
    """Shardings, ZeRO-1 bytes, data parallel == one device, orbax save/restore."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests._sharding_checks"],
        cwd=ROOT,
        env=_strict_env(),
        capture_output=True,
        text=True,
        timeout=150,
    )
    lines = [s for s in proc.stdout.splitlines() if s.startswith(_sharding_checks.MARKER)]
    assert proc.returncode == 0 and lines, (
        f"checks did not run (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    results = json.loads(lines[-1][len(_sharding_checks.MARKER) :])
    assert set(results) == set(_sharding_checks.CHECKS)
    failed = {k: v["error"] for k, v in results.items() if not v["ok"]}
    assert not failed, "\n".join(f"--- {k}\n{e}" for k, e in failed.items())
    zero1 = results["zero1"]["metrics"]
    print(json.dumps(zero1))
    ratio = zero1["per_device_state_bytes_replicated"] / zero1["per_device_state_bytes_zero1"]
    assert ratio > 0.99 * zero1["devices"], zero1
