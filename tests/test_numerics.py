"""Numerical edge cases: saturating step counters, bias correction, complex parameters."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import (
    ftrl,
    inject_hyperparams,
    linear_schedule,
    radam,
    scale_by_schedule,
)
from tests import references, references_schedule_free
from tests.registry import REGISTRY, Entry
from tests.test_hyperparams_sweep import BY_NAME, make_reference

IDS = [e.id for e in REGISTRY]
INT32_MAX = 2**31 - 1


def make_params(dtype=jnp.float32):
    rng = np.random.default_rng(0)
    return {
        "w": jnp.asarray(rng.normal(size=(3, 2)), dtype),
        "b": jnp.asarray(rng.normal(size=(2,)), dtype),
    }


def grads_like(params, seed):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params)


# int32 scalars of a state that are not step counters: PSGD-Kron's steps since its last fit
# (reset to 0 at every fit).
NOT_STEP_COUNTERS = {"update_counter"}


def _is_counter(path, x):
    names = {k.name for k in path if isinstance(k, jax.tree_util.GetAttrKey)}
    return x.dtype == jnp.int32 and x.shape == () and not names & NOT_STEP_COUNTERS


def _counters(state):
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    return [x for path, x in leaves if _is_counter(path, x)]


def _set_counters(state, value):
    return jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.full_like(x, value) if _is_counter(path, x) else x, state
    )


# ------------------------------------------------------------- step counters

# SAM's int32 scalar is the phase of its cycle, in [0, sync_period), reset at every outer
# step: not a step count (its SGD members keep none).
PHASE_COUNTERS = {"sam"}
SATURATING = [
    (i, m, r)
    for i, m, r in [(e.id, e.make, e.make_reference) for e in REGISTRY]
    + [
        (
            "inject-hyperparams-sgd",
            lambda: inject_hyperparams(gx.sgd)(0.01),
            lambda: references.SGD(0.01),
        ),
        (
            "scale-by-schedule",
            lambda: scale_by_schedule(linear_schedule(1.0, 0.1, 10)),
            lambda: references.ScaleBySchedule(
                lambda t: references.linear_schedule(t, 1.0, 0.1, 10)
            ),
        ),
    ]
    if _counters(m().init(make_params())) and i not in PHASE_COUNTERS
]  # the configurations whose state counts steps


def _set_steps(state, count):
    """Set every step counter ``t`` of a reference state, nested ones included (Adafactor's
    factored moments keep their own)."""
    for key, value in state.items():
        if key == "t":
            state[key] = count
        elif isinstance(value, dict):
            _set_steps(value, count)


def _reference_at(reference, p, count):
    """A reference leaf state as after ``count`` updates of zero moments (as the test sets
    the counters of a fresh state)."""
    state = reference.init(p)
    _set_steps(state, count)
    if "P" in state:  # Dozat's product of momenta: b1**t (1 - ...) underflows to 0
        state["P"] = 0.0
    if isinstance(reference, references_schedule_free.ScheduleFree):
        # gradxform keeps no x and sets z at the first update: counters set on a fresh
        # state leave z = 0, and the weights y = p then stand for x = p / b1.
        state["z"], state["x"] = np.zeros_like(p), p / reference.b1
        if "t" in state["base"]:
            state["base"]["t"] = count
    if isinstance(reference, references.FTRL):
        # gradxform keeps clip(z, -l1, l1) and takes the rest of z from the weights, as
        # the previous iterate: z = clip(z) - q w. Its zero state after `count` updates
        # is the reference's z = -q w.
        q = (reference.beta + state["n"] ** reference.p) / reference.a + 2 * reference.l2
        state["z"] = -q * p
    return state


@pytest.mark.parametrize(
    "make,reference",
    [pytest.param(m, r, id=i) for i, m, r in SATURATING],
)
def test_step_counter_saturates_at_int32_max(make, reference):
    tx = make()
    params = make_params()
    state = _set_counters(tx.init(params), INT32_MAX - 1)
    ps = [np.asarray(p, np.float64) for p in jax.tree.leaves(params)]
    tree = reference()
    if isinstance(tree, references.TreeReference):  # a statistic of the whole tree
        tree_state = tree.after(tree.init(ps), INT32_MAX - 1)
    else:
        refs = [reference() for _ in jax.tree.leaves(params)]
        ref_states = [_reference_at(r, p, INT32_MAX - 1) for r, p in zip(refs, ps, strict=True)]
    step = jax.jit(tx.update)
    for seed in (1, 2):  # 2**31 - 2 -> 2**31 - 1 -> stays there
        g = grads_like(params, seed)
        updates, state = step(g, state, params)
        chex.assert_tree_all_finite(updates)
        chex.assert_tree_all_finite(state)
        assert all(int(c) == INT32_MAX for c in _counters(state)), _counters(state)
        # The values of a step that late: the reference one or two steps past 2**31 - 2
        # (every bias correction and schedule has long reached its limit).
        gs = [np.asarray(x, np.float64) for x in jax.tree.leaves(g)]
        if isinstance(tree, references.TreeReference):
            us, tree_state = tree.step(gs, tree_state, ps)
            out = [(u, None) for u in us]
        else:
            out = [r.step(x, s, p) for r, x, s, p in zip(refs, gs, ref_states, ps, strict=True)]
            ref_states = [s for _, s in out]
        for got, (want, _) in zip(jax.tree.leaves(updates), out, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        ps = [p + u for p, (u, _) in zip(ps, out, strict=True)]
        params = gx.apply_updates(params, updates)


def test_safe_increment_never_wraps():
    c = jnp.int32(INT32_MAX - 1)
    assert int(gx.safe_increment(c)) == INT32_MAX
    assert int(gx.safe_increment(gx.safe_increment(c))) == INT32_MAX
    assert gx.safe_increment(c).dtype == jnp.int32


# ------------------------------------------------------------- bias correction

LARGEST_DECAY = float(np.nextafter(np.float32(1), np.float32(0)))  # 1 - 2**-24


@pytest.mark.parametrize(
    "dtype", [jnp.float16, jnp.bfloat16, jnp.float32], ids=["float16", "bfloat16", "float32"]
)
@pytest.mark.parametrize("decay", [0.0, 0.5, 0.9, 0.999, 0.9999, LARGEST_DECAY])
def test_bias_correction_never_divides_by_zero(dtype, decay):
    counts = np.array([0, 1, 2, 10, 1000, 2**20, INT32_MAX], np.int32)
    moment = jnp.asarray(0.75, dtype)
    got = np.asarray([gx.bias_correction(moment, decay, jnp.int32(c)) for c in counts])
    assert np.all(np.isfinite(got)), got
    d = np.float64(np.float32(decay))
    t = np.maximum(counts, 1).astype(np.float64)  # a count below 1 is taken as 1
    with np.errstate(divide="ignore"):  # log1p(-1) = -inf for decay 0: factor 1
        factor = -np.expm1(t * np.log1p(d - 1))
    expected = np.float64(np.asarray(moment, np.float32)) / factor
    np.testing.assert_allclose(got, expected, rtol=2e-6)


def test_decay_that_rounds_to_one_in_float32_is_rejected():
    with pytest.raises(ValueError, match=r"b2=0\.999999999 .*rounds to 1 in float32"):
        gx.adam(0.1, b2=0.999999999)
    gx.adam(0.1, b2=LARGEST_DECAY)  # the largest usable decay is accepted


NEAR_ONE = [
    gx.scale_by_adam,
    gx.scale_by_radam,
    gx.scale_by_belief,
    gx.scale_by_yogi,
    gx.scale_by_adamax,
]


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("factory", NEAR_ONE, ids=lambda f: f.__name__)
def test_first_steps_finite_with_decays_near_one_in_low_precision(factory, dtype):
    # float16 storage cannot hold (1 - b) * g**2 = 6e-8 * g**2: keep the moments in
    # float32 there (bfloat16 has float32's exponent range and needs no knob).
    state_dtypes = dict(mu_dtype=jnp.float32, nu_dtype=jnp.float32) if dtype == jnp.float16 else {}
    tx = factory(b1=LARGEST_DECAY, b2=LARGEST_DECAY, **state_dtypes)
    params = make_params(dtype)
    state = tx.init(params)
    grads = [grads_like(params, seed) for seed in (1, 2, 3)]
    want = _reference_updates(
        factory.__name__, dict(b1=LARGEST_DECAY, b2=LARGEST_DECAY), params, grads
    )
    for g, w in zip(grads, want, strict=True):
        updates, state = tx.update(g, state, params)
        chex.assert_tree_all_finite(updates)
        chex.assert_trees_all_equal_dtypes(updates, params)
        # Moments stored in bfloat16 carry its rounding (2**-8) into the update; float32
        # moments leave only the final rounding to float16.
        _assert_close_in(dtype, updates, w, ulps=4 if dtype == jnp.bfloat16 else 2)


def _reference_updates(name, kwargs, params, grads):
    """The NumPy reference's updates (float64) of ``gradxform.<name>(**kwargs)`` along
    ``grads``, at fixed ``params`` (the factory's defaults filled in)."""
    reference = make_reference(BY_NAME[name], kwargs, params)
    ps = [np.asarray(p, np.float64) for p in jax.tree.leaves(params)]
    state = reference.init(ps)
    out = []
    for g in grads:
        us, state = reference.step(
            [np.asarray(x, np.float64) for x in jax.tree.leaves(g)], state, ps
        )
        out.append(us)
    return out


def _assert_close_in(dtype, updates, want, *, ulps):
    """Equal to ``want`` within ``ulps`` units of the last place of ``dtype`` (of the
    subnormal spacing, for updates that small)."""
    info = jnp.finfo(dtype)
    tol = ulps * float(info.eps)
    for got, w in zip(jax.tree.leaves(updates), want, strict=True):
        np.testing.assert_allclose(
            np.asarray(got, np.float64), w, rtol=tol, atol=ulps * float(info.smallest_subnormal)
        )


ADAM_FAMILY = [
    gx.adam,
    gx.adamw,
    gx.amsgrad,
    gx.adamax,
    gx.adamaxw,
    gx.nadam,
    gx.nadamw,
    gx.radam,
    gx.adabelief,
    gx.yogi,
]


@pytest.mark.parametrize("factory", ADAM_FAMILY, ids=lambda f: f.__name__)
def test_adam_family_keeps_second_moment_in_float32_for_float16_params(factory):
    """Small float16 gradients: (1 - b2) * g**2 underflows unless nu is stored in float32."""
    tx = factory(1e-3, mu_dtype=jnp.float32, nu_dtype=jnp.float32)
    params = make_params(jnp.float16)
    state = tx.init(params)
    grads = [
        jax.tree.map(lambda x: (1e-3 * x).astype(jnp.float16), grads_like(params, seed))
        for seed in (1, 2, 3)
    ]
    want = _reference_updates(factory.__name__, dict(learning_rate=1e-3), params, grads)
    for g, w in zip(grads, want, strict=True):
        updates, state = tx.update(g, state, params)
        chex.assert_tree_all_finite(updates)
        chex.assert_trees_all_equal_dtypes(updates, params)
        _assert_close_in(jnp.float16, updates, w, ulps=2)


def test_centered_rmsprop_constant_gradient_stays_finite():
    """E[g^2] - E[g]^2 rounds below 0 once both have converged to g**2."""
    tx = gx.rmsprop(0.01, decay=0.9, centered=True, eps_in_sqrt=False)
    params = jnp.zeros(4)
    state = tx.init(params)
    g = jnp.array([0.1, 1.7, 0.3, 3.0])
    reference = references.RMSProp(0.01, decay=0.9, centered=True, eps_in_sqrt=False)
    ref_state = reference.init(np.zeros(4))

    for t in range(200):  # eagerly: the rounding that goes below 0 is that of plain ops
        updates, state = tx.update(g, state, params)
        chex.assert_tree_all_finite(updates)
        want, ref_state = reference.step(np.asarray(g, np.float64), ref_state, np.zeros(4))
        # The variance is g**2 0.9**t (1 - 0.9**t): for 25 steps (down to 0.07 g**2) the
        # float32 cancellation in E[g^2] - E[g]^2 moves the update by less than 5e-6;
        # later the rounding grows (1e-4 at step 55) and only finiteness is defined.
        if t < 25:
            np.testing.assert_allclose(updates, want, rtol=1e-5, err_msg=f"step {t + 1}")


# ------------------------------------------------------------------- complex

# Which optimizers take complex parameters: those that are linear in the gradient follow
# their real-view twin (the real and imaginary parts optimized as two real parameters)
# exactly; those with no complex form (sign methods, FTRL) and those whose per-leaf
# statistics are real-only raise a TypeError naming the key path; every other one takes
# complex parameters as optax does (tests/test_complex.py checks their values).
FOLLOWS_REAL_VIEW = {"sgd"}
REFUSES_COMPLEX = {
    "momo",
    "momo-adapt",
    "momo-adam",
    "cocob",
    "cocob-alpha-decay",
    "prodigy",
    "prodigy-package-defaults",
    "dadapt-adamw",
    "dadapt-adamw-package",
    "dadapt-sgd",
    "dadapt-sgd-momentum",
    "mechanize-sgd",
    "ftrl",
    "lion",
    "adafactor",
    "adafactor-unfactored",
    "sign-sgd",
    "signum",
    "cautious-lion",
    "rprop",
    "rprop-immediate",
    "sm3",
    "sm3-no-momentum",
    "madgrad",
    # Shampoo's and SOAP's Kronecker factors are real symmetric matrices
    "shampoo",
    "soap",
    "sophia",  # a real Hessian's diagonal
    "kron",  # PSGD-Kron's factors are real triangular matrices
}


def _real_view(tree):
    return jax.tree.map(lambda z: jnp.stack([jnp.real(z), jnp.imag(z)]), tree)


def _complex_view(tree):
    return jax.tree.map(lambda x: jax.lax.complex(x[0], x[1]), tree)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_complex_params_follow_real_view_or_raise(entry: Entry):
    rng = np.random.default_rng(0)

    def c(*shape):
        return jnp.asarray(rng.normal(size=shape) + 1j * rng.normal(size=shape), jnp.complex64)

    params = {"layer": {"z": c(3, 2)}, "s": c()}
    grads = [{"layer": {"z": c(3, 2)}, "s": c()} for _ in range(3)]
    tx = entry.make()
    if entry.id in REFUSES_COMPLEX:
        with pytest.raises(TypeError, match=r"'layer/z' is complex"):
            tx.update(grads[0], tx.init(params), params)
        return
    if entry.id not in FOLLOWS_REAL_VIEW:
        z, state = params, tx.init(params)
        for g in grads:
            u, state = tx.update(g, state, z)
            z = gx.apply_updates(z, u)
        assert all(x.dtype == jnp.complex64 for x in jax.tree.leaves(u))
        chex.assert_tree_all_finite((z, state))
        return
    z, state = params, tx.init(params)
    x, real_state = _real_view(params), tx.init(_real_view(params))
    for g in grads:
        u, state = tx.update(g, state, z)
        v, real_state = tx.update(_real_view(g), real_state, x)
        z, x = gx.apply_updates(z, u), gx.apply_updates(x, v)
        chex.assert_trees_all_equal(u, _complex_view(v))
    chex.assert_trees_all_equal(z, _complex_view(x))


# ------------------------------------------------- hyperparameters as JAX scalars


@pytest.mark.parametrize(
    "factory,kwargs",
    [
        (radam, dict(learning_rate=0.01, b2=0.99)),
        (radam, dict(learning_rate=0.01, b1=0.8, b2=0.999, threshold=4.0)),
        (ftrl, dict(learning_rate=0.5, learning_rate_power=-0.5, l1=0.01)),
        (ftrl, dict(learning_rate=0.5, learning_rate_power=-0.7, beta=0.5)),
    ],
    ids=["radam-b2", "radam-threshold", "ftrl-sqrt", "ftrl-power"],
)
def test_jax_scalar_and_traced_hyperparameters_match_python_floats(factory, kwargs):
    params = make_params()
    grads = [grads_like(params, s) for s in range(1, 9)]
    scalars = {k: jnp.float32(v) for k, v in kwargs.items()}

    def run(tx, update=None):
        update = update or tx.update
        p, state, out = params, tx.init(params), []
        for g in grads:
            u, state = update(g, state, p)
            p = gx.apply_updates(p, u)
            out.append(u)
        return out

    plain = run(factory(**kwargs))
    chex.assert_trees_all_equal(run(factory(**scalars)), plain)

    @jax.jit
    def traced(hp, g, state, p):
        return factory(**hp).update(g, state, p)

    tx = factory(**kwargs)
    chex.assert_trees_all_close(
        run(tx, lambda g, s, p: traced(scalars, g, s, p)), plain, rtol=1e-6, atol=1e-7
    )


def test_injected_ftrl_power_and_radam_b2_change_without_retracing():
    params = make_params()
    g = grads_like(params, 1)
    for factory, name, values in [
        (ftrl, "learning_rate_power", [-0.5, -0.7, -0.3]),
        (radam, "b2", [0.5, 0.9, 0.99]),
    ]:
        tx = inject_hyperparams(factory)(0.1)
        traces = []

        @jax.jit
        def step(state, tx=tx, traces=traces):
            traces.append(1)
            return tx.update(g, state, params)

        seen = []
        for value in values:
            state = gx.set_hyperparams(tx.init(params), **{name: value})
            for _ in range(6):  # RAdam rectifies from step 6 on with these b2
                updates, state = step(state)
            seen.append(np.asarray(updates["w"]))
            plain = factory(0.1, **{name: value})
            plain_state = plain.init(params)
            for _ in range(6):
                expected, plain_state = plain.update(g, plain_state, params)
            chex.assert_trees_all_close(updates, expected, rtol=1e-6, atol=1e-7)
        assert len(traces) == 1, (name, len(traces))
        assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[1], seen[2])


# ------------------------------------------------------------- float64 moments


@pytest.mark.parametrize(
    "make",
    [
        lambda: gx.scale_by_adam(nu_dtype=jnp.float64),
        lambda: gx.scale_by_amsgrad(nu_dtype=jnp.float64),
        lambda: gx.adam(0.1, nu_dtype=jnp.float64),
    ],
    ids=["scale_by_adam", "scale_by_amsgrad", "adam"],
)
def test_float64_second_moment_squares_a_float32_gradient_in_float64(make):
    """With x64 enabled, a float64 second moment of float32 parameters takes ``g**2`` in
    float64: the square of ``1 + 2**-12`` needs 25 bits (``1 + 2**-11 + 2**-24``), which a
    float32 square would round."""
    with jax.enable_x64(True):
        tx = make()
        state = tx.init(jnp.zeros((), jnp.float32))
        _, state = tx.update(jnp.asarray(1 + 2**-12, jnp.float32), state)
        (nu,) = [leaf for leaf in jax.tree.leaves(state) if leaf.dtype == jnp.float64][:1]
        np.testing.assert_allclose(float(nu), (1 - 0.999) * (1 + 2**-12) ** 2, rtol=1e-15)


@pytest.mark.parametrize("amsgrad_max", ["corrected", "raw"])
def test_amsgrad_low_precision_state_holds_the_maximum_not_the_update(amsgrad_max):
    """``nu_dtype=bfloat16`` stores nu and its running maximum in bfloat16, and the update
    of float32 weights divides by the maximum at full precision: the bfloat16 state is
    the only rounding (float64 reference, the stored moments rounded to bfloat16 after
    each step). A maximum rounded to bfloat16 before use would move the update by up to
    2**-10 of itself."""
    b1, b2, eps = 0.9, 0.99, 1e-8
    tx = gx.scale_by_amsgrad(b1, b2, eps, nu_dtype=jnp.bfloat16, amsgrad_max=amsgrad_max)
    rng = np.random.default_rng(3)
    grads = [rng.normal(size=5).astype(np.float32) * s for s in (1.0, 3.0, 0.2, 0.5)]
    state = tx.init(jnp.zeros(5, jnp.float32))

    def bf16(x):
        return np.asarray(np.asarray(x, jnp.bfloat16), np.float64)

    mu, nu, nu_max = np.zeros(5), np.zeros(5), np.zeros(5)
    for t, g in enumerate(grads, start=1):
        got, state = tx.update(jnp.asarray(g), state)
        g = g.astype(np.float64)
        mu = b1 * mu + (1 - b1) * g
        nu_new = b2 * nu + (1 - b2) * g * g
        if amsgrad_max == "raw":
            nu_max = bf16(np.maximum(nu_max, bf16(nu_new)))
            nu_hat = nu_max / (1 - b2**t)
        else:
            nu_hat = np.maximum(nu_max, bf16(nu_new) / (1 - b2**t))
            nu_max = bf16(nu_hat)
        nu = bf16(nu_new)
        want = mu / (1 - b1**t) / (np.sqrt(nu_hat) + eps)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=2e-6, err_msg=f"{t}")
        assert state.nu_max.dtype == jnp.bfloat16


# ------------------------------------------------------------- centered variance


@pytest.mark.parametrize(
    "make", [gx.scale_by_stddev, lambda **kw: gx.scale_by_rms(**kw, centered=True)]
)
def test_centered_variance_rounded_below_zero_is_taken_as_zero(make):
    """Once both moments have converged, ``nu - mu**2`` can round below zero (here
    ``nu`` is one ulp under ``mu**2 = 1``): the variance is then 0, never a negative
    number under the square root (a NaN)."""
    tx = make(decay=0.9, eps=1e-12)
    state = tx.init(jnp.zeros(2))
    one = jnp.ones(2, jnp.float32)
    state = state._replace(mu=one, nu=one - jnp.float32(2**-24))
    updates, _ = tx.update(one, state)
    np.testing.assert_allclose(np.asarray(updates), 1 / np.sqrt(1e-12), rtol=1e-6)
