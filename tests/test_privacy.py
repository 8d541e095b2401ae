"""differentially_private_aggregate and dpsgd (Abadi et al. 2016, "Deep Learning with
Differential Privacy") against the NumPy references of tests/references_privacy.py, with
statistical checks of the clipping bound and of the noise's scale, and their errors.

``dpsgd`` is a battery entry (tests/registry.py), fed the batch of examples that
``per_example_view`` makes of each battery gradient: jit, recompilation, scan, dtypes,
``ShapeDtypeStruct`` init and state saving are checked there.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests import references_privacy as rp

BATCH = 6


def params_tree(dtype: Any = jnp.float32) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "dense": {
            "kernel": jnp.asarray(rng.normal(size=(3, 4)), dtype),
            "bias": jnp.asarray(rng.normal(size=(4,)), dtype),
        },
        "scale": jnp.asarray(rng.normal(), dtype),
    }


def per_example_grads(
    params: Any, steps: int, batch: int = BATCH, seed: int = 1, spread: float = 3.0
) -> list[Any]:
    """Per-example gradients whose norms range over about ``spread`` decades (some below,
    some above the clipping bounds the tests use), and one all-zero example per step."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        scales = 10.0 ** rng.uniform(-spread / 2, spread / 2, size=batch)
        scales[0] = 0.0

        def example_grads(p: Any, scales: np.ndarray = scales) -> Any:
            shape = (-1,) + (1,) * jnp.ndim(p)
            return jnp.asarray(
                scales.reshape(shape) * rng.normal(size=(batch, *jnp.shape(p))), p.dtype
            )

        out.append(jax.tree.map(example_grads, params))
    return out


def run(tx: Any, params: Any, grads: list[Any], *, jit: bool = False) -> list[list[np.ndarray]]:
    update = jax.jit(tx.update) if jit else tx.update
    state = tx.init(params)
    out = []
    for g in grads:
        u, state = update(g, state, params)
        params = gx.apply_updates(params, u)
        out.append([np.asarray(x, np.float64) for x in jax.tree.leaves(u)])
    return out


def run_reference(reference: Any, params: Any, grads: list[Any]) -> list[list[np.ndarray]]:
    ps = [np.asarray(p, np.float64) for p in jax.tree.leaves(params)]
    state = reference.init(ps)
    out = []
    for g in grads:
        us, state = reference.step(
            [np.asarray(x, np.float64) for x in jax.tree.leaves(g)], state, ps
        )
        ps = [p + u for p, u in zip(ps, us, strict=True)]
        out.append(us)
    return out


def assert_close(got: Any, want: Any, rtol: float, atol: float) -> None:
    for t, (xs, ys) in enumerate(zip(got, want, strict=True)):
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            np.testing.assert_allclose(
                x, y, rtol=rtol, atol=atol, err_msg=f"step {t + 1}, leaf {i}"
            )


# ------------------------------------------------------------- the NumPy reference

AGGREGATE_CASES = [
    dict(l2_norm_clip=1.0, noise_multiplier=0.0, key=0),
    dict(l2_norm_clip=0.3, noise_multiplier=0.0, key=5),
    dict(l2_norm_clip=50.0, noise_multiplier=0.0, key=5),
    dict(l2_norm_clip=1.0, noise_multiplier=1.1, key=3),
    dict(l2_norm_clip=0.5, noise_multiplier=4.0, seed=9),
]


@pytest.mark.parametrize("kwargs", AGGREGATE_CASES, ids=str)
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_aggregate_matches_numpy_reference(kwargs: dict[str, Any], jit: bool):
    """Without noise: clip each example, average, to float32 rounding; with noise, the same
    standard normal draws scaled by ``C sigma / B``."""
    params = params_tree()
    grads = per_example_grads(params, steps=5)
    got = run(gx.differentially_private_aggregate(**kwargs), params, grads, jit=jit)
    want = run_reference(rp.DPAggregate(**kwargs), params, grads)
    assert_close(got, want, rtol=1e-6, atol=1e-7)


def test_zero_noise_is_the_mean_of_the_clipped_examples():
    """noise_multiplier=0 and a bound above every norm: plain averaging (optax's test)."""
    params = params_tree()
    (grads,) = per_example_grads(params, steps=1)
    tx = gx.differentially_private_aggregate(float(np.finfo(np.float32).max), 0.0, key=0)
    state = tx.init(params)
    for _ in range(3):
        u, state = tx.update(grads, state, params)
        chex.assert_trees_all_close(u, jax.tree.map(lambda g: g.mean(0), grads), rtol=1e-6)


DPSGD_CASES = [
    dict(learning_rate=0.1, l2_norm_clip=1.0, noise_multiplier=0.0, seed=0),
    dict(learning_rate=0.1, l2_norm_clip=1.0, noise_multiplier=0.0, seed=0, momentum=0.9),
    dict(
        learning_rate=0.05,
        l2_norm_clip=0.7,
        noise_multiplier=0.0,
        seed=0,
        momentum=0.8,
        nesterov=True,
    ),
    dict(learning_rate=0.1, l2_norm_clip=1.5, noise_multiplier=0.8, seed=4, momentum=0.9),
    dict(learning_rate=0.02, l2_norm_clip=2.0, noise_multiplier=1.3, seed=2),
]


@pytest.mark.parametrize("kwargs", DPSGD_CASES, ids=str)
def test_dpsgd_matches_numpy_reference(kwargs: dict[str, Any]):
    params = params_tree()
    grads = per_example_grads(params, steps=8)
    got = run(gx.dpsgd(**kwargs), params, grads)
    want = run_reference(rp.DPSGD(**kwargs), params, grads)
    assert_close(got, want, rtol=1e-6, atol=1e-7)


def test_dpsgd_is_the_aggregate_then_sgd():
    params = params_tree()
    grads = per_example_grads(params, steps=6)
    got = run(gx.dpsgd(0.1, 1.0, 0.5, 3, momentum=0.9, nesterov=True), params, grads)
    chained = gx.chain(
        gx.differentially_private_aggregate(1.0, 0.5, key=3), gx.sgd(0.1, 0.9, nesterov=True)
    )
    assert_close(got, run(chained, params, grads), rtol=0, atol=0)


# ------------------------------------------------------- the sweep's per-example view


def test_per_example_view_matches_its_reference():
    """The adapter the sweep uses (tests/test_hyperparams_sweep.py) builds the batch its
    reference builds."""
    params = params_tree()
    grads = [jax.tree.map(lambda p: p * 0.7 + 0.1, params)]
    kw = dict(l2_norm_clip=1.0, noise_multiplier=0.6, key=1)
    got = run(
        gx.chain(rp.per_example_view(), gx.differentially_private_aggregate(**kw)), params, grads
    )
    want = run_reference(rp.PerExample(rp.DPAggregate(**kw)), params, grads)
    assert_close(got, want, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------- statistics

ULP = float(np.finfo(np.float32).eps)


@pytest.mark.parametrize("l2_norm_clip", [1e-3, 0.5, 1.0, 37.0, 1e4])
def test_each_clipped_example_is_within_the_bound(l2_norm_clip: float):
    """Each example sits in its own block of coordinates (example ``b`` is nonzero only in
    row ``b``), so the aggregated sum shows every clipped example separately: its norm is at
    most the bound (up to float32 rounding), equal to it when the example was larger, and
    the example is unchanged when it was smaller."""
    batch, width = 40, 7
    rng = np.random.default_rng(int(l2_norm_clip * 1000) % 2**31)
    scales = l2_norm_clip * 10.0 ** rng.uniform(-3, 3, size=batch)
    scales[:3] = [0.0, l2_norm_clip, l2_norm_clip * (1 + 1e-6)]
    a = np.zeros((batch, batch, width), np.float32)
    b = np.zeros((batch, batch), np.float32)
    for i in range(batch):
        v = rng.normal(size=width + 1)
        v *= scales[i] / np.linalg.norm(v)
        a[i, i], b[i, i] = v[:width], v[width]
    tx = gx.differentially_private_aggregate(l2_norm_clip, 0.0, key=0)
    grads = {"a": jnp.asarray(a), "b": jnp.asarray(b)}
    u, _ = jax.jit(tx.update)(grads, tx.init({"a": a[0], "b": b[0]}))
    rows = np.concatenate([np.asarray(u["a"]), np.asarray(u["b"])[:, None]], axis=1) * batch
    given = np.concatenate([a[np.arange(batch), np.arange(batch)], b.diagonal()[:, None]], axis=1)
    norms = np.linalg.norm(rows.astype(np.float64), axis=1)
    given_norms = np.linalg.norm(given.astype(np.float64), axis=1)
    assert np.all(norms <= l2_norm_clip * (1 + 4 * ULP)), norms.max() / l2_norm_clip
    big = given_norms > l2_norm_clip
    np.testing.assert_allclose(norms[big], l2_norm_clip, rtol=4 * ULP)
    np.testing.assert_allclose(rows[~big], given[~big], rtol=4 * ULP, atol=0)


def noise_samples(
    l2_norm_clip: float, noise_multiplier: float, batch: int, steps: int
) -> np.ndarray:
    """The noise alone: the noised aggregate minus the noiseless one, every coordinate of
    every leaf over ``steps`` steps."""
    params = {"w": jnp.zeros((100, 60)), "b": jnp.zeros(7)}
    grads = per_example_grads(params, steps=steps, batch=batch, seed=4)
    noised = run(
        gx.differentially_private_aggregate(l2_norm_clip, noise_multiplier, key=11), params, grads
    )
    clean = run(gx.differentially_private_aggregate(l2_norm_clip, 0.0, key=11), params, grads)
    return np.concatenate(
        [
            np.ravel(x - y)
            for xs, ys in zip(noised, clean, strict=True)
            for x, y in zip(xs, ys, strict=True)
        ]
    )


def std_agrees(sample: np.ndarray, expected: float, z: float = 5.0) -> bool:
    """Whether the sample standard deviation of ``sample`` (n values, presumed normal with
    mean 0) is within ``z`` standard errors of ``expected``: the estimator's standard error
    is ``expected / sqrt(2 (n - 1))``. The mean is checked the same way (error
    ``expected / sqrt(n)``)."""
    n = sample.size
    std, mean = float(np.std(sample, ddof=1)), float(np.mean(sample))
    return abs(std - expected) <= z * expected / math.sqrt(2 * (n - 1)) and abs(
        mean
    ) <= z * expected / math.sqrt(n)


@pytest.mark.parametrize(
    "l2_norm_clip,noise_multiplier,batch", [(1.0, 1.1, 6), (0.25, 4.0, 32), (3.0, 0.5, 1)]
)
def test_noise_std_is_clip_times_multiplier_over_batch(
    l2_norm_clip: float, noise_multiplier: float, batch: int
):
    """Over 5 steps x 6007 coordinates (about 30,000 draws) the noise's standard deviation is
    ``C sigma / B`` within 5 standard errors of the estimator (about 2% of it), and a wrong
    multiplier (3% off), a missing division by the batch or a missing factor C is rejected
    by the same check (the negative controls)."""
    sample = noise_samples(l2_norm_clip, noise_multiplier, batch, steps=5)
    assert sample.size == 5 * 6007
    expected = l2_norm_clip * noise_multiplier / batch
    assert std_agrees(sample, expected)
    assert not std_agrees(sample, expected * 1.03)
    assert not std_agrees(sample, expected / 1.03)
    if batch > 1:
        assert not std_agrees(sample, l2_norm_clip * noise_multiplier)
    if l2_norm_clip != 1.0:
        assert not std_agrees(sample, noise_multiplier / batch)


def test_noise_is_fresh_at_every_step_and_differs_between_leaves():
    sample = noise_samples(1.0, 1.0, 2, steps=3).reshape(3, -1)
    corr = np.corrcoef(sample)
    # |r| of independent normals over n = 6007 has standard error 1/sqrt(n) ~ 0.013.
    assert np.all(np.abs(corr[np.triu_indices(3, 1)]) < 5 / math.sqrt(sample.shape[1]))
    # Each leaf has its own key: leaf "b" (7 entries, first in key order) is not the start
    # of leaf "w" drawn again.
    assert not np.allclose(sample[0, :7], sample[0, 7:14])


# --------------------------------------------------------------- battery properties


def test_state_is_the_key_data_and_saves_like_any_array():
    tx = gx.differentially_private_aggregate(1.0, 1.0, key=jax.random.key(7))
    state = tx.init(params_tree())
    assert isinstance(state, gx.DifferentiallyPrivateAggregateState)
    assert state._fields == ("rng_key",)
    np.testing.assert_array_equal(state.rng_key, jax.random.key_data(jax.random.key(7)))
    assert state.rng_key.dtype == jnp.uint32
    shapes = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params_tree())
    chex.assert_trees_all_equal(tx.init(shapes), state)
    restored = gx.load_state_dict(state, gx.state_dict(state))
    chex.assert_trees_all_equal(restored, state)


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(l2_norm_clip=0.0), ValueError, "l2_norm_clip=0.0"),
        (dict(l2_norm_clip=-1.0), ValueError, "l2_norm_clip=-1.0"),
        (dict(l2_norm_clip=math.nan), ValueError, "l2_norm_clip=nan"),
        (dict(l2_norm_clip=math.inf), ValueError, "l2_norm_clip=inf"),
        (dict(l2_norm_clip=lambda t: 1.0), TypeError, "l2_norm_clip="),
        (dict(l2_norm_clip=jnp.ones(2)), TypeError, "l2_norm_clip="),
        (dict(noise_multiplier=-0.1), ValueError, "noise_multiplier=-0.1"),
        (dict(noise_multiplier=math.nan), ValueError, "noise_multiplier=nan"),
        (dict(noise_multiplier=True), TypeError, "noise_multiplier=True"),
        (dict(key=-1), ValueError, "key=-1"),
        (dict(key=1.5), TypeError, "key=1.5"),
        (dict(key=jax.random.PRNGKey(0)), TypeError, "key="),
        (dict(key=jax.random.split(jax.random.key(0))), ValueError, "key="),
        (dict(key=None, seed=1.5), TypeError, "seed=1.5"),
        (dict(key=None, seed=-2), ValueError, "seed=-2"),
        (dict(key=1, seed=1), ValueError, "key or seed"),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_aggregate_arguments_are_validated(kwargs: dict[str, Any], error: type, match: str):
    full = dict(l2_norm_clip=1.0, noise_multiplier=1.0, key=0) | kwargs
    with pytest.raises(error, match=match.replace("(", r"\(").replace(".", r"\.")):
        gx.differentially_private_aggregate(**full)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(learning_rate=-0.1), ValueError, r"learning_rate=-0\.1"),
        (dict(l2_norm_clip=0), ValueError, "l2_norm_clip=0"),
        (dict(noise_multiplier=-1), ValueError, "noise_multiplier=-1"),
        (dict(seed=1.0), TypeError, r"seed=1\.0"),
        (dict(seed=-1), ValueError, "seed=-1"),
        (dict(seed=jax.random.key(0)), TypeError, "seed="),
        (dict(momentum=1.0), ValueError, r"momentum=1\.0"),
        (dict(nesterov=True), ValueError, "nesterov=True"),
        (dict(nesterov=1, momentum=0.9), TypeError, "nesterov=1"),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_dpsgd_arguments_are_validated(kwargs: dict[str, Any], error: type, match: str):
    full = dict(learning_rate=0.1, l2_norm_clip=1.0, noise_multiplier=1.0, seed=0) | kwargs
    with pytest.raises(error, match=match):
        gx.dpsgd(**full)


def test_no_key_warns_and_uses_seed_zero():
    with pytest.warns(UserWarning, match="no key"):
        tx = gx.differentially_private_aggregate(1.0, 1.0)
    chex.assert_trees_all_equal(
        tx.init(None), gx.differentially_private_aggregate(1.0, 1.0, key=0).init(None)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gx.differentially_private_aggregate(1.0, 1.0, seed=0)


def _update(grads: Any, params: Any = None) -> Any:
    tx = gx.differentially_private_aggregate(1.0, 1.0, key=0)
    return tx.update(grads, tx.init(params), params)


def test_aggregated_updates_are_refused():
    """Gradients already averaged over the batch: the leaves' first axes disagree."""
    params = params_tree()
    (grads,) = per_example_grads(params, steps=1)
    mean = jax.tree.map(lambda g: g.mean(0), grads)
    with pytest.raises(ValueError, match="leaf 'dense/kernel' has shape"):
        _update(mean, params)


def test_leaf_without_batch_axis_names_its_key_path():
    grads = {"a": jnp.ones((4, 3)), "b": {"c": jnp.ones(())}}
    with pytest.raises(ValueError, match=r"batch on axis 0 \(size 4\); leaf 'b/c' has shape \(\)"):
        _update(grads)


def test_inconsistent_batch_sizes_name_the_key_path():
    grads = {"a": jnp.ones((4, 3)), "b": [jnp.ones((4,)), jnp.ones((5, 2))]}
    with pytest.raises(ValueError, match=r"leaf 'b/1' has shape \(5, 2\)"):
        _update(grads)
    with pytest.raises(ValueError, match=r"leaf 'b/1' has shape \(5, 2\)"):
        jax.jit(_update)(grads)


def test_example_shape_must_match_the_params():
    params = {"a": jnp.zeros(3), "b": jnp.zeros((2, 2))}
    grads = {"a": jnp.ones((4, 3)), "b": jnp.ones((4, 2, 3))}
    with pytest.raises(ValueError, match=r"leaf 'b' has shape \(2, 3\)"):
        _update(grads, params)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_])
def test_integer_gradients_are_refused_by_key_path(dtype: Any):
    grads = {"a": jnp.ones((4, 3)), "b": jnp.ones((4, 2), dtype)}
    with pytest.raises(TypeError, match="leaf 'b' has dtype"):
        _update(grads)


def test_empty_tree_is_refused():
    with pytest.raises(ValueError, match="no leaves"):
        _update({})


# ------------------------------------------------------------------------ wrappers


@pytest.mark.parametrize(
    "wrap",
    [
        lambda **kw: gx.inject_hyperparams(gx.dpsgd)(**kw),
        lambda **kw: gx.flat(gx.dpsgd(**kw)),
    ],
    ids=["inject_hyperparams", "flat"],
)
def test_wrapped_dpsgd_is_dpsgd(wrap: Any):
    """inject_hyperparams (the numbers in the state) and flat (the state in one buffer; the
    aggregation is per-leaf, so flat runs it on the tree) give dpsgd's updates."""
    kw = dict(learning_rate=0.1, l2_norm_clip=1.0, noise_multiplier=0.7, seed=2, momentum=0.9)
    params = params_tree()
    grads = per_example_grads(params, steps=4)
    got = run(wrap(**kw), params, grads, jit=True)
    assert_close(got, run(gx.dpsgd(**kw), params, grads, jit=True), rtol=1e-6, atol=1e-8)
