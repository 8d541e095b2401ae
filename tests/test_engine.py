"""The flat-buffer engine agrees with the per-leaf path for every registered optimizer."""

from __future__ import annotations

import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from gradxform import (
    FlatState,
    flat,
    flatten_params,
)
from tests._util import grad_sequence, make_params, run, scan_run
from tests.registry import REGISTRY, Entry

IDS = [e.id for e in REGISTRY]
STEPS = 6
# The registry entries with a statistic per leaf (trust ratio, factored or per-leaf RMS);
# each declares it, so flat() keeps them on the per-leaf tree.
PER_LEAF = {
    "lamb",
    "lars",
    "lars-nesterov",
    "adafactor",
    "adafactor-unfactored",
    # per-leaf statistics: the Cautious mask's mean, NovoGrad's norm, MARS's clip
    "cautious-adamw",
    "cautious-lion",
    "novograd",
    "novograd-averaging",
    "mars",
    "mars-unclipped",
    "sm3",  # per-axis accumulators
    "sm3-no-momentum",
    "noisy-sgd",  # one noise key per leaf
    "fromage",  # the trust ratio
    "dpsgd",  # per-example norms over the tree, one noise key per leaf
    "dpsgd-nesterov",
    # Muon orthogonalizes each matrix; its partition routes leaves by shape
    "muon",
    "muon-no-nesterov-decay",
    "muon-adjust-match-rms",
    "muon-torch-momentum",
    # Shampoo and SOAP precondition each matrix by its own Kronecker factors
    "shampoo",
    "soap",
    # Sophia's estimator differentiates a loss of the params' tree (one probe key per leaf)
    "sophia",
    "kron",  # PSGD-Kron's Kronecker factors and its per-leaf RMS cap
}


def assert_agree(entry: Entry, elementwise: bool | None):
    params = make_params()
    grads = grad_sequence(params, steps=STEPS)
    ours, p_ours, state = run(flat(entry.make(), elementwise=elementwise), params, grads, jit=True)
    theirs, p_theirs, _ = run(entry.make(), params, grads, jit=True)
    assert isinstance(state, FlatState)
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        chex.assert_trees_all_close(
            a, b, rtol=1e-6, atol=entry.atol or 1e-7, custom_message=f"step {t + 1}"
        )
    chex.assert_trees_all_close(p_ours, p_theirs, rtol=1e-6, atol=entry.atol or 1e-7)


def concatenates(tx) -> bool:
    """Whether flat(tx) runs tx on concatenated buffers rather than packing its per-leaf state.

    Concatenated, the inner state is tx's own state over the buffers; packed, it is
    a dict of one buffer per dtype of tx's per-leaf state.
    """
    state = flat(tx).init({"a": jnp.ones(3), "b": jnp.ones(2)})
    return not isinstance(state.inner, dict)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_flat_matches_per_leaf_by_default(entry: Entry):
    # elementwise=None reads what the optimizer declares: always the per-leaf result.
    assert_agree(entry, elementwise=None)
    assert concatenates(entry.make()) == (entry.id not in PER_LEAF)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_packed_matches_per_leaf(entry: Entry):
    assert_agree(entry, elementwise=False)


PER_LEAF_TRANSFORMS = {
    "lamb": (lambda: gx.lamb(0.01, weight_decay=0.1), "scale_by_trust_ratio"),
    "lars": (lambda: gx.lars(0.5, weight_decay=0.1), "scale_by_trust_ratio"),
    "adafactor": (lambda: gx.adafactor(0.05, min_dim_size_to_factor=1), "scale_by_factored_rms"),
    "clip_by_block_rms": (
        lambda: gx.chain(gx.clip_by_block_rms(0.5), gx.sgd(0.1)),
        "clip_by_block_rms",
    ),
    "masked": (
        lambda: gx.masked(gx.sgd(0.1), lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
        "masked",
    ),
}


@pytest.mark.parametrize("name", PER_LEAF_TRANSFORMS)
def test_per_leaf_transformations_get_per_leaf_results(name):
    make, member = PER_LEAF_TRANSFORMS[name]
    params = make_params()
    grads = grad_sequence(params, steps=STEPS)
    ours, _, _ = run(flat(make()), params, grads, jit=True)
    theirs, _, _ = run(make(), params, grads, jit=True)
    for a, b in zip(ours, theirs, strict=True):
        chex.assert_trees_all_close(a, b, rtol=1e-6, atol=1e-7)
    # concatenating would change the statistic: an error that names the member
    with pytest.raises(ValueError, match=member):
        flat(make(), elementwise=True)
    # and it really would change it (so the check above guards something)
    tx = make()
    undeclared = gx.GradientTransformation(tx.init, lambda u, s, p=None: tx.update(u, s, p))
    forced = flat(undeclared, elementwise=True)
    wrong, _, _ = run(forced, params, grads, jit=True)
    assert not all(
        np.allclose(np.asarray(x), np.asarray(y), rtol=1e-4)
        for a, b in zip(wrong, theirs, strict=True)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_undeclared_transformations_take_the_exact_path():
    plain = gx.stateless(lambda u, p: jax.tree.map(lambda x: x / jnp.linalg.norm(x), u))
    assert not concatenates(plain)
    assert not concatenates(optax.sgd(0.1))
    assert concatenates(gx.sgd(0.1)) and concatenates(gx.adamw(0.1))
    assert not concatenates(gx.adamw(0.1, mask=lambda p: jax.tree.map(lambda _: True, p)))


def test_flat_state_is_one_buffer_per_dtype():
    params = {
        "a": jnp.ones((3, 2)),
        "b": jnp.ones(4, jnp.bfloat16),
        "c": jnp.ones(5),
        "n": jnp.array([1, 2], jnp.int32),
    }
    state = flat(gx.adam(0.1)).init(params)
    mu = state.inner[0].mu
    assert sorted(mu) == ["bfloat16", "float32"]
    assert mu["float32"].shape == (11,) and mu["float32"].dtype == jnp.float32
    assert mu["bfloat16"].shape == (4,) and mu["bfloat16"].dtype == jnp.bfloat16
    packed = flat(gx.adam(0.1), elementwise=False).init(params)
    assert sorted(packed.inner) == ["bfloat16", "float32", "int32"]


def test_eager_equals_jit():
    params = make_params()
    grads = grad_sequence(params, steps=3)
    tx = flat(gx.adamw(0.01, weight_decay=0.1))
    eager, _, _ = run(tx, params, grads)
    jitted, _, _ = run(tx, params, grads, jit=True)
    chex.assert_trees_all_close(eager, jitted, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "dtype", [jnp.float32, jnp.bfloat16, jnp.float16], ids=["float32", "bfloat16", "float16"]
)
@pytest.mark.parametrize("elementwise", [True, False], ids=["flat", "packed"])
def test_dtypes_preserved_and_int_leaves_pass_through(dtype, elementwise):
    params = {
        "w": jnp.ones(3, dtype),
        "h": jnp.ones((2, 2), jnp.float32),
        "step": jnp.array([7, 8], jnp.int32),
    }
    tx = flat(gx.adam(0.1), elementwise=elementwise)
    state = tx.init(params)
    loss = lambda p: (
        jnp.sum(p["w"].astype(jnp.float32) ** 2)
        + jnp.sum(p["h"] ** 2)
        + jnp.sum(p["step"].astype(jnp.float32))
    )
    step = jax.jit(tx.update)
    for _ in range(2):
        grads = jax.grad(loss, allow_int=True)(params)
        updates, state = step(grads, state, params)
        assert updates["w"].dtype == dtype and updates["h"].dtype == jnp.float32
        chex.assert_tree_all_finite((updates["w"], updates["h"]))
        params = gx.apply_updates(params, updates)
    np.testing.assert_array_equal(params["step"], np.array([7, 8], np.int32))
    assert params["w"].dtype == dtype


def test_state_stable_through_scan():
    params = make_params()
    tx = flat(gx.adam(0.01))
    state = tx.init(params)
    grads = grad_sequence(params, steps=3)
    p_scan, s_scan = scan_run(tx, params, grads)
    chex.assert_trees_all_equal_shapes_and_dtypes(s_scan, state)
    _, p_loop, _ = run(gx.adam(0.01), params, grads, jit=True)
    chex.assert_trees_all_close(p_scan, p_loop, rtol=1e-6, atol=1e-7)


def test_vmap_over_independent_problems():
    batch = jax.tree.map(lambda p: jnp.stack([p, 2 * p, -p]), make_params())
    grads = jax.tree.map(lambda p: jnp.cos(p) + 0.1, batch)

    def one(tx, p, g):
        u, _ = tx.update(g, tx.init(p), p)
        return u

    ours = jax.vmap(lambda p, g: one(flat(gx.adam(0.1)), p, g))(batch, grads)
    theirs = jax.vmap(lambda p, g: one(gx.adam(0.1), p, g))(batch, grads)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-6)


def test_init_from_shape_dtype_structs_and_second_step_no_retrace():
    params = make_params()
    tx = flat(gx.adam(0.01))
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    chex.assert_trees_all_equal_shapes_and_dtypes(tx.init(abstract), tx.init(params))
    traces = []

    @jax.jit
    def step(p, s, g):
        traces.append(1)
        u, s = tx.update(g, s, p)
        return gx.apply_updates(p, u), s

    state = tx.init(params)
    for g in grad_sequence(params, steps=3):
        params, state = step(params, state, g)
    assert len(traces) == 1


def test_wraps_optax_and_mismatch_names_key_path():
    params = {"a": jnp.ones(2), "b": {"c": jnp.ones(3)}}
    tx = flat(optax.sgd(0.1, momentum=0.9), elementwise=True)
    state = tx.init(params)
    with jax.numpy_dtype_promotion("standard"):
        updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    chex.assert_trees_all_close(updates, jax.tree.map(lambda p: -0.1 * jnp.ones_like(p), params))
    bad = {"a": jnp.ones(2), "b": {"c": jnp.ones(1)}}
    with pytest.raises(ValueError, match=r"b/c.*\(1,\).*\(3,\)"):
        tx.update(bad, state, params)
    with pytest.raises(TypeError, match="elementwise=1"):
        flat(gx.sgd(0.1), elementwise=1)  # type: ignore[arg-type]


def test_flatten_params_round_trip_and_gradient():
    params = {
        "w": jnp.arange(6.0).reshape(2, 3),
        "b": jnp.ones(2, jnp.bfloat16),
        "n": jnp.array(3, jnp.int32),
    }
    buffers, unflatten = flatten_params(params)
    chex.assert_trees_all_equal(unflatten(buffers), params)
    loss = lambda p: jnp.sum(p["w"] ** 2) + jnp.sum(p["b"].astype(jnp.float32))
    flat_grad = jax.grad(lambda b: loss(unflatten(b)))(buffers)
    tree_grad = jax.grad(loss, allow_int=True)(params)
    float_grads = {k: v for k, v in tree_grad.items() if k != "n"}
    chex.assert_trees_all_equal(flat_grad, flatten_params({**float_grads, "n": params["n"]})[0])


def test_large_leaves_keep_their_own_buffer():
    params = {"big": jnp.ones((4, 5)), "s1": jnp.ones(3), "s2": jnp.ones(2)}
    state = flat(gx.adam(0.1), max_leaf_size=10).init(params)
    mu = state.inner[0].mu
    assert sorted(mu) == ["float32", "float32/000000"]
    assert mu["float32/000000"].shape == (4, 5) and mu["float32"].shape == (5,)
    grads = jax.tree.map(jnp.cos, params)
    ours, _ = flat(gx.adam(0.1), max_leaf_size=10).update(grads, state, params)
    theirs, _ = gx.adam(0.1).update(grads, gx.adam(0.1).init(params), params)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-6)
    with pytest.raises(ValueError, match="max_leaf_size"):
        flat(gx.adam(0.1), max_leaf_size=0)


SHARDED = """
import jax, jax.numpy as jnp, chex
from jax.sharding import NamedSharding, PartitionSpec as P
import gradxform as gx
from gradxform import flat
mesh = jax.make_mesh((2,), ("d",))
params = {"w": jax.device_put(jnp.arange(8.0).reshape(4, 2), NamedSharding(mesh, P("d"))),
          "b": jax.device_put(jnp.ones(6), NamedSharding(mesh, P("d")))}
grads = jax.tree.map(jnp.cos, params)
reference, _ = gx.adam(0.1).update(grads, gx.adam(0.1).init(params), params)
for tx in (flat(gx.adam(0.1)), flat(gx.adam(0.1), max_leaf_size=4)):
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params)
    chex.assert_trees_all_close(updates, reference, rtol=1e-6)
    assert updates["w"].sharding.spec == P("d", None)
big = state.inner[0].mu["float32/000001"]
assert big.sharding.spec == P("d", None), big.sharding
"""


def test_sharded_params_two_devices():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-c", SHARDED],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
