"""The wrappers that optax has, against optax's same-named function and a Python reference:
prefix masks, partition, freeze, selective_transform, named_chain, conditional and
monitoring wrappers, MultiSteps, apply_every and lookahead."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests._require import require

optax = require("optax")

PARAMS = {
    "a": jnp.array(1.0),
    "b": {"f": jnp.array([2.0, -1.0])},
    "c": {"d": jnp.array(3.0), "e": ([jnp.array(4.0), jnp.array(5.0)], jnp.array(6.0))},
}


def _grads(scale=0.1):
    return jax.tree.map(lambda x: scale * (x + 1.0), PARAMS)


def _same_structure(ours, theirs):
    """Same pytree structure, node types compared by name (gradxform's and optax's classes)."""
    assert str(jax.tree.structure(ours)).replace("gradxform", "") == str(
        jax.tree.structure(theirs)
    ).replace("optax", "")


def _both(make_ours, make_theirs, params, grads_seq, **update_kwargs):
    """Updates and final states of a gradxform and an optax transformation, both jitted."""
    out = []
    for make in (make_ours, make_theirs):
        with jax.numpy_dtype_promotion("standard"):  # optax's code mixes dtypes
            tx = make()
            state = jax.jit(tx.init)(params)
            updates = []
            for g in grads_seq:
                u, state = jax.jit(tx.update)(g, state, params, **update_kwargs)
                updates.append(u)
        out.append((updates, state))
    return out


# ------------------------------------------------------------------ masks


MASKS = {
    "full": {"a": True, "b": {"f": False}, "c": {"d": True, "e": ([False, True], True)}},
    "prefix": {"a": True, "b": False, "c": {"d": False, "e": True}},
    "scalar-true": True,
    "scalar-false": False,
    "numpy-bool": {"a": np.bool_(True), "b": np.array(False), "c": jnp.array(True)},
    "function": lambda p: jax.tree.map(lambda x: jnp.ndim(x) == 0, p),
}


def _broadcast(mask, tree):
    """The reference: a prefix mask's boolean copied onto every leaf of its subtree."""
    mask = mask(tree) if callable(mask) else mask
    return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), mask, tree)


@pytest.mark.parametrize("name", MASKS)
def test_masked_with_prefix_masks_matches_reference_and_optax(name):
    mask = MASKS[name]
    grads = [_grads(0.1), _grads(0.3)]
    (ours, s_ours), (theirs, s_theirs) = _both(
        lambda: gx.masked(gx.sgd(1.0, momentum=0.5), mask),
        lambda: optax.masked(optax.sgd(1.0, momentum=0.5), mask),
        PARAMS,
        grads,
    )
    full = _broadcast(mask, PARAMS)
    trace = jax.tree.map(jnp.zeros_like, PARAMS)
    for g, u, t in zip(grads, ours, theirs, strict=True):
        trace = jax.tree.map(lambda m, tr, x: 0.5 * tr + x if m else tr, full, trace, g)
        expected = jax.tree.map(lambda m, tr, x: -tr if m else x, full, trace, g)
        chex.assert_trees_all_close(u, expected, rtol=1e-6)
        chex.assert_trees_all_close(u, t, rtol=1e-6)
    _same_structure(s_ours, s_theirs)


def test_nested_masks_and_mask_errors_name_the_key_path():
    params = {
        "l1": {"w": jnp.zeros((1, 1)), "b": jnp.zeros(1)},
        "l2": {"w": jnp.zeros((1, 2)), "b": jnp.zeros(2)},
    }
    inner_mask = {"l1": True, "l2": False}
    outer_mask = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)
    grads = [jax.tree.map(jnp.ones_like, params)]
    (ours, s_ours), (theirs, s_theirs) = _both(
        lambda: gx.masked(gx.masked(gx.sgd(1.0), inner_mask), outer_mask),
        lambda: optax.masked(optax.masked(optax.sgd(1.0), inner_mask), outer_mask),
        params,
        grads,
    )
    expected = {
        "l1": {"w": -jnp.ones((1, 1)), "b": jnp.ones(1)},
        "l2": {"w": jnp.ones((1, 2)), "b": jnp.ones(2)},
    }
    chex.assert_trees_all_equal(ours[0], expected)
    chex.assert_trees_all_equal(ours[0], theirs[0])
    _same_structure(s_ours, s_theirs)
    with pytest.raises(ValueError, match=r"masked mask does not match params.*'b/f'"):
        gx.masked(gx.sgd(1.0), {"a": True, "b": {"g": True}, "c": True}).init(PARAMS)
    with pytest.raises(ValueError, match=r"freeze mask does not match params"):
        gx.freeze({"a": True, "b": True}).init(PARAMS)
    with pytest.raises(TypeError, match=r"mask leaf 'a' must be a Python bool"):
        gx.masked(gx.sgd(1.0), {"a": 1, "b": True, "c": True}).init(PARAMS)
    with pytest.raises(TypeError, match=r"mask leaf 'a' is traced"):
        jax.jit(gx.masked(gx.sgd(1.0), lambda p: jax.tree.map(lambda x: x.sum() > 0, p)).init)(
            PARAMS
        )


def test_masked_extra_args_and_tree_map_params():
    seen = {}

    def update(updates, state, params=None, *, tags=None, **extra_args):
        seen["tags"] = tags
        return updates, state

    recorder = gx.GradientTransformationExtraArgs(lambda p: {"p": p}, update)
    mask = {"a": True, "b": False, "c": True}
    tags = jax.tree.map(lambda _: 1, PARAMS)
    tx = gx.masked(recorder, mask, mask_compatible_extra_args=True)
    tx.update(_grads(), tx.init(PARAMS), tags=tags)
    assert isinstance(seen["tags"]["b"], gx.MaskedNode)
    # tree_map_params sees through the mask (the marker goes to the inner init whole).
    state = tx.init(PARAMS)
    mapped = gx.tree.map_params(tx, lambda x: x + 1, state)
    chex.assert_trees_all_equal(mapped.inner_state["p"]["a"], PARAMS["a"] + 1)
    assert isinstance(mapped.inner_state["p"]["b"], gx.MaskedNode)


@pytest.mark.parametrize(
    "mask",
    [{"a": True, "b": False, "c": {"d": True, "e": False}}, True, np.array(False)],
    ids=["prefix", "true", "numpy-false"],
)
def test_freeze_matches_optax(mask):
    (ours, s_ours), (theirs, s_theirs) = _both(
        lambda: gx.freeze(mask), lambda: optax.freeze(mask), PARAMS, [_grads()]
    )
    frozen = _broadcast(mask, PARAMS)
    expected = jax.tree.map(lambda f, g: jnp.zeros_like(g) if f else g, frozen, _grads())
    chex.assert_trees_all_equal(ours[0], expected)
    chex.assert_trees_all_equal(ours[0], theirs[0])
    assert isinstance(s_ours, gx.MaskedState) and s_ours.inner_state == gx.EmptyState()
    _same_structure(s_ours, s_theirs)


# -------------------------------------------------------------- partitions


def test_partition_with_int_and_prefix_labels_matches_optax():
    labels = {"a": 0, "b": 1, "c": {"d": 2, "e": 1}}
    grads = [_grads(0.1), _grads(0.2), _grads(0.4)]
    (ours, s_ours), (theirs, s_theirs) = _both(
        lambda: gx.partition({0: gx.sgd(1.0), 1: gx.adam(0.1), 2: gx.scale(2.0)}, labels),
        lambda: optax.partition(
            {0: optax.sgd(1.0), 1: optax.adam(0.1), 2: optax.scale(2.0)}, labels
        ),
        PARAMS,
        grads,
    )
    for u, t, g in zip(ours, theirs, grads, strict=True):
        chex.assert_trees_all_close(u, t, rtol=1e-4, atol=1e-7)
        chex.assert_trees_all_equal(u["a"], -g["a"])
        chex.assert_trees_all_equal(u["c"]["d"], 2.0 * g["c"]["d"])
    _same_structure(s_ours, s_theirs)
    assert all(isinstance(s, gx.MaskedState) for s in s_ours.inner_states.values())
    assert gx.multi_transform is gx.partition and gx.MultiTransformState is gx.PartitionState
    with pytest.raises(ValueError, match=r"leaf 'a' has the label 3"):
        gx.partition({0: gx.sgd(1.0)}, {"a": 3, "b": 0, "c": 0}).init(PARAMS)
    with pytest.raises(ValueError, match="param_labels does not match params"):
        gx.partition({0: gx.sgd(1.0)}, {"a": 0, "b": 0}).init(PARAMS)


def test_partition_forwards_extra_args_and_handles_empty_trees():
    def update_with_arg(updates, state, params=None, *, arg, **extra_args):
        assert arg == 1
        return updates, state

    with_arg = gx.GradientTransformationExtraArgs(lambda p: {}, update_with_arg)
    without = gx.GradientTransformation(lambda p: {}, lambda u, s, p=None: (u, s))
    tx = gx.partition({"a": without, "b": with_arg}, ("a", "b"))
    params = ({"u": jnp.ones(1)}, {"v": jnp.ones(1)})
    state = tx.init(params)
    with pytest.raises(TypeError):
        tx.update(params, state)
    tx.update(params, state, arg=1, ignored="hi")
    for container in (list, tuple, dict):
        tx = gx.partition({0: gx.sgd(1.0)}, lambda _: 0)
        assert tx.update(container(), tx.init(container()))[0] == container()


@pytest.mark.parametrize(
    "mask", [{"a": False, "b": True, "c": {"d": True, "e": False}}, True], ids=["prefix", "all"]
)
def test_selective_transform_matches_reference_and_optax(mask):
    grads = [_grads(0.1), _grads(0.5)]
    (ours, s_ours), (theirs, s_theirs) = _both(
        lambda: gx.selective_transform(gx.sgd(1.0, momentum=0.9), freeze_mask=mask),
        lambda: optax.selective_transform(optax.sgd(1.0, momentum=0.9), freeze_mask=mask),
        PARAMS,
        grads,
    )
    frozen = _broadcast(mask, PARAMS)
    trace = jax.tree.map(jnp.zeros_like, PARAMS)
    for g, u, t in zip(grads, ours, theirs, strict=True):
        trace = jax.tree.map(lambda tr, x: 0.9 * tr + x, trace, g)
        expected = jax.tree.map(lambda f, tr: jnp.zeros_like(tr) if f else -tr, frozen, trace)
        chex.assert_trees_all_close(u, expected, rtol=1e-6)
        chex.assert_trees_all_close(u, t, rtol=1e-6)
    _same_structure(s_ours, s_theirs)
    # freeze(mask, inner=...) is the same transformation.
    chex.assert_trees_all_equal(
        gx.freeze(mask, inner=gx.sgd(1.0)).update(
            grads[0], gx.freeze(mask, inner=gx.sgd(1.0)).init(PARAMS), PARAMS
        )[0],
        gx.selective_transform(gx.sgd(1.0), freeze_mask=mask).update(
            grads[0], gx.selective_transform(gx.sgd(1.0), freeze_mask=mask).init(PARAMS), PARAMS
        )[0],
    )


def test_named_chain_matches_chain_and_optax():
    def scale_by_loss(lib=gx):
        def update(updates, state, params=None, *, loss, **extra_args):
            return jax.tree.map(lambda u: u / loss, updates), state

        return lib.GradientTransformationExtraArgs(lib.init_empty_state, update)

    grads = [_grads(0.1), _grads(0.3)]
    (ours, s_ours), (theirs, s_theirs) = _both(
        lambda: gx.named_chain(("adam", gx.scale_by_adam()), ("loss", scale_by_loss())),
        lambda: optax.named_chain(("adam", optax.scale_by_adam()), ("loss", scale_by_loss(optax))),
        PARAMS,
        grads,
        loss=jnp.float32(2.0),
    )
    chained, _ = _both(
        lambda: gx.chain(gx.scale_by_adam(), scale_by_loss()),
        lambda: gx.chain(gx.scale_by_adam(), scale_by_loss()),
        PARAMS,
        grads,
        loss=jnp.float32(2.0),
    )
    chex.assert_trees_all_equal(ours, chained[0])
    chex.assert_trees_all_close(ours, theirs, rtol=1e-4, atol=1e-7)
    assert list(s_ours) == list(s_theirs) == ["adam", "loss"]
    with pytest.raises(ValueError, match="unique"):
        gx.named_chain(("a", gx.identity()), ("a", gx.identity()))


# ------------------------------------------------------------- conditional


@pytest.mark.parametrize("kind", ["conditionally_transform", "conditionally_mask"])
def test_conditional_wrappers_match_reference_and_optax(kind):
    should = lambda step: step % 3 != 1
    grads = [_grads(0.1 * (t + 1)) for t in range(5)]
    (ours, s_ours), (theirs, s_theirs) = _both(
        lambda: getattr(gx, kind)(gx.sgd(1.0, momentum=0.5), should),
        lambda: getattr(optax, kind)(optax.sgd(1.0, momentum=0.5), should),
        PARAMS,
        grads,
    )
    trace = jax.tree.map(jnp.zeros_like, PARAMS)
    for t, (g, u, th) in enumerate(zip(grads, ours, theirs, strict=True)):
        if should(t):
            trace = jax.tree.map(lambda tr, x: 0.5 * tr + x, trace, g)
            expected = jax.tree.map(jnp.negative, trace)
        else:
            expected = g if kind == "conditionally_transform" else jax.tree.map(jnp.zeros_like, g)
        chex.assert_trees_all_close(u, expected, rtol=1e-6)
        chex.assert_trees_all_close(u, th, rtol=1e-6)
    _same_structure(s_ours, s_theirs)
    assert int(s_ours.step) == 5
    # Extra arguments reach the condition when asked to.
    tx = getattr(gx, kind)(gx.scale(2.0), lambda step, value: value > 0, forward_extra_args=True)
    u, _ = tx.update(jnp.ones(1), tx.init(jnp.ones(1)), value=jnp.float32(1.0))
    chex.assert_trees_all_equal(u, jnp.full(1, 2.0))


# -------------------------------------------------------------- monitoring


def test_snapshot_monitor_and_measure_with_ema_match_reference_and_optax():
    decay = 0.9
    grads = [jnp.array([1.0, 2.0, 3.0]) * (t + 1) for t in range(3)]
    p = jnp.zeros(3)
    results = []
    for lib in (gx, optax):
        with jax.numpy_dtype_promotion("standard"):
            tx = lib.chain(
                lib.sgd(0.1, momentum=0.9),
                lib.snapshot("before", lib.tree.norm),
                lib.monitor(
                    {"norm": lib.tree.norm, "norm_ema": lib.measure_with_ema(lib.tree.norm, decay)}
                ),
                lib.clip_by_global_norm(0.05),
            )
            state = tx.init(p)
            seen = []
            for g in grads:
                _, state = tx.update(g, state)
                seen.append([float(lib.tree.get(state, k)) for k in ("before", "norm", "norm_ema")])
        results.append(np.array(seen))
    ours, theirs = results
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    trace, ema, expected = np.zeros(3), 0.0, []
    for t, g in enumerate(grads, start=1):
        trace = 0.9 * trace + np.asarray(g)
        norm = float(np.linalg.norm(0.1 * trace))
        ema = decay * ema + (1 - decay) * norm
        expected.append([norm, norm, ema / (1 - decay**t)])
    np.testing.assert_allclose(ours, expected, rtol=1e-5)


def test_monitor_state_keeps_its_structure_and_boolean_measures_average_as_floats():
    tx = gx.monitor(
        {"clipped": gx.measure_with_ema(lambda u: gx.tree.norm(u) > 1.0, 0.5), "norm": gx.tree.norm}
    )
    state = tx.init(jnp.zeros(2))

    def body(s, g):
        return tx.update(g, s)[1], None

    final, _ = jax.lax.scan(body, state, jnp.array([[3.0, 4.0], [0.0, 0.5]]))
    chex.assert_trees_all_equal_shapes_and_dtypes(final, state)
    # True, then False: (0.5 * 0.5 * 1 + 0.5 * 0) / (1 - 0.5**2)
    np.testing.assert_allclose(final.measurements["clipped"], 0.25 / 0.75, rtol=1e-6)


# ---------------------------------------------------------- accumulation


def test_multisteps_is_optax_multisteps():
    params = {"w": jnp.ones(3), "b": jnp.zeros(2)}
    grads = [jax.tree.map(lambda x, t=t: x + t + 1.0, params) for t in range(6)]
    for use_grad_mean in (True, False):
        (ours, s_ours), (theirs, s_theirs) = _both(
            lambda m=use_grad_mean: gx.MultiSteps(gx.sgd(1.0), 3, use_grad_mean=m),
            lambda m=use_grad_mean: optax.MultiSteps(optax.sgd(1.0), 3, use_grad_mean=m),
            params,
            grads,
        )
        for t, (u, th) in enumerate(zip(ours, theirs, strict=True)):
            cycle = grads[t - 2 : t + 1]
            total = jax.tree.map(lambda *g: sum(g), *cycle) if t % 3 == 2 else None
            expected = (
                jax.tree.map(jnp.zeros_like, params)
                if total is None
                else jax.tree.map(lambda s, m=use_grad_mean: -s / 3 if m else -s, total)
            )
            chex.assert_trees_all_close(u, expected, rtol=1e-6)
            chex.assert_trees_all_close(u, th, rtol=1e-6)
        assert s_ours._fields == s_theirs._fields
        _same_structure(s_ours, s_theirs)
        chex.assert_trees_all_equal_shapes_and_dtypes(s_ours.acc_grads, s_theirs.acc_grads)
    ms = gx.MultiSteps(gx.sgd(1.0), 2)
    tx = ms.gradient_transformation()
    state = tx.init(params)
    assert not bool(ms.has_updated(state))
    for expected in (False, True):
        _, state = tx.update(grads[0], state, params)
        assert bool(ms.has_updated(state)) is expected


@pytest.mark.parametrize(
    "skip_fn",
    [gx.skip_not_finite, functools.partial(gx.skip_large_updates, max_squared_norm=100.0)],
    ids=["not-finite", "large"],
)
def test_multisteps_skips_mini_batches_as_optax(skip_fn):
    theirs_fn = (
        optax.skip_not_finite
        if skip_fn is gx.skip_not_finite
        else functools.partial(optax.skip_large_updates, max_squared_norm=100.0)
    )
    params = {"a": jnp.zeros(2)}
    grads = [
        {"a": jnp.array(v)}
        for v in ([1.0, 1.0], [jnp.inf, 1.0], [20.0, 0.0], [jnp.nan, 0.0], [3.0, 1.0])
    ]
    (ours, s_ours), (theirs, s_theirs) = _both(
        lambda: gx.MultiSteps(gx.sgd(1.0), 2, should_skip_update_fn=skip_fn),
        lambda: optax.MultiSteps(optax.sgd(1.0), 2, should_skip_update_fn=theirs_fn),
        params,
        grads,
    )
    for u, th in zip(ours, theirs, strict=True):
        chex.assert_trees_all_equal(u, th)
    chex.assert_trees_all_equal(s_ours.skip_state, s_theirs.skip_state)
    if skip_fn is gx.skip_not_finite:  # [20, 0] is accepted, [3, 1] starts a new cycle
        chex.assert_trees_all_equal(ours[2], {"a": -jnp.array([10.5, 0.5])})
        assert int(s_ours.gradient_step) == 1 and int(s_ours.mini_step) == 1
    else:  # [20, 0] is too large: [1, 1] and [3, 1] make the cycle
        chex.assert_trees_all_equal(ours[-1], {"a": -jnp.array([2.0, 1.0])})
        assert int(s_ours.gradient_step) == 1 and int(s_ours.mini_step) == 0
    with pytest.raises(ValueError, match="scalar bool"):
        ms = gx.MultiSteps(gx.sgd(1.0), 2, should_skip_update_fn=lambda u, s, p: (1, ()))
        ms.update(params, ms.init(params))


def test_skip_functions_match_optax():
    step = jnp.int32(0)
    for updates in (
        [jnp.array(jnp.inf), jnp.zeros([])],
        [jnp.array(jnp.nan)],
        [jnp.array(11.0), jnp.zeros(2)],
        [jnp.zeros(2)],
    ):
        for ours, theirs in (
            (gx.skip_not_finite, optax.skip_not_finite),
            (
                functools.partial(gx.skip_large_updates, max_squared_norm=100.0),
                functools.partial(optax.skip_large_updates, max_squared_norm=100.0),
            ),
        ):
            a, b = ours(updates, step, None), theirs(updates, step, None)
            chex.assert_trees_all_equal(a, b)


def test_apply_every_matches_reference_and_optax():
    params = jnp.zeros(2)
    grads = [jnp.array([1.0, -2.0]) * (t + 1) for t in range(7)]
    (ours, s_ours), (theirs, s_theirs) = _both(
        lambda: gx.apply_every(3), lambda: optax.apply_every(3), params, grads
    )
    acc = np.zeros(2)
    for t, (g, u, th) in enumerate(zip(grads, ours, theirs, strict=True)):
        acc = (acc if t % 3 else 0) + np.asarray(g)
        np.testing.assert_allclose(u, acc if t % 3 == 2 else 0.0)
        chex.assert_trees_all_equal(u, th)
    assert type(s_ours).__name__ == type(s_theirs).__name__ == "ApplyEvery"
    chex.assert_trees_all_equal(tuple(s_ours), tuple(s_theirs))


# ---------------------------------------------------------------- lookahead


@pytest.mark.parametrize("reset_state", [False, True])
def test_lookahead_on_lookahead_params_matches_reference_and_optax(reset_state):
    params = {"x": jnp.array([3.0, 1.0]), "y": jnp.array(-3.0)}
    grads = [jax.tree.map(lambda p, t=t: 0.5 * p + t, params) for t in range(7)]
    k, alpha = 3, 0.25
    results = []
    for lib in (gx, optax):
        with jax.numpy_dtype_promotion("standard"):
            tx = lib.lookahead(lib.sgd(0.1, momentum=0.5), k, alpha, reset_state=reset_state)
            lp = lib.LookaheadParams.init_synced(params)
            state = jax.jit(tx.init)(lp)
            for g in grads:
                u, state = jax.jit(tx.update)(g, state, lp)
                lp = lib.apply_updates(lp, u)
        results.append((lp, state))
    (ours, s_ours), (theirs, s_theirs) = results
    chex.assert_trees_all_close(tuple(ours), tuple(theirs), rtol=1e-6)
    assert s_ours._fields == s_theirs._fields
    # The reference: fast steps of SGD with momentum, a sync every k steps.
    fast, slow, trace = dict(params), dict(params), jax.tree.map(jnp.zeros_like, params)
    for t, g in enumerate(grads, start=1):
        trace = jax.tree.map(lambda tr, x: 0.5 * tr + x, trace, g)
        fast = jax.tree.map(lambda f, tr: f - 0.1 * tr, fast, trace)
        if t % k == 0:
            slow = jax.tree.map(lambda s, f: s + alpha * (f - s), slow, fast)
            fast = slow
            if reset_state:
                trace = jax.tree.map(jnp.zeros_like, params)
    chex.assert_trees_all_close(ours.fast, fast, rtol=1e-6)
    chex.assert_trees_all_close(ours.slow, slow, rtol=1e-6)


def test_apply_if_finite_state_is_optax_state():
    ours = gx.apply_if_finite(gx.sgd(1.0), 2).init(jnp.zeros(2))
    theirs = optax.apply_if_finite(optax.sgd(1.0), 2).init(jnp.zeros(2))
    assert ours._fields == theirs._fields
    chex.assert_trees_all_equal(tuple(ours[:3]), tuple(theirs[:3]))
