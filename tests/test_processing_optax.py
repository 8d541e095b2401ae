"""The processing transformations and helpers gradxform shares with optax: each against a
NumPy reference and against optax itself, and the optimizers' optax arguments."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from tests._util import grad_sequence, make_params


def _concatenated_by_flat(tx) -> bool:
    """Whether gx.flat runs tx on concatenated buffers (it declared itself element-wise)."""
    state = gx.flat(tx).init({"a": jnp.ones(3), "b": jnp.ones(2)})
    return not isinstance(state.inner, dict)


def _np(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def _optax(fn, *args, **kwargs):
    """Call optax under standard dtype promotion (the tests run under strict promotion)."""
    with jax.numpy_dtype_promotion("standard"):
        return fn(*args, **kwargs)


def _run(tx, params, grads, *, optax_tx=False):
    state = tx.init(params)
    out = []
    for g in grads:
        if optax_tx:
            u, state = _optax(tx.update, g, state, params)
            params = _optax(optax.apply_updates, params, u)
        else:
            u, state = tx.update(g, state, params)
            params = gx.apply_updates(params, u)
        out.append(params)
    return out, state


# ------------------------------------------------------------------------ numerics


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "float16", "bfloat16", "float32"])
def test_safe_increment_saturates_in_the_counters_own_dtype(dtype):
    top = jnp.iinfo(dtype).max if jnp.issubdtype(dtype, jnp.integer) else jnp.finfo(dtype).max
    for f in (gx.safe_increment, gx.safe_int32_increment, jax.jit(gx.safe_increment)):
        three = f(jnp.asarray(3, dtype))
        assert three.dtype == jnp.dtype(dtype) and float(three) == 4
        chex.assert_trees_all_equal(f(jnp.asarray(top, dtype)), jnp.asarray(top, dtype))
        chex.assert_trees_all_equal(
            f(jnp.asarray(3, dtype)), optax.safe_increment(jnp.asarray(3, dtype))
        )


@pytest.mark.parametrize("dtype", ["bool", "complex64"])
def test_safe_increment_refuses_other_dtypes(dtype):
    with pytest.raises(ValueError, match=f"dtype {dtype}"):
        gx.safe_increment(jnp.asarray(1, dtype))


@pytest.mark.parametrize("ord_", [None, 1, 2, jnp.inf, "fro"])
@pytest.mark.parametrize("axis", [None, 0, 1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_safe_norm_matches_numpy_optax_and_has_zero_gradient_at_the_floor(ord_, axis, keepdims):
    if ord_ == "fro" and axis is not None:
        pytest.skip("'fro' is a matrix norm")
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4)), jnp.float32)
    for floor in (0.0, 1.0, 100.0):
        ours = gx.safe_norm(x, floor, ord_, axis, keepdims)
        plain = np.linalg.norm(np.asarray(x, np.float64), ord=ord_, axis=axis, keepdims=keepdims)
        np.testing.assert_allclose(np.asarray(ours), np.maximum(plain, floor), rtol=1e-5)
        chex.assert_trees_all_close(
            ours, _optax(optax.safe_norm, x, floor, ord_, axis, keepdims), rtol=1e-6
        )
    grad = jax.jacfwd(lambda z: gx.safe_norm(z, 0.0, ord_, axis, keepdims))(jnp.zeros((3, 4)))
    chex.assert_trees_all_equal(grad, jnp.zeros_like(grad))


def test_safe_root_mean_squares_matches_numpy_and_optax():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(5, 2)), jnp.float32)
    rms = np.sqrt(np.mean(np.asarray(x, np.float64) ** 2))
    for floor in (0.0, 0.1, 10.0):
        ours = gx.safe_root_mean_squares(x, floor)
        np.testing.assert_allclose(float(ours), max(rms, floor), rtol=1e-6)
        np.testing.assert_allclose(
            float(ours), float(optax.safe_root_mean_squares(x, floor)), rtol=1e-6
        )
    grad = jax.grad(gx.safe_root_mean_squares)(jnp.zeros(3), 0.1)
    chex.assert_trees_all_equal(grad, jnp.zeros(3))
    half = gx.safe_root_mean_squares(jnp.full(4, 3e-3, jnp.float16), 0.0)  # squares in float32
    assert half.dtype == jnp.float16
    np.testing.assert_allclose(float(half), 3e-3, rtol=1e-3)


def test_global_norm_takes_optax_argument_name():
    g = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}
    assert float(gx.global_norm(updates=g)) == 5.0


# ------------------------------------------------------------- stateless helpers


def test_stateless_with_tree_map_matches_optax():
    def f(u, p):
        return 2.0 * u if p is None else u - 0.5 * p

    params = make_params()
    g = grad_sequence(params, steps=1)[0]
    tx, otx = gx.stateless_with_tree_map(f), optax.stateless_with_tree_map(f)
    state = tx.init(params)
    assert state == gx.EmptyState()
    for p in (params, None):
        chex.assert_trees_all_close(
            tx.update(g, state, p)[0], otx.update(g, otx.init(params), p)[0]
        )
    assert not _concatenated_by_flat(tx)  # nothing assumed about f


def test_keep_params_nonnegative_matches_numpy_and_optax():
    p = {"w": jnp.array([1.0, 0.5, 2.0, -1.0]), "i": jnp.array([1, 2])}
    u = {"w": jnp.array([-2.0, 0.25, -1.0, 0.5]), "i": jnp.array([-5, 0])}
    tx = gx.keep_params_nonnegative()
    out, state = tx.update(u, tx.init(p), p)
    pw, uw = np.asarray(p["w"]), np.asarray(u["w"])
    np.testing.assert_array_equal(np.asarray(out["w"]), np.where(pw + uw < 0, -pw, uw))
    chex.assert_trees_all_equal(out["i"], u["i"])  # integer leaves pass through
    theirs = optax.keep_params_nonnegative().update(
        {"w": u["w"]}, optax.EmptyState(), {"w": p["w"]}
    )[0]
    chex.assert_trees_all_equal(out["w"], theirs["w"])
    assert isinstance(state, gx.NonNegativeParamsState)
    with pytest.raises(ValueError, match="needs the params"):
        tx.update(u, state)


def test_flatten_runs_the_inner_transformation_on_one_vector():
    params = make_params()
    grads = grad_sequence(params, steps=4)
    ours, state = _run(gx.flatten(gx.adam(0.1)), params, grads)
    plain, _ = _run(gx.adam(0.1), params, grads)
    chex.assert_trees_all_close(ours, plain, rtol=1e-6)  # element-wise: the same iterates
    theirs, _ = _run(optax.flatten(optax.adam(0.1)), params, grads, optax_tx=True)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-6)
    size = sum(x.size for x in jax.tree.leaves(params))
    assert state[0].mu.shape == (size,)
    # A per-leaf statistic is taken over the whole vector: one trust ratio, not one per leaf.
    ratio_tx = gx.flatten(gx.scale_by_trust_ratio())
    u, _ = ratio_tx.update(grads[0], ratio_tx.init(params), params)
    ratio = float(gx.global_norm(params) / gx.global_norm(grads[0]))
    chex.assert_trees_all_close(u, jax.tree.map(lambda g: g * ratio, grads[0]), rtol=1e-5)
    assert _concatenated_by_flat(gx.flatten(gx.adam(0.1)))
    assert not _concatenated_by_flat(gx.flatten(gx.lamb(0.1)))
    with pytest.raises(ValueError, match="scale_by_trust_ratio"):
        gx.flat(gx.flatten(gx.lamb(0.1)), elementwise=True)


def test_flatten_passes_extra_arguments():
    tx = gx.flatten(gx.reduce_on_plateau(patience=1))
    state = tx.init({"a": jnp.zeros(2)})
    u, state = tx.update({"a": jnp.ones(2)}, state, value=jnp.float32(1.0))
    chex.assert_trees_all_equal(u, {"a": jnp.ones(2)})


# ---------------------------------------------------------- update helpers


def test_incremental_update_matches_numpy_and_optax():
    new, old = make_params(), jax.tree.map(lambda x: 2.0 * x + 1.0, make_params())
    for step in (0.0, 0.1, 1.0):
        ours = gx.incremental_update(new, old, step)
        expected = jax.tree.map(lambda n, o, s=step: s * n + (1 - s) * o, _np(new), _np(old))
        chex.assert_trees_all_close(_np(ours), expected, rtol=1e-6, atol=1e-7)
        chex.assert_trees_all_close(
            ours, _optax(optax.incremental_update, new, old, step), rtol=1e-6, atol=1e-7
        )
    assert gx.incremental_update(None, jnp.ones(2), 1.0) is None
    low = gx.incremental_update(jnp.ones(2, jnp.bfloat16), jnp.zeros(2, jnp.bfloat16), 0.3)
    assert low.dtype == jnp.bfloat16


def test_periodic_update_matches_optax_and_jits():
    new, old = {"w": jnp.ones(2)}, {"w": jnp.zeros(2)}
    step = jax.jit(gx.periodic_update, static_argnums=3)
    for t in range(7):
        ours = step(new, old, jnp.int32(t), 3)
        chex.assert_trees_all_equal(ours, new if t % 3 == 0 else old)
        chex.assert_trees_all_equal(ours, optax.periodic_update(new, old, t, 3))
    with pytest.raises(ValueError, match="update_period=0"):
        gx.periodic_update(new, old, 1, 0)


@pytest.mark.parametrize("scale", [0.0, 0.5, 1.0, -2.0])
def test_scale_gradient_scales_the_gradient_only(scale):
    def f(x, s):
        return jnp.sum(gx.scale_gradient(x, s) ** 2)

    x = jnp.array([1.0, -2.0])
    assert float(f(x, scale)) == 5.0
    chex.assert_trees_all_close(jax.grad(f)(x, scale), 2 * x * scale)
    chex.assert_trees_all_close(
        jax.grad(f)(x, scale), jax.grad(lambda z: jnp.sum(optax.scale_gradient(z, scale) ** 2))(x)
    )
    traced = jax.jit(jax.grad(f))(x, jnp.float32(scale))  # a traced scale works too
    chex.assert_trees_all_close(traced, 2 * x * scale)


def test_apply_updates_keeps_none_params():
    assert gx.apply_updates(None, jnp.ones(3)) is None
    out = gx.apply_updates({"a": None, "b": jnp.ones(2)}, {"a": jnp.ones(3), "b": jnp.ones(2)})
    assert out["a"] is None
    chex.assert_trees_all_equal(out["b"], jnp.full(2, 2.0))
    with pytest.raises(ValueError, match="'b'"):
        gx.apply_updates({"a": None, "b": jnp.ones(2)}, {"a": jnp.ones(3)})


# ----------------------------------------------------- scaling and weight decay


def test_scale_scales_integer_updates_as_optax_does():
    u = {"i": jnp.array([3, 4], jnp.int32), "f": jnp.array([1.0], jnp.bfloat16)}
    for step in (0.5, 2, -1.0):
        ours = gx.scale(step).update(u, gx.EmptyState())[0]
        theirs = _optax(optax.scale(step).update, u, optax.EmptyState())[0]
        chex.assert_trees_all_equal_dtypes(ours, theirs)
        chex.assert_trees_all_close(ours, theirs)
    assert gx.ScaleState is gx.EmptyState


def test_scale_by_learning_rate_none_is_the_identity():
    u = {"a": jnp.ones(2)}
    for flip in (True, False):
        chex.assert_trees_all_equal(
            gx.scale_by_learning_rate(None, flip_sign=flip).update(u, gx.EmptyState())[0], u
        )


def test_add_decayed_weights_takes_a_schedule():
    def schedule(t):
        return 0.1 * (jnp.asarray(t).astype(jnp.float32) + 1)

    p = {"w": jnp.array([1.0, -2.0])}
    tx = gx.add_decayed_weights(schedule)
    state = tx.init(p)
    assert int(state.count) == 0
    for t in range(3):
        u, state = tx.update({"w": jnp.zeros(2)}, state, p)
        chex.assert_trees_all_close(u["w"], 0.1 * (t + 1) * p["w"])
        theirs_tx = optax.add_decayed_weights(schedule)
        theirs = _optax(
            theirs_tx.update, {"w": jnp.zeros(2)}, theirs_tx.init(p)._replace(count=jnp.int32(t)), p
        )[0]
        chex.assert_trees_all_close(u, theirs)
    assert int(state.count) == 3
    assert gx.AddDecayedWeightsState is gx.EmptyState


def test_scale_by_trust_ratio_min_norm_matches_numpy_and_optax():
    p = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([0.01, 0.0]), "c": jnp.zeros(2)}
    u = {"a": jnp.array([0.0, 0.5]), "b": jnp.array([0.2, 0.0]), "c": jnp.array([1e-3, 0.0])}
    for min_norm, coef, eps in ((0.0, 1.0, 0.0), (0.1, 0.5, 0.01), (1.0, 2.0, 0.0)):
        ours = gx.scale_by_trust_ratio(min_norm, coef, eps).update(u, gx.EmptyState(), p)[0]

        def ref(g, w, m=min_norm, c=coef, e=eps):
            pn, gn = max(np.linalg.norm(w), m), max(np.linalg.norm(g), m)
            return g * (1.0 if pn == 0 or gn == 0 else c * pn / (gn + e))

        chex.assert_trees_all_close(_np(ours), jax.tree.map(ref, _np(u), _np(p)), rtol=1e-6)
        theirs = optax.scale_by_trust_ratio(min_norm, coef, eps).update(u, optax.EmptyState(), p)
        chex.assert_trees_all_close(ours, theirs[0], rtol=1e-6)
    assert gx.ScaleByTrustRatioState is gx.EmptyState


def test_scale_by_param_block_norm_matches_numpy_and_optax():
    p = {"a": jnp.array([3.0, 4.0]), "z": jnp.zeros(3)}
    u = jax.tree.map(jnp.ones_like, p)
    ours = gx.scale_by_param_block_norm(0.01).update(u, gx.EmptyState(), p)[0]
    chex.assert_trees_all_close(ours, {"a": jnp.full(2, 5.0), "z": jnp.full(3, 0.01)})
    chex.assert_trees_all_close(
        ours, optax.scale_by_param_block_norm(0.01).update(u, optax.EmptyState(), p)[0]
    )
    with pytest.raises(ValueError, match="scale_by_param_block_norm"):
        gx.flat(gx.scale_by_param_block_norm(), elementwise=True)


def test_empty_state_aliases_are_optax_names():
    for name in (
        "AdaptiveGradClipState",
        "AddDecayedWeightsState",
        "ClipByGlobalNormState",
        "ClipState",
        "NonNegativeParamsState",
        "ScaleState",
        "ScaleByTrustRatioState",
    ):
        assert getattr(gx, name) is gx.EmptyState
        assert getattr(optax, name) is optax.EmptyState


# ------------------------------------------------------- optimizers: optax's arguments


def _agree(ours, theirs, steps=5, rtol=1e-5, atol=1e-6, params=None):
    params = make_params() if params is None else params
    grads = grad_sequence(params, steps=steps)
    a, _ = _run(ours, params, grads)
    b, _ = _run(theirs, params, grads, optax_tx=True)
    chex.assert_trees_all_close(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"learning_rate": 0.05},
        {"learning_rate": 0.05, "min_dim_size_to_factor": 2, "decay_rate": 0.6, "decay_offset": -1},
        {
            "learning_rate": 0.05,
            "momentum": 0.9,
            "weight_decay_rate": 0.01,
            "clipping_threshold": None,
        },
        {"learning_rate": 0.05, "multiply_by_parameter_scale": False, "factored": False},
    ],
)
def test_adafactor_matches_optax(kwargs):
    params = {"m": jnp.full((4, 3), 0.5), "t": jnp.full((2, 3, 5), -0.3), "v": jnp.full(3, 0.2)}
    _agree(gx.adafactor(**kwargs), optax.adafactor(**kwargs), params=params)
    # The same chain, member for member, and the same state leaves (optax's layout).
    ours, theirs = (
        jax.tree.leaves(f(**kwargs).init(params)) for f in (gx.adafactor, optax.adafactor)
    )
    assert [(x.shape, x.dtype) for x in ours] == [(x.shape, x.dtype) for x in theirs]


@pytest.mark.parametrize("bias_mu,bias_nu", [(True, True), (False, True), (False, False)])
def test_amsgrad_defaults_and_bias_corrections_match_optax(bias_mu, bias_nu):
    _agree(
        gx.amsgrad(0.01, 0.9, 0.99, 1e-8, 0.0, None, bias_mu, bias_nu),
        optax.amsgrad(0.01, 0.9, 0.99, 1e-8, 0.0, None, bias_mu, bias_nu),
    )


def test_nadam_is_adam_with_nesterov_as_in_optax():
    _agree(gx.nadam(0.01), optax.nadam(0.01))
    _agree(gx.nadam(0.01, nesterov=False), optax.adam(0.01))
    _agree(gx.nadamw(0.01, weight_decay=0.1), optax.nadamw(0.01, weight_decay=0.1))


def test_positional_mu_dtype_and_weight_decay_as_in_optax():
    for ours, theirs in (
        (
            gx.adamw(0.01, 0.9, 0.99, 1e-8, 0.0, jnp.float32, 0.1),
            optax.adamw(0.01, 0.9, 0.99, 1e-8, 0.0, jnp.float32, 0.1),
        ),
        (gx.lion(0.01, 0.9, 0.99, None, 0.1), optax.lion(0.01, 0.9, 0.99, None, 0.1)),
        (gx.sgd(0.01, 0.9, True, jnp.float32), optax.sgd(0.01, 0.9, True, jnp.float32)),
        (gx.signum(0.01, 0.8, jnp.float32), optax.signum(0.01, 0.8, jnp.float32)),
    ):
        _agree(ours, theirs)


def test_adamw_weight_decay_schedule_matches_optax():
    def wd(t):
        return 0.1 / (1.0 + jnp.asarray(t).astype(jnp.float32))

    _agree(gx.adamw(0.01, weight_decay=wd), optax.adamw(0.01, weight_decay=wd))


@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_bias_correction_matches_optax(centered):
    # Centered, the first step's variance is exactly 0 (gradxform) or a rounding residual
    # of ~1e-7 (optax): an eps well above that compares the method, not the rounding.
    eps = 0.1 if centered else 1e-8
    _agree(
        gx.rmsprop(0.01, eps=eps, centered=centered, bias_correction=True),
        optax.rmsprop(0.01, eps=eps, centered=centered, bias_correction=True),
    )


def test_adadelta_weight_decay_mask():
    params = make_params()
    mask = jax.tree.map(lambda x: x.ndim > 1, params)
    _agree(
        gx.adadelta(0.5, weight_decay=0.1, weight_decay_mask=mask),
        optax.adadelta(0.5, weight_decay=0.1, weight_decay_mask=mask),
    )


def test_adadelta_without_learning_rate_descends():
    # optax.adadelta() leaves the AdaDelta step unnegated (it ascends); gradxform's
    # learning_rate=None is the paper's unscaled descent step (docs/differences.md).
    p = jnp.array([1.0])
    u, _ = gx.adadelta().update(jnp.array([2.0]), gx.adadelta().init(p), p)
    u1, _ = gx.adadelta(1.0).update(jnp.array([2.0]), gx.adadelta(1.0).init(p), p)
    assert float(u[0]) < 0
    chex.assert_trees_all_equal(u, u1)


@pytest.mark.parametrize("decay_mask,ratio_mask", [(True, True), (False, True), (True, False)])
def test_lars_whole_tree_masks_match_optax(decay_mask, ratio_mask):
    _agree(
        gx.lars(0.5, 0.1, decay_mask, 0.02, 1e-3, ratio_mask),
        optax.lars(0.5, 0.1, decay_mask, 0.02, 1e-3, ratio_mask),
    )


@pytest.mark.parametrize("name", ["adabelief", "radam"])
def test_nesterov_variants_match_optax(name):
    _agree(getattr(gx, name)(0.01, nesterov=True), getattr(optax, name)(0.01, nesterov=True))
