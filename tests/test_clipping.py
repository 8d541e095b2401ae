"""Gradient processing and non-finite input: clipping, zero_nans, add_noise, centralize,
apply_if_finite and dynamic loss scaling."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from gradxform import (
    adaptive_grad_clip,
    add_noise,
    apply_if_finite,
    centralize,
    clip,
    clip_by_block_rms,
    clip_by_global_norm,
    dynamic_loss_scaling,
    unitwise_norm,
    zero_nans,
)
from tests._util import grad_sequence, make_params, run
from tests.registry import REGISTRY, Entry

TWO = [e for e in REGISTRY if e.id in ("sgd-momentum", "adam")]


def _np(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def _tree_equal_np(ours, expected, **kw):
    chex.assert_trees_all_close(_np(ours), expected, **{"rtol": 1e-6, "atol": 1e-7, **kw})


def _poison(grads, value):
    return {**grads, "dense": {**grads["dense"], "bias": grads["dense"]["bias"].at[1].set(value)}}


def _apply(tx, g, params=None):
    return tx.update(g, tx.init(g if params is None else params), params)[0]


# -------------------------------------------------------------------------- clip


def test_clip_matches_numpy_and_handles_nonfinite():
    g = {"a": jnp.array([-3.0, 0.5, jnp.inf, -jnp.inf, jnp.nan]), "n": jnp.array([5], jnp.int32)}
    out = _apply(clip(1.0), g)
    np.testing.assert_array_equal(np.asarray(out["a"]), [-1.0, 0.5, 1.0, -1.0, np.nan])
    chex.assert_trees_all_equal(out["n"], g["n"])


# --------------------------------------------------------------- global norm


def test_clip_by_global_norm_matches_numpy_and_optax():
    params = make_params()
    for g in grad_sequence(params, steps=2):
        g = jax.tree.map(lambda x: 3.0 * x, g)
        leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(g)]
        norm = np.sqrt(sum(np.sum(x * x) for x in leaves))
        factor = min(1.0, 2.0 / norm)
        expected = jax.tree.map(lambda x, f=factor: np.asarray(x, np.float64) * f, g)
        ours = _apply(clip_by_global_norm(2.0), g)
        _tree_equal_np(ours, expected)
        with jax.numpy_dtype_promotion("standard"):
            theirs = _apply(optax.clip_by_global_norm(2.0), g)
        chex.assert_trees_all_close(ours, theirs, rtol=1e-6)
    small = {"a": jnp.array([0.1, 0.2])}
    chex.assert_trees_all_equal(_apply(clip_by_global_norm(2.0), small), small)


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf, -jnp.inf])
def test_clip_by_global_norm_nonfinite(bad):
    g = {"a": jnp.array([1.0, bad]), "b": jnp.array([2.0]), "n": jnp.array([3], jnp.int32)}
    zero = _apply(clip_by_global_norm(1.0), g)  # default: the safe behaviour
    chex.assert_trees_all_equal(zero, {"a": jnp.zeros(2), "b": jnp.zeros(1), "n": g["n"]})
    nan = _apply(clip_by_global_norm(1.0, on_nonfinite="nan"), g)
    assert bool(jnp.all(jnp.isnan(nan["a"]))) and bool(jnp.all(jnp.isnan(nan["b"])))
    chex.assert_trees_all_equal(nan["n"], g["n"])
    # For comparison, optax's result mixes NaN and zeros (NaN norm: all NaN; inf norm:
    # the finite leaves become 0 and the infinite entry NaN).
    with jax.numpy_dtype_promotion("standard"):
        theirs = _apply(optax.clip_by_global_norm(1.0), {"a": g["a"], "b": g["b"]})
    assert not bool(jnp.all(jnp.isfinite(theirs["a"])))


def test_clip_by_global_norm_sum_of_squares_overflow_is_treated_as_nonfinite():
    g = jnp.array([3e38, 3e38], jnp.float32)  # finite, but the sum of squares is inf
    chex.assert_trees_all_equal(_apply(clip_by_global_norm(1.0), g), jnp.zeros(2))


# ------------------------------------------------------------------ block rms


def test_clip_by_block_rms_matches_numpy_and_optax_and_is_per_leaf():
    params = make_params()
    g = jax.tree.map(lambda x: 4.0 * x, grad_sequence(params, steps=1)[0])

    def ref(x):
        x = np.asarray(x, np.float64)
        rms = np.sqrt(np.mean(x * x))
        return x * min(1.0, 1.5 / rms)

    ours = _apply(clip_by_block_rms(1.5), g)
    _tree_equal_np(ours, jax.tree.map(ref, g))
    with jax.numpy_dtype_promotion("standard"):
        chex.assert_trees_all_close(ours, _apply(optax.clip_by_block_rms(1.5), g), rtol=1e-6)
    bad = {**g, "scale": jnp.array(jnp.nan)}
    out = _apply(clip_by_block_rms(1.5), bad)
    assert float(out["scale"]) == 0.0
    chex.assert_trees_all_equal(out["dense"], ours["dense"])


# --------------------------------------------------------------------- AGC


def _agc_reference(g, p, clipping, eps):
    g, p = np.asarray(g, np.float64), np.asarray(p, np.float64)
    axes = None if g.ndim <= 1 else tuple(range(g.ndim - 1))
    gn = np.sqrt(np.sum(g * g, axis=axes, keepdims=True))
    pn = np.maximum(np.sqrt(np.sum(p * p, axis=axes, keepdims=True)), eps)
    bound = clipping * pn
    return np.where(gn > bound, g * bound / np.where(gn > 0, gn, 1.0), g)


def test_adaptive_grad_clip_matches_numpy_and_optax():
    rng = np.random.default_rng(0)
    params = {
        "dense": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32),
        "conv": jnp.asarray(rng.normal(size=(3, 3, 2, 4)), jnp.float32),
        "bias": jnp.zeros(3),
        "scale": jnp.asarray(0.7),
    }
    g = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
    ours = _apply(adaptive_grad_clip(0.1, 1e-3), g, params)
    expected = jax.tree.map(lambda x, p: _agc_reference(x, p, 0.1, 1e-3), g, params)
    _tree_equal_np(ours, expected)
    assert not np.allclose(np.asarray(ours["dense"]), np.asarray(g["dense"]))  # clipping happened
    with jax.numpy_dtype_promotion("standard"):
        theirs = optax.adaptive_grad_clip(0.1, 1e-3).update(g, optax.EmptyState(), params)[0]
    chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-7)


def test_adaptive_grad_clip_nonfinite_unit_only_and_needs_params():
    p = jnp.ones((2, 3))
    g = jnp.ones((2, 3)).at[0, 1].set(jnp.inf)
    out = _apply(adaptive_grad_clip(0.1), g, p)
    np.testing.assert_array_equal(np.asarray(out[:, 1]), [0.0, 0.0])
    assert bool(jnp.all(jnp.isfinite(out))) and float(out[0, 0]) > 0
    out = _apply(adaptive_grad_clip(0.1, on_nonfinite="nan"), g, p)
    assert bool(jnp.all(jnp.isnan(out[:, 1]))) and bool(jnp.all(jnp.isfinite(out[:, 0])))
    with pytest.raises(ValueError, match="needs the params"):
        adaptive_grad_clip(0.1).update(g, gx.EmptyState())
    with pytest.raises(ValueError, match=r"'b'.*\(1,\).*\(3,\)"):
        adaptive_grad_clip(0.1).update({"b": jnp.ones(1)}, gx.EmptyState(), {"b": jnp.ones(3)})


@pytest.mark.parametrize(
    "shape,axes",
    [
        ((), None),
        ((5,), None),
        ((1, 5), None),
        ((5, 1), None),
        ((4, 3), (0,)),
        ((2, 3, 4), (0,)),
        ((3, 3, 2, 4), (0, 1, 2)),
        ((2, 2, 2, 3, 4), (0, 1, 2, 3)),
    ],
)
def test_unitwise_norm_follows_optax_layout(shape, axes):
    rng = np.random.default_rng(0)
    x = np.asarray(rng.normal(size=shape), np.float32)
    expected = np.broadcast_to(
        np.sqrt(np.sum(x.astype(np.float64) ** 2, axis=axes, keepdims=True)), shape
    )
    ours = unitwise_norm(jnp.asarray(x))
    assert ours.shape == shape and ours.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-6)
    theirs = optax.transforms.unitwise_norm(x)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-6)


def test_unitwise_norm_axis_and_unknown_rank():
    x = jnp.arange(2 * 3 * 4 * 5 * 2 * 2, dtype=jnp.float32).reshape(2, 3, 4, 5, 2, 2)
    with pytest.raises(ValueError, match=r"rank 6.*axis="):
        unitwise_norm(x)
    for axis in (0, (1, 2), -1):
        chex.assert_trees_all_close(
            unitwise_norm(x, axis=axis), optax.transforms.unitwise_norm(x, axis=axis), rtol=1e-6
        )
    half = unitwise_norm(jnp.ones((2, 3), jnp.float16))  # computed in float32, given in float16
    assert half.dtype == jnp.float16
    with pytest.raises(TypeError, match=r"axis=1\.5"):
        adaptive_grad_clip(0.1, axis=1.5)


def test_adaptive_grad_clip_axis_matches_optax():
    rng = np.random.default_rng(1)
    p = jnp.asarray(rng.normal(size=(2, 3, 4, 5, 6)), jnp.float32)
    g = jnp.asarray(10 * rng.normal(size=p.shape), jnp.float32)
    for axis in (None, (0, 1), 4):
        ours = _apply(adaptive_grad_clip(0.2, 1e-3, axis), g, p)
        theirs = optax.adaptive_grad_clip(0.2, 1e-3, axis).update(g, optax.EmptyState(), p)[0]
        chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-7)


def test_unitwise_clip_matches_numpy_and_optax():
    rng = np.random.default_rng(2)
    g = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
    n = unitwise_norm(g)
    limit = jnp.full_like(n, 1.0)
    ours = gx.unitwise_clip(n, limit, g)
    gn, lim = np.asarray(n, np.float64), np.asarray(limit, np.float64)
    expected = np.where(gn < lim, np.asarray(g), np.asarray(g) * lim / np.maximum(gn, 1e-6))
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-6)
    chex.assert_trees_all_close(ours, optax.transforms.unitwise_clip(n, limit, g), rtol=1e-6)
    with pytest.raises(ValueError, match="max_norm has shape"):
        gx.unitwise_clip(n, jnp.ones(3), g)


@pytest.mark.parametrize("clip_to", [0.0, 1.25, 4.0, jnp.inf])
def test_per_example_global_norm_clip_matches_numpy_and_optax(clip_to):
    rng = np.random.default_rng(3)
    grads = {
        "w": jnp.asarray(rng.normal(size=(6, 3, 2)), jnp.float32),
        "b": jnp.asarray(rng.normal(size=(6, 2)), jnp.float32),
    }
    grads["w"] = grads["w"].at[2].set(0.0)
    grads["b"] = grads["b"].at[2].set(0.0)  # an all-zero example: factor 1
    ours, count = gx.per_example_global_norm_clip(grads, clip_to)
    w, b = (np.asarray(grads[k], np.float64) for k in ("w", "b"))
    norms = np.sqrt(np.sum(w.reshape(6, -1) ** 2, 1) + np.sum(b**2, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = np.nan_to_num(np.minimum(clip_to / norms, 1.0), nan=1.0)
    np.testing.assert_allclose(
        np.asarray(ours["w"]), np.tensordot(factors, w, 1), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(ours["b"]), np.tensordot(factors, b, 1), rtol=1e-5, atol=1e-6
    )
    assert int(count) == int(np.sum(factors < 1))
    theirs, their_count = optax.per_example_global_norm_clip(grads, clip_to)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert int(count) == int(their_count)


@pytest.mark.parametrize("uniform", [True, False])
def test_per_example_layer_norm_clip_matches_optax(uniform):
    rng = np.random.default_rng(4)
    grads = [
        jnp.asarray(rng.normal(size=(5, 4)), jnp.float32),
        jnp.asarray(3 * rng.normal(size=(5, 2, 3)), jnp.float32),
    ]
    ours = gx.per_example_layer_norm_clip(grads, 2.0, uniform)
    theirs = optax.per_example_layer_norm_clip(grads, 2.0, uniform)
    chex.assert_trees_all_close(ours[0], theirs[0], rtol=1e-5, atol=1e-6)
    assert [int(c) for c in ours[1]] == [int(c) for c in theirs[1]]
    # Each layer alone is the global clip of that layer to its share of the bound.
    share = [2.0 / np.sqrt(2)] * 2 if uniform else [2.0 * np.sqrt(4 / 10), 2.0 * np.sqrt(6 / 10)]
    for leaf, bound, total in zip(grads, share, ours[0], strict=True):
        chex.assert_trees_all_close(
            total, gx.per_example_global_norm_clip([leaf], bound)[0][0], rtol=1e-6
        )


def test_per_example_clips_need_a_batch_axis():
    with pytest.raises(ValueError, match=r"batch on axis 0.*'1'.*\(3,\)"):
        gx.per_example_global_norm_clip([jnp.ones((2, 3)), jnp.ones(3)], 1.0)
    with pytest.raises(ValueError, match="batch on axis 0"):
        gx.per_example_layer_norm_clip([jnp.ones(())], 1.0)


# ------------------------------------------------------------ zero_nans, noise


def test_zero_nans():
    tx = zero_nans()
    g = {"a": jnp.array([jnp.nan, 1.0, jnp.inf]), "b": jnp.ones(2, jnp.bfloat16)}
    u, state = tx.update(g, tx.init(g))
    np.testing.assert_array_equal(np.asarray(u["a"]), [0.0, 1.0, np.inf])
    chex.assert_trees_all_equal(u["b"], g["b"])
    assert bool(state.found_nan["a"]) and not bool(state.found_nan["b"])
    with pytest.raises(ValueError, match="'c'"):
        tx.update({"a": g["a"], "c": g["b"]}, state)


def test_add_noise_statistics_determinism_and_dtype():
    eta, gamma = 0.5, 0.55
    tx = add_noise(eta, gamma, key=3)
    zeros = {"w": jnp.zeros((200, 100)), "h": jnp.zeros((50,), jnp.float16)}
    state = tx.init(zeros)
    step = jax.jit(tx.update)
    for t in range(3):
        u, state = step(zeros, state)
        var = float(jnp.var(u["w"]))
        np.testing.assert_allclose(var, eta / (1 + t) ** gamma, rtol=0.05)
        assert u["h"].dtype == jnp.float16
    assert int(state.count) == 3 and state.rng_key.dtype == jnp.uint32
    again, _ = add_noise(eta, gamma, 3).update(zeros, add_noise(eta, gamma, 3).init(zeros))
    first, _ = tx.update(zeros, tx.init(zeros))
    chex.assert_trees_all_equal(again, first)
    four = add_noise(eta, gamma, key=jax.random.key(4))
    other, _ = four.update(zeros, four.init(zeros))
    assert not np.array_equal(np.asarray(other["w"]), np.asarray(first["w"]))


def test_add_noise_draws_optax_noise():
    g = {"w": jnp.zeros((30, 4)), "b": jnp.zeros(7)}
    for key in (5, jax.random.key(11)):
        ours, theirs = add_noise(0.3, 0.55, key), optax.add_noise(0.3, 0.55, key)
        s_ours, s_theirs = ours.init(g), theirs.init(g)
        for _ in range(3):
            u, s_ours = ours.update(g, s_ours)
            with jax.numpy_dtype_promotion("standard"):
                v, s_theirs = theirs.update(g, s_theirs)
            chex.assert_trees_all_close(u, v, rtol=1e-6, atol=1e-7)
        assert int(s_ours.count) == int(s_theirs.count) == 3
        np.testing.assert_array_equal(
            np.asarray(s_ours.rng_key), np.asarray(jax.random.key_data(s_theirs.rng_key))
        )


def test_add_noise_seed_is_a_key_and_key_defaults_to_zero():
    g = jnp.zeros(5)
    by_seed = add_noise(1.0, 0.5, seed=2)
    by_key = add_noise(1.0, 0.5, 2)
    chex.assert_trees_all_equal(
        by_seed.update(g, by_seed.init(g))[0], by_key.update(g, by_key.init(g))[0]
    )
    with pytest.warns(UserWarning, match="no key"):
        default = add_noise(1.0, 0.5)
    zero = add_noise(1.0, 0.5, 0)
    chex.assert_trees_all_equal(
        default.update(g, default.init(g))[0], zero.update(g, zero.init(g))[0]
    )


def test_centralize_matches_numpy_and_optax():
    rng = np.random.default_rng(0)
    g = {
        "k": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
        "c": jnp.asarray(rng.normal(size=(2, 2, 3, 5)), jnp.float32),
        "b": jnp.asarray(rng.normal(size=(3,)), jnp.float32),
    }
    out = _apply(centralize(), g)

    def ref(x):  # each slice along the first axis minus its mean
        x = np.asarray(x, np.float64)
        return x if x.ndim < 2 else x - x.mean(axis=tuple(range(1, x.ndim)), keepdims=True)

    _tree_equal_np(out, jax.tree.map(ref, g), atol=1e-6)
    chex.assert_trees_all_close(out, _apply(optax.centralize(), g), atol=1e-6)


def test_normalize_by_update_norm_matches_numpy_and_optax():
    rng = np.random.default_rng(5)
    g = {
        "a": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
        "b": jnp.asarray(rng.normal(size=4), jnp.float32),
    }
    leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(g)]
    norm = np.sqrt(sum(np.sum(x * x) for x in leaves))
    for scale_factor, eps in ((1.0, 1e-6), (-0.5, 0.0), (3.0, 0.1)):
        out = _apply(gx.normalize_by_update_norm(scale_factor, eps), g)
        _tree_equal_np(
            out,
            jax.tree.map(
                lambda x, s=scale_factor, e=eps: np.asarray(x, np.float64) * s / (norm + e), g
            ),
        )
        chex.assert_trees_all_close(
            out, _apply(optax.normalize_by_update_norm(scale_factor, eps), g), rtol=1e-6
        )
    with pytest.raises(ValueError, match="scale_factor=0"):
        gx.normalize_by_update_norm(0)


# --------------------------------------------------------- dtypes, chains, checks

TRANSFORMS = {
    "clip": lambda: clip(0.5),
    "global_norm": lambda: clip_by_global_norm(1.0),
    "block_rms": lambda: clip_by_block_rms(0.3),
    "agc": lambda: adaptive_grad_clip(0.05),
    "zero_nans": zero_nans,
    "add_noise": lambda: add_noise(0.01, 0.55, key=0),
    "centralize": centralize,
    "normalize_by_update_norm": gx.normalize_by_update_norm,
}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_dtypes_integer_leaves_and_jit(name):
    params = {
        "f32": jnp.ones((3, 2)),
        "bf16": jnp.full((2, 2), 0.5, jnp.bfloat16),
        "f16": jnp.full((4,), 2.0, jnp.float16),
        "i": jnp.array([1, 2], jnp.int32),
    }
    grads = {
        "f32": jnp.full((3, 2), 3.0),
        "bf16": jnp.full((2, 2), -1.0, jnp.bfloat16),
        "f16": jnp.array([1e-4, 2.0, -3.0, 0.0], jnp.float16),
        "i": jnp.array([7, 7], jnp.int32),
    }
    tx = TRANSFORMS[name]()
    state = tx.init(params)
    eager, _ = tx.update(grads, state, params)
    jitted, _ = jax.jit(tx.update)(grads, state, params)
    chex.assert_trees_all_equal_dtypes(eager, grads)
    chex.assert_trees_all_close(eager, jitted, rtol=1e-3)
    chex.assert_trees_all_equal(eager["i"], grads["i"])
    chex.assert_tree_all_finite(eager)
    zeros = jax.tree.map(jnp.zeros_like, grads)
    u, _ = tx.update(zeros, state, params)
    if name != "add_noise":
        chex.assert_trees_all_equal(u, zeros)
    chex.assert_trees_all_equal_shapes_and_dtypes(
        tx.init(jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)), state
    )


@pytest.mark.parametrize("entry", TWO, ids=lambda e: e.id)
@pytest.mark.parametrize("name", TRANSFORMS)
def test_in_chain_with_registered_optimizers(entry, name):
    params = make_params()
    grads = grad_sequence(params, steps=3)
    _, p_chain, _ = run(gx.chain(TRANSFORMS[name](), entry.make()), params, grads)
    chex.assert_tree_all_finite(p_chain)
    # Clipping with a bound that never triggers changes nothing.
    loose = {
        "clip": clip(1e6),
        "global_norm": clip_by_global_norm(1e6),
        "block_rms": clip_by_block_rms(1e6),
        "agc": adaptive_grad_clip(1e6),
    }
    if name in loose:
        _, p_loose, _ = run(gx.chain(loose[name], entry.make()), params, grads)
        _, p_plain, _ = run(entry.make(), params, grads)
        chex.assert_trees_all_close(p_loose, p_plain, rtol=1e-6)


@pytest.mark.parametrize(
    "factory,kwargs,name",
    [
        (clip, dict(max_delta=-1.0), "max_delta"),
        (clip_by_global_norm, dict(max_norm=-1.0), "max_norm"),
        (clip_by_global_norm, dict(max_norm=1.0, on_nonfinite="skip"), "on_nonfinite"),
        (clip_by_block_rms, dict(threshold=float("nan")), "threshold"),
        (adaptive_grad_clip, dict(clipping=-0.1), "clipping"),
        (adaptive_grad_clip, dict(clipping=0.1, eps=-1.0), "eps"),
        (add_noise, dict(eta=-1.0, gamma=0.5, key=0), "eta"),
        (add_noise, dict(eta=1.0, gamma=-0.5, key=0), "gamma"),
        (add_noise, dict(eta=1.0, gamma=0.5, key=-1), "key"),
        (gx.normalize_by_update_norm, dict(eps=-1.0), "eps"),
    ],
)
def test_invalid_arguments(factory, kwargs, name):
    with pytest.raises(ValueError, match=name):
        factory(**kwargs)


# ---------------------------------------------------------- apply_if_finite


def test_apply_if_finite_applies_after_max_consecutive_errors():
    params = {"w": jnp.ones(2)}
    tx = apply_if_finite(gx.sgd(0.1, momentum=0.9), max_consecutive_errors=2)
    state = tx.init(params)
    bad = {"w": jnp.array([1.0, jnp.nan])}
    for n in (1, 2):
        u, state = tx.update(bad, state, params)
        chex.assert_trees_all_equal(u, {"w": jnp.zeros(2)})
        assert int(state.notfinite_count) == n
    u, state = tx.update(bad, state, params)  # the third in a row is applied
    assert bool(jnp.isnan(u["w"][1])) and int(state.notfinite_count) == 3
    assert bool(jnp.isnan(state.inner_state[0].trace["w"][1]))


def test_apply_if_finite_under_jit_and_inner_overflow():
    params = {"w": jnp.ones(2, jnp.float16)}
    tx = apply_if_finite(gx.chain(gx.scale(1e4), gx.scale(1e4)), 1)  # overflows float16
    u, state = jax.jit(tx.update)({"w": jnp.ones(2, jnp.float16)}, tx.init(params), params)
    chex.assert_trees_all_equal(u, {"w": jnp.zeros(2, jnp.float16)})
    assert int(state.total_notfinite) == 1


# ------------------------------------------------------- dynamic loss scaling


@pytest.mark.parametrize("entry", TWO, ids=lambda e: e.id)
def test_dynamic_loss_scaling_grows_and_backs_off(entry: Entry):
    params = make_params()
    grads = grad_sequence(params, steps=3)
    tx = dynamic_loss_scaling(entry.make(), initial_scale=8.0, growth_interval=2, min_scale=2.0)
    state = tx.init(params)
    scales = []
    for g in [
        grads[0],
        grads[1],
        _poison(grads[2], jnp.inf),
        _poison(grads[2], jnp.nan),
        _poison(grads[2], jnp.inf),
        grads[2],
    ]:
        before = state
        u, state = tx.update(jax.tree.map(lambda x, s=before.loss_scale: x * s, g), state, params)
        scales.append(float(state.loss_scale))
        if not bool(jnp.all(jnp.isfinite(g["dense"]["bias"]))):
            chex.assert_trees_all_equal(state.inner_state, before.inner_state)
            chex.assert_trees_all_equal(u, jax.tree.map(jnp.zeros_like, u))
    assert scales == [8.0, 16.0, 8.0, 4.0, 2.0, 2.0]
    assert int(state.total_skipped) == 3 and int(state.good_steps) == 1


def test_dynamic_loss_scaling_rescues_float16_gradients():
    w = jnp.ones(3)  # float32 master weights, float16 compute

    def loss(w, scale):
        y = w.astype(jnp.float16) * jnp.float16(1e-4)
        return jnp.sum(y * y) * scale.astype(jnp.float16)

    plain = jax.grad(loss)(w, jnp.float32(1.0))
    assert float(jnp.max(jnp.abs(plain))) == 0.0  # 2e-8 underflows in float16
    tx = dynamic_loss_scaling(gx.sgd(1.0), initial_scale=2.0**12)
    state = tx.init(w)
    u, state = tx.update(jax.grad(loss)(w, state.loss_scale), state, w)
    np.testing.assert_allclose(np.asarray(u), -2e-8, rtol=2e-2)
