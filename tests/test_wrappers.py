"""Wrappers: masked, multi_transform, freeze, apply_if_finite, dynamic loss scaling,
MultiSteps, ema_params, lookahead_in_state -- over every registered optimizer where it applies.
The optax-named wrappers are compared with optax in test_wrappers_optax.py."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from gradxform import (
    MaskedNode,
    MultiSteps,
    apply_if_finite,
    dynamic_loss_scaling,
    ema_params,
    freeze,
    label_by_path,
    lookahead,
    lookahead_in_state,
    mask_by_path,
    masked,
    multi_transform,
    state_dict,
)
from tests._require import require_keras
from tests._util import grad_sequence, make_params, run
from tests.registry import REGISTRY, Entry

IDS = [e.id for e in REGISTRY]
TWO = [e for e in REGISTRY if e.id in ("sgd-momentum", "adam")]


def _scan_final(tx, params, state, stacked):
    def body(carry, g):
        u, s = tx.update(g, carry[1], carry[0])
        return (gx.apply_updates(carry[0], u), s), None

    return jax.lax.scan(body, (params, state), stacked)[0]


def _poison(grads, value):
    return {**grads, "dense": {**grads["dense"], "bias": grads["dense"]["bias"].at[1].set(value)}}


# ------------------------------------------------ equivalences over the registry


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_trivial_wrappers_equal_unwrapped(entry: Entry):
    params = make_params()
    grads = grad_sequence(params, steps=2)
    expected, p_expected, _ = run(entry.make(), params, grads)
    everything = jax.tree.map(lambda _: True, params)
    wrapped = {
        "masked": masked(entry.make(), everything),
        "multi_transform": multi_transform({"all": entry.make()}, label_by_path({}, default="all")),
        "freeze": freeze(jax.tree.map(lambda _: False, params), inner=entry.make()),
        "apply_if_finite": apply_if_finite(entry.make(), 3),
    }
    for name, tx in wrapped.items():
        updates, p, _ = run(tx, params, grads)
        chex.assert_trees_all_equal(updates, expected, custom_message=name)
        chex.assert_trees_all_equal(p, p_expected, custom_message=name)
    # Gradients of a loss multiplied by 4 (a power of two: exact), unscaled by the wrapper.
    scaled = [jax.tree.map(lambda x: 4.0 * x, g) for g in grads]
    _, p, _ = run(dynamic_loss_scaling(entry.make(), initial_scale=4.0), params, scaled)
    chex.assert_trees_all_equal(p, p_expected)
    # Lookahead with k=1, alpha=1 syncs onto the fast weights at every step.
    _, p, _ = run(lookahead_in_state(entry.make(), 1, 1.0), params, grads)
    chex.assert_trees_all_close(p, p_expected, rtol=1e-6, atol=1e-7)
    # ema_params passes the updates through.
    updates, _, _ = run(gx.chain(entry.make(), ema_params(0.9)), params, grads)
    chex.assert_trees_all_equal(updates, expected)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_multisteps_k1_equals_unwrapped(entry: Entry):
    params = make_params()
    grads = grad_sequence(params, steps=3)
    expected, p_expected, _ = run(entry.make(), params, grads)
    updates, p, _ = run(MultiSteps(entry.make(), 1), params, grads)
    chex.assert_trees_all_equal(updates, expected)
    chex.assert_trees_all_equal(p, p_expected)


@pytest.mark.parametrize("entry", TWO, ids=lambda e: e.id)
def test_multisteps_k3_takes_the_mean(entry: Entry):
    params = make_params()
    grads = grad_sequence(params, steps=3)
    plain = entry.make()
    three = MultiSteps(entry.make(), 3)
    updates, _, state = run(three, params, grads, jax.jit(three.update))
    for u in updates[:2]:
        chex.assert_trees_all_equal(u, jax.tree.map(jnp.zeros_like, u))
    mean = jax.tree.map(lambda *g: (g[0] + g[1] + g[2]) / 3.0, *grads)
    expected, _ = plain.update(mean, plain.init(params), params)
    chex.assert_trees_all_close(updates[2], expected, rtol=1e-6, atol=1e-7)
    assert int(state.mini_step) == 0 and int(state.gradient_step) == 1


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_apply_if_finite_skips_nan_and_inf_bit_identically(entry: Entry):
    params = make_params()
    grads = grad_sequence(params, steps=3)
    tx = apply_if_finite(entry.make(), max_consecutive_errors=5)
    state = tx.init(params)
    for g in grads[:2]:
        u, state = tx.update(g, state, params)
        params = gx.apply_updates(params, u)
    for n, bad in enumerate([jnp.nan, jnp.inf, -jnp.inf], start=1):
        u, new_state = tx.update(_poison(grads[2], bad), state, params)
        chex.assert_trees_all_equal(gx.apply_updates(params, u), params)
        chex.assert_trees_all_equal(new_state.inner_state, state.inner_state)
        assert int(new_state.notfinite_count) == n and int(new_state.total_notfinite) == n
        assert not bool(new_state.last_finite)
        state = new_state
    u, state = tx.update(grads[2], state, params)
    assert int(state.notfinite_count) == 0 and int(state.total_notfinite) == 3
    # The skipped steps left no trace: the third finite step is the plain optimizer's third.
    expected, _, _ = run(entry.make(), make_params(), grads)
    chex.assert_trees_all_equal(u, expected[2])


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_lookahead_matches_the_algorithm(entry: Entry):
    k, alpha = 2, 0.5
    params = make_params()
    grads = grad_sequence(params, steps=5)
    _, p, _ = run(lookahead_in_state(entry.make(), k, alpha), params, grads)
    fast = entry.make()
    theta, phi, s = params, params, fast.init(params)
    for t, g in enumerate(grads):
        u, s = fast.update(g, s, theta)
        theta = gx.apply_updates(theta, u)
        if (t + 1) % k == 0:
            phi = jax.tree.map(lambda a, b: a + alpha * (b - a), phi, theta)
            theta = phi
    chex.assert_trees_all_close(p, theta, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------- wrapper battery

BATTERY = {
    "masked": lambda inner: masked(inner, mask_by_path("f32|bf16")),
    "multi_transform": lambda inner: multi_transform(
        {"a": inner, "b": gx.sgd(0.1, momentum=0.9)}, label_by_path({"f32": "a"}, default="b")
    ),
    "freeze": lambda inner: freeze(mask_by_path("bf16"), inner=inner),
    "apply_if_finite": lambda inner: apply_if_finite(inner, 2),
    "loss_scaling": lambda inner: dynamic_loss_scaling(inner, initial_scale=4.0, growth_interval=2),
    "multisteps": lambda inner: MultiSteps(inner, 2),
    "multisteps_f32": lambda inner: MultiSteps(inner, 2, accumulator_dtype=jnp.float32),
    "ema_params": lambda inner: gx.chain(inner, ema_params(0.9, warmup=True)),
    "lookahead_in_state": lambda inner: lookahead_in_state(inner, 2, 0.5),
}


def _mixed():
    params = {
        "f32": jnp.full((3, 2), 0.5, jnp.float32),
        "bf16": jnp.full((4,), -1.0, jnp.bfloat16),
        "f16": jnp.array([1.0, 2.0], jnp.float16),
        "i": jnp.array([3, 4], jnp.int32),
    }
    rng = np.random.default_rng(0)

    def grad(p):
        if p.dtype == jnp.int32:
            return np.zeros(p.shape, jax.dtypes.float0)
        return jnp.asarray(rng.normal(size=p.shape), p.dtype)

    return params, [jax.tree.map(grad, params) for _ in range(3)]


def _floats(tree):
    return {k: v for k, v in tree.items() if k != "i"}


@pytest.mark.parametrize("name", BATTERY)
def test_wrapper_battery(name):
    params, grads = _mixed()
    tx = BATTERY[name](gx.adam(0.01))
    traces = []

    @jax.jit
    def step(g, s, p):
        traces.append(1)
        return tx.update(g, s, p)

    state = tx.init(params)
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    chex.assert_trees_all_equal_shapes_and_dtypes(tx.init(abstract), state)
    chex.assert_trees_all_equal(tx.init(params), state)
    p_eager, p_jit, s_eager, s_jit = params, params, state, state
    for g in grads:
        u_eager, s_eager = tx.update(g, s_eager, p_eager)
        u_jit, s_jit = step(g, s_jit, p_jit)
        chex.assert_trees_all_equal_dtypes(u_jit, g)
        chex.assert_tree_all_finite(_floats(u_jit))
        # jit may fuse and reorder float32 arithmetic (a few ulps); low-precision leaves
        # are rounded once at the end, so they may differ by one ulp of their own dtype.
        for k, u in _floats(u_jit).items():
            tol = max(1e-6, float(jnp.finfo(u.dtype).eps))
            np.testing.assert_allclose(
                np.asarray(u, np.float32),
                np.asarray(u_eager[k], np.float32),
                rtol=tol,
                atol=1e-9,
                err_msg=f"{name}: leaf {k}",
            )
        p_eager = gx.apply_updates(p_eager, u_eager)
        p_jit = gx.apply_updates(p_jit, u_jit)
    assert len(traces) == 1, f"{name} retraced"
    chex.assert_trees_all_equal(p_jit["i"], params["i"])
    chex.assert_trees_all_equal_shapes_and_dtypes(s_jit, state)
    assert float(jnp.max(jnp.abs(p_jit["f32"] - params["f32"]))) > 0

    # Zero gradients in low precision: finite, and exactly zero updates.
    zeros = jax.tree.map(
        lambda g: g if g.dtype == jax.dtypes.float0 else jnp.zeros_like(g), grads[0]
    )
    u, s = step(zeros, state, params)
    u, s = step(zeros, s, params)
    chex.assert_tree_all_finite(s)
    chex.assert_trees_all_equal(_floats(u), _floats(zeros))

    # The state keeps its structure through lax.scan.
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[_floats(g) for g in grads])
    s0 = tx.init(_floats(params))
    s_scan = _scan_final(tx, _floats(params), s0, stacked)[1]
    chex.assert_trees_all_equal_shapes_and_dtypes(s_scan, s0)


@pytest.mark.parametrize("name", BATTERY)
def test_wrappers_forward_extra_args(name):
    seen = []

    def update(updates, state, params=None, **extra_args):
        seen.append(extra_args.get("value"))
        return updates, state

    recorder = gx.GradientTransformation(lambda p: gx.EmptyState(), update)
    params = {"f32": jnp.ones(2), "bf16": jnp.ones(2, jnp.bfloat16)}
    tx = BATTERY[name](recorder)
    state = tx.init(params)
    for _ in range(2):
        _, state = tx.update(params, state, params, value=jnp.float32(1.5))
    assert seen and all(v is not None and float(v) == 1.5 for v in seen)


# ------------------------------------------------------------------ masked


@pytest.mark.parametrize("entry", TWO, ids=lambda e: e.id)
def test_masked_selects_leaves_and_holds_no_state_for_the_others(entry: Entry):
    params = make_params()
    grads = grad_sequence(params, steps=3)
    mask = mask_by_path("kernel")
    updates, _, state = run(masked(entry.make(), mask), params, grads)
    sub = {"dense": {"kernel": params["dense"]["kernel"]}}
    expected, _, _ = run(
        entry.make(), sub, [{"dense": {"kernel": g["dense"]["kernel"]}} for g in grads]
    )
    for t in range(3):
        chex.assert_trees_all_equal(updates[t]["dense"]["kernel"], expected[t]["dense"]["kernel"])
        chex.assert_trees_all_equal(updates[t]["dense"]["bias"], grads[t]["dense"]["bias"])
        chex.assert_trees_all_equal(updates[t]["scale"], grads[t]["scale"])
    keys = list(state_dict(state))
    assert not [k for k in keys if k.endswith("bias") or k.endswith("scale")], keys
    assert isinstance(
        state.inner_state[0].mu["scale"]
        if entry.id == "adam"
        else state.inner_state[0].trace["scale"],
        MaskedNode,
    )


def test_masked_matches_optax_and_reports_mask_mismatch():
    params = make_params()
    grads = grad_sequence(params, steps=3)
    mask = {"dense": {"kernel": True, "bias": False}, "scale": True}
    ours, _, _ = run(masked(gx.adam(0.1), mask), params, grads)
    with jax.numpy_dtype_promotion("standard"):
        theirs, _, _ = run(optax.masked(optax.adam(0.1), mask), params, grads)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-7)
    bad = masked(gx.adam(0.1), {"dense": {"kernel": True}, "scale": True})
    with pytest.raises(ValueError, match="dense/bias"):
        bad.init(params)


# ---------------------------------------------------------- multi_transform


@pytest.mark.parametrize("entry", TWO, ids=lambda e: e.id)
def test_multi_transform_groups(entry: Entry):
    params = make_params()
    grads = grad_sequence(params, steps=3)
    labels = label_by_path({"kernel": "main", "bias": "frozen"}, default="slow")
    tx = multi_transform(
        {"main": entry.make(), "slow": gx.sgd(1e-3), "frozen": gx.scale(0.0)}, labels
    )
    updates, _, state = run(tx, params, grads)
    for t, g in enumerate(grads):
        chex.assert_trees_all_close(updates[t]["scale"], -1e-3 * g["scale"], rtol=1e-6)
        chex.assert_trees_all_equal(updates[t]["dense"]["bias"], jnp.zeros(4))
    assert set(state.inner_states) == {"main", "slow", "frozen"}
    assert [k for k in state_dict(state) if "bias" in k or "scale" in k] == []


def test_no_weight_decay_on_biases_and_norm_scales():
    params = {
        "dense": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)},
        "norm": {"scale": jnp.ones(3)},
    }
    grads = grad_sequence(params, steps=3)
    groups = multi_transform(
        {"decay": gx.adamw(0.1, weight_decay=0.5), "no_decay": gx.adamw(0.1, weight_decay=0.0)},
        label_by_path({r"(bias|scale)$": "no_decay"}, default="decay"),
    )
    masked_decay = gx.adamw(0.1, weight_decay=0.5, mask=mask_by_path("kernel$"))
    ours, _, _ = run(groups, params, grads)
    expected, _, _ = run(masked_decay, params, grads)
    chex.assert_trees_all_close(ours, expected, rtol=1e-6)
    labels = {"dense": {"kernel": "decay", "bias": "no_decay"}, "norm": {"scale": "no_decay"}}
    with jax.numpy_dtype_promotion("standard"):
        theirs, _, _ = run(
            optax.multi_transform(
                {
                    "decay": optax.adamw(0.1, weight_decay=0.5),
                    "no_decay": optax.adamw(0.1, weight_decay=0.0),
                },
                labels,
            ),
            params,
            grads,
        )
    # optax's Adam carries a ~1e-5 relative rounding difference at small t (see test_base).
    chex.assert_trees_all_close(ours, theirs, rtol=1e-4, atol=1e-7)


def test_multi_transform_label_errors_name_the_key_path():
    params = make_params()
    tx = multi_transform({"a": gx.sgd(0.1)}, {"dense": {"kernel": "a", "bias": "b"}, "scale": "a"})
    with pytest.raises(ValueError, match=r"'dense/bias'.*'b'"):
        tx.init(params)
    tx = multi_transform({"a": gx.sgd(0.1)}, {"dense": {"kernel": "a"}, "scale": "a"})
    with pytest.raises(ValueError, match="dense/bias"):
        tx.init(params)
    with pytest.raises(ValueError, match="dense/bias"):
        label_by_path({"kernel": "a"})(params)
    with pytest.raises(ValueError, match="not a valid regular expression"):
        label_by_path({"(": "a"})
    with pytest.raises(TypeError, match="non-empty dict"):
        multi_transform({}, {})


# ------------------------------------------------------------------- freeze


@pytest.mark.parametrize("entry", TWO, ids=lambda e: e.id)
def test_freeze_gives_exact_zeros_and_no_state(entry: Entry):
    params = make_params()
    grads = [_poison(g, jnp.nan) for g in grad_sequence(params, steps=3)]
    frozen = {"dense": {"kernel": False, "bias": True}, "scale": False}
    updates, p, state = run(freeze(frozen, inner=entry.make()), params, grads)
    for u in updates:
        chex.assert_trees_all_equal(u["dense"]["bias"], jnp.zeros(4))
        chex.assert_tree_all_finite(u)
    chex.assert_trees_all_equal(p["dense"]["bias"], params["dense"]["bias"])
    assert [k for k in state_dict(state) if "bias" in k] == []
    only = freeze(frozen)  # no inner: trainable leaves pass through
    u, _ = only.update(grads[0], only.init(params), params)
    chex.assert_trees_all_equal(u["scale"], grads[0]["scale"])
    with pytest.raises(ValueError, match=r"freeze mask.*dense/bias"):
        freeze({"dense": {"kernel": True}, "scale": False}).init(params)


# -------------------------------------------------------------- MultiSteps


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("entry", TWO, ids=lambda e: e.id)
def test_multisteps_intermediate_updates_are_exact_zeros(entry: Entry, dtype):
    params = make_params(dtype)
    tx = MultiSteps(entry.make(), 3)
    state = tx.init(params)
    step = jax.jit(tx.update)
    plain = entry.make()
    plain_state = plain.init(params)
    grads = grad_sequence(params, steps=6)
    for t, g in enumerate(grads):
        u, state = step(g, state, params)
        chex.assert_trees_all_equal_dtypes(u, g)
        if t % 3 != 2:
            chex.assert_trees_all_equal(u, jax.tree.map(jnp.zeros_like, g))
            continue
        # The inner step on the mean of the cycle's three gradients (taken in float32:
        # the accumulator's own rounding, one ulp of its dtype per mini-step, is allowed).
        mean = jax.tree.map(
            lambda *x: (sum(a.astype(jnp.float32) for a in x) / 3).astype(dtype),
            *grads[t - 2 : t + 1],
        )
        expected, plain_state = plain.update(mean, plain_state, params)
        tol = 4 * float(jnp.finfo(dtype).eps)
        chex.assert_trees_all_close(
            jax.tree.map(lambda x: x.astype(jnp.float32), u),
            jax.tree.map(lambda x: x.astype(jnp.float32), expected),
            rtol=tol,
            atol=tol * 1e-2,
        )
    assert int(state.gradient_step) == 2


def test_multisteps_memory_dtype_schedule_and_optax_parity():
    params = make_params(jnp.bfloat16)
    tx = MultiSteps(gx.adam(0.1), 2, accumulator_dtype=jnp.float32)
    state = tx.init(params)
    assert jax.tree.structure(state.acc_grads) == jax.tree.structure(params)
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(state.acc_grads))
    inner = gx.adam(0.1).init(params)
    assert (
        len(jax.tree.leaves(state))
        == len(jax.tree.leaves(inner)) + len(jax.tree.leaves(params)) + 2
    )
    # An optax inner whose outputs are in other dtypes than its inputs still works.
    with jax.numpy_dtype_promotion("standard"):
        mixed = MultiSteps(optax.adam(0.1), 2, accumulator_dtype=jnp.float32)
        s = mixed.init(params)
        mixed_step = jax.jit(mixed.update)
        for g in grad_sequence(params, steps=2):
            _, s = mixed_step(g, s, params)
    # A schedule of k: 1 for the first inner step, then 2.
    sched = MultiSteps(gx.sgd(1.0), lambda step: jnp.where(step < 1, 1, 2))
    s = sched.init(jnp.zeros(1))
    outs = []
    for v in (1.0, 2.0, 4.0):
        u, s = sched.update(jnp.array([v]), s)
        outs.append(float(u[0]))
    assert outs == [-1.0, 0.0, -3.0]
    # Wrapped in apply_if_finite, a NaN mini-batch is dropped before it is accumulated.
    robust = apply_if_finite(MultiSteps(gx.sgd(1.0), 2), 3)
    s = robust.init(jnp.zeros(1))
    outs = []
    for v in (1.0, jnp.nan, 3.0):
        u, s = robust.update(jnp.array([v]), s)
        outs.append(float(u[0]))
    assert outs == [0.0, 0.0, -2.0]
    # optax parity on float32.
    params = make_params()
    grads = grad_sequence(params, steps=4)
    ours, _, _ = run(MultiSteps(gx.adam(0.1), 2), params, grads)
    with jax.numpy_dtype_promotion("standard"):
        ms = optax.MultiSteps(optax.adam(0.1), 2)
        theirs, _, _ = run(ms, params, grads, jax.jit(ms.update))
    # optax's Adam carries a ~1e-5 relative rounding difference at small t (see test_base).
    chex.assert_trees_all_close(ours, theirs, rtol=1e-4, atol=1e-7)


# -------------------------------------------------------------- ema_params


@pytest.mark.parametrize("warmup", [False, True])
@pytest.mark.parametrize("entry", TWO, ids=lambda e: e.id)
def test_ema_params_matches_numpy(entry: Entry, warmup):
    params = make_params()
    grads = grad_sequence(params, steps=4)
    tx = gx.chain(entry.make(), ema_params(0.8, warmup=warmup))
    state = tx.init(params)
    p, avg = params, None
    for t, g in enumerate(grads):
        u, state = tx.update(g, state, p)
        p = gx.apply_updates(p, u)
        d = 0.0 if t == 0 else (min(0.8, (1 + t) / (10 + t)) if warmup else 0.8)
        new = jax.tree.map(lambda x: np.asarray(x, np.float64), p)
        avg = new if avg is None else jax.tree.map(lambda a, b, d=d: d * a + (1 - d) * b, avg, new)
        chex.assert_trees_all_close(
            jax.tree.map(lambda x: np.asarray(x, np.float64), state[1].ema),
            avg,
            rtol=1e-6,
            atol=1e-7,
        )


def test_ema_params_matches_keras_use_ema():
    keras = require_keras("jax", why="keras use_ema parity")
    w0 = np.array([1.0, -2.0, 0.5], np.float32)
    grads = [
        np.array(g, np.float32)
        for g in ([0.5, 1.0, 0.0], [1.0, -1.0, 2.0], [2.0, 0.0, -1.0], [0.1, 0.2, 0.3])
    ]
    with jax.numpy_dtype_promotion("standard"):
        v = keras.Variable(w0)
        opt = keras.optimizers.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.9)
        opt.build([v])
        for g in grads:
            opt.apply_gradients([(g, v)])
        opt.finalize_variable_values([v])  # overwrites the variable with its average
        theirs = np.asarray(v)
    tx = gx.chain(gx.sgd(0.1), ema_params(0.9))
    p = jnp.asarray(w0)
    state = tx.init(p)
    for g in grads:
        u, state = tx.update(jnp.asarray(g), state, p)
        p = gx.apply_updates(p, u)
    np.testing.assert_allclose(np.asarray(state[1].ema), theirs, rtol=1e-6)


def test_ema_params_and_lookahead_need_params():
    for tx in (ema_params(0.9), lookahead_in_state(gx.sgd(0.1))):
        with pytest.raises(ValueError, match="needs the params"):
            tx.update(jnp.ones(1), tx.init(jnp.ones(1)))
    tx = lookahead(gx.sgd(0.1), 2, 0.5)
    with pytest.raises(ValueError, match="LookaheadParams"):
        tx.update(jnp.ones(1), tx.init(jnp.ones(1)), jnp.ones(1))


@pytest.mark.parametrize(
    "make,name",
    [
        (lambda: dynamic_loss_scaling(gx.sgd(0.1), initial_scale=0.0), "initial_scale"),
        (lambda: dynamic_loss_scaling(gx.sgd(0.1), growth_interval=0), "growth_interval"),
        (lambda: dynamic_loss_scaling(gx.sgd(0.1), growth_factor=0.5), "growth_factor"),
        (lambda: dynamic_loss_scaling(gx.sgd(0.1), backoff_factor=0.0), "backoff_factor"),
        (lambda: dynamic_loss_scaling(gx.sgd(0.1), min_scale=1e9), "min_scale"),
        (lambda: apply_if_finite(gx.sgd(0.1), -1), "max_consecutive_errors"),
        (lambda: MultiSteps(gx.sgd(0.1), 0), "every_k_schedule"),
        (lambda: ema_params(1.0), "decay"),
        (lambda: lookahead(gx.sgd(0.1), 0, 0.5), "sync_period"),
        (lambda: lookahead(gx.sgd(0.1), 2, 1.5), "slow_step_size"),
        (lambda: lookahead_in_state(gx.sgd(0.1), 0), "sync_period"),
        (lambda: lookahead_in_state(gx.sgd(0.1), 2, 1.5), "slow_step_size"),
    ],
)
def test_invalid_arguments(make, name):
    with pytest.raises(ValueError, match=name):
        make()


# ---------------------------------------------------------------- lookahead


def test_lookahead_in_state_takes_optax_lookahead_fast_weights():
    params = make_params()
    grads = grad_sequence(params, steps=6)
    _, ours, _ = run(lookahead_in_state(gx.sgd(0.1, momentum=0.5), 3, 0.5), params, grads)
    with jax.numpy_dtype_promotion("standard"):
        tx = optax.lookahead(optax.sgd(0.1, momentum=0.5), 3, 0.5)
        lp = optax.LookaheadParams.init_synced(params)
        state = tx.init(lp)
        for g in grads:
            u, state = tx.update(g, state, lp)
            lp = optax.apply_updates(lp, u)
    chex.assert_trees_all_close(ours, lp.fast, rtol=1e-5, atol=1e-6)
