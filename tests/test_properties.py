"""Property tests over every registered optimizer and every schedule factory.

Hypothesis draws tree structures and leaf shapes (scalars and zero-size
leaves included), data, dtypes and valid hyperparameters; the draws are
derandomized, so every run checks the same examples.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import gradxform as gx
from gradxform import (
    constant_schedule,
    cosine_decay_schedule,
    cyclical_schedule,
    exponential_decay,
    inverse_sqrt_schedule,
    inverse_time_decay,
    join_schedules,
    linear_schedule,
    one_cycle_momentum_schedule,
    one_cycle_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    polynomial_schedule,
    sgdr_schedule,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
    warmup_stable_decay_schedule,
)
from tests import references
from tests._util import run, scan_run
from tests.registry import REGISTRY, Entry

IDS = [e.id for e in REGISTRY]
INT32_MAX = 2**31 - 1


def _settings(n: int, *, shrink: bool = True) -> Any:
    # Without shrinking, a failure reports the first failing example at once instead of
    # spending minutes minimizing it (for the reference comparisons, which print it all).
    phases = [p for p in Phase if shrink or p is not Phase.shrink]
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
        phases=phases,
    )


# ------------------------------------------------------------------ strategies

SHAPES = [(), (0,), (1,), (3,), (2, 3), (0, 2), (3, 0), (4, 1)]


@st.composite
def layouts(draw: Any) -> Any:
    """A tree of shapes: one to three named leaves, optionally nested, or a list."""
    names = draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=3, unique=True))
    shapes = [draw(st.sampled_from(SHAPES)) for _ in names]
    form = draw(st.sampled_from(["flat", "nested", "list"]))
    if form == "list":
        return list(shapes)
    if form == "nested":
        return {
            "outer": {n: s for n, s in zip(names[1:], shapes[1:], strict=True)},
            names[0]: shapes[0],
        }
    return dict(zip(names, shapes, strict=True))


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple)


def build(layout: Any, seed: int, dtype: Any, scale: float = 1.0) -> Any:
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: jnp.asarray(scale * rng.normal(size=s), dtype), layout, is_leaf=_is_shape
    )


# Valid ranges for the hyperparameters the registry's configurations set.
RANGES: dict[str, tuple[float, float]] = {
    "learning_rate": (1e-4, 1.0),
    "b1": (0.0, 0.99),
    "b2": (0.0, 0.999),
    # decay = 0 makes centered RMSProp's variance estimate g**2 - g**2 = 0 identically, so
    # its update is g / eps: ill-conditioned by construction, not a property to check.
    "decay": (0.1, 0.99),
    "rho": (0.0, 0.99),
    "momentum": (0.0, 0.99),
    "weight_decay": (0.0, 0.5),
    "l1": (0.0, 0.1),
    "l2": (0.0, 0.1),
    "l2_shrinkage": (0.0, 0.1),
    "beta": (0.0, 1.0),
    "trust_coefficient": (1e-3, 0.1),
}
# Ranges of one factory that differ from the common ones (Muon's beta is a decay in [0, 1)).
# Shampoo's b2 is in (0, 1] (1 sums its factors).
FACTORY_BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("muon", "beta"): (0.0, 0.99),
    ("shampoo", "b2"): (0.5, 1.0),
}


@st.composite
def hyperparams(draw: Any, entry: Entry) -> dict[str, float]:
    names = sorted(set(entry.kwargs) & set(RANGES) | {"learning_rate"})
    bounds = {n: FACTORY_BOUNDS.get((entry.factory.__name__, n), RANGES[n]) for n in names}
    return {n: draw(st.floats(*bounds[n], allow_nan=False, allow_infinity=False)) for n in names}


def _no_decay(entry: Entry) -> dict[str, Any]:
    """Overrides under which a zero gradient must give a zero update: no pull toward the
    origin (weight decay, l1, l2; Fromage's shrinkage by 1 / sqrt(1 + eta**2) is tied to its
    rate eta, so its rate is set to 0) and no added noise (DP-SGD's)."""
    if entry.factory is gx.fromage:
        return {"learning_rate": 0.0}
    names = ("weight_decay", "l1", "l2", "l2_shrinkage", "noise_multiplier")
    return {k: 0.0 for k in names if k in entry.kwargs}


# ------------------------------------------------------------ optimizer properties


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
@_settings(3)
@given(layout=layouts(), seed=st.integers(0, 2**16), data=st.data())
def test_jit_equals_eager(entry: Entry, layout, seed, data):
    tx = entry.make(**data.draw(hyperparams(entry)))
    params = build(layout, seed, jnp.float32)
    grads = [build(layout, seed + i + 1, jnp.float32) for i in range(2)]
    eager, _, _ = run(tx, params, grads)
    jitted, _, _ = run(tx, params, grads, jit=True)
    # jit may fuse and reorder float32 arithmetic: a few ulps, of the entry or (for an
    # entry that is a difference of larger terms, e.g. a step minus a decay) of the
    # largest entry of the step. Muon's Newton-Schulz iteration amplifies such a
    # difference (expanding small singular values): measured up to 2.3e-6 relative.
    rtol = 1e-5 if entry.factory is gx.muon else 1e-6
    for a, b in zip(jitted, eager, strict=True):
        scale = max([float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(b) if x.size] + [0.0])
        chex.assert_trees_all_close(a, b, rtol=rtol, atol=rtol * scale + 1e-30)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
@_settings(4)
@given(
    layout=layouts(),
    seed=st.integers(0, 2**16),
    data=st.data(),
    dtype=st.sampled_from([jnp.float32, jnp.bfloat16, jnp.float16]),
)
def test_zero_gradient_without_decay_gives_exactly_zero_update(
    entry: Entry, layout, seed, data, dtype
):
    tx = entry.make(**{**data.draw(hyperparams(entry)), **_no_decay(entry)})
    params = build(layout, seed, dtype)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _, state = run(tx, params, [zeros, zeros])
    for u in updates:
        chex.assert_trees_all_equal(u, zeros)
    chex.assert_tree_all_finite(state)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
@_settings(6)
@given(
    layout=layouts(),
    seed=st.integers(0, 2**16),
    data=st.data(),
    dtype=st.sampled_from([jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64]),
    scale=st.sampled_from([1e-3, 1.0, 10.0]),
)
def test_finite_in_every_float_dtype(entry: Entry, layout, seed, data, dtype, scale):
    hp = data.draw(hyperparams(entry))
    if dtype == jnp.float16:
        # float16 state (the default: the params' dtype) cannot hold (1 - b2) * g**2 for
        # |g| below about 1e-2: the second moment underflows to 0 (see the README's
        # Guarantees; keep moments in float32 with nu_dtype/mu_dtype for such gradients).
        scale = max(scale, 1.0)
    with jax.enable_x64(dtype == jnp.float64):
        tx = entry.make(**hp)
        params = build(layout, seed, dtype)
        grads = [build(layout, seed + i + 1, dtype, scale) for i in range(3)]
        updates, _, state = run(tx, params, grads)
        for u, g in zip(updates, grads, strict=True):
            chex.assert_trees_all_equal_dtypes(u, g)
            chex.assert_tree_all_finite(u)
        chex.assert_tree_all_finite(state)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
@_settings(4)
@given(
    layout=layouts(),
    seed=st.integers(0, 2**16),
    data=st.data(),
    dtype=st.sampled_from([jnp.float32, jnp.bfloat16, jnp.float16]),
)
def test_init_depends_only_on_shapes_and_dtypes(entry: Entry, layout, seed, data, dtype):
    tx = entry.make(**data.draw(hyperparams(entry)))
    a, b = build(layout, seed, dtype), build(layout, seed + 1, dtype, 100.0)
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), a)
    state = tx.init(a)
    chex.assert_trees_all_equal(tx.init(b), state)
    chex.assert_trees_all_equal_structs(tx.init(abstract), state)
    chex.assert_trees_all_equal_shapes_and_dtypes(tx.init(abstract), state)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
@_settings(2)
@given(layout=layouts(), seed=st.integers(0, 2**16), data=st.data())
def test_state_structure_stable_through_scan(entry: Entry, layout, seed, data):
    tx = entry.make(**data.draw(hyperparams(entry)))
    params = build(layout, seed, jnp.float32)
    state = tx.init(params)
    grads = [build(layout, seed + i + 1, jnp.float32) for i in range(3)]
    _, final = scan_run(tx, params, grads)
    chex.assert_trees_all_equal_structs(final, state)
    chex.assert_trees_all_equal_shapes_and_dtypes(final, state)


# ------------------------------------------------------------- schedule properties

values = st.floats(1e-4, 10.0, allow_nan=False, allow_infinity=False)
signed = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)
fractions = st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False)
decays = st.floats(0.05, 0.99, allow_nan=False, allow_infinity=False)
steps_ = st.integers(1, 10**6)
begins = st.integers(0, 10**6)
small_steps = st.integers(1, 1000)


def _scales(draw: Any) -> dict[int, float]:
    bounds = draw(st.lists(st.integers(1, 10**6), min_size=1, max_size=4, unique=True))
    return {b: draw(st.floats(0.0, 2.0, allow_nan=False)) for b in sorted(bounds)}


def _cumulative(init: float, scales: dict[int, float]) -> list[float]:
    out, v = [init], init
    for _, s in sorted(scales.items()):
        v *= s
        out.append(v)
    return out


def _span(*xs: float) -> tuple[float, float]:
    return min(xs), max(xs)


# Each strategy draws valid arguments and returns (schedule, documented lower, upper bound).
SCHEDULES: dict[str, Callable[[Any], tuple[Callable[[Any], Any], float, float]]] = {
    "constant": lambda d: (lambda v: (constant_schedule(v), v, v))(d(signed)),
    "linear": lambda d: (lambda i, e: (linear_schedule(i, e, d(steps_), d(begins)), *_span(i, e)))(
        d(signed), d(signed)
    ),
    "polynomial": lambda d: (
        lambda i, e: (
            polynomial_schedule(i, e, d(st.floats(0.1, 5.0)), d(steps_), d(begins)),
            *_span(i, e),
        )
    )(d(signed), d(signed)),
    "piecewise_constant": lambda d: (
        lambda i, sc: (piecewise_constant_schedule(i, sc), *_span(*_cumulative(i, sc)))
    )(d(values), _scales(d)),
    "piecewise_interpolate": lambda d: (
        lambda i, sc, kind: (
            piecewise_interpolate_schedule(kind, i, sc),
            *_span(*_cumulative(i, sc)),
        )
    )(d(values), _scales(d), d(st.sampled_from(["linear", "cosine"]))),
    "cosine_decay": lambda d: (
        lambda i, a: (cosine_decay_schedule(i, d(steps_), a, d(st.floats(0.1, 5.0))), i * a, i)
    )(d(values), d(fractions)),
    "sgdr": lambda d: (
        lambda i: (
            sgdr_schedule(
                init_value=i,
                first_decay_steps=d(small_steps),
                t_mul=d(st.floats(1.0, 3.0)),
                m_mul=d(fractions),
                alpha=d(fractions),
            ),
            0.0,
            i,
        )
    )(d(values)),
    "exponential_decay": lambda d: (
        lambda i, e: (
            exponential_decay(i, d(steps_), d(decays), d(begins), d(st.booleans()), e),
            e or 0.0,
            i,
        )
    )(d(values), d(st.none() | st.just(0.0))),
    "exponential_growth": lambda d: (
        lambda i, e: (
            exponential_decay(
                i, d(steps_), d(st.floats(1.01, 3.0)), d(begins), d(st.booleans()), e
            ),
            i,
            e,
        )
    )(d(st.floats(1e-3, 1.0)), d(st.floats(1.0, 10.0))),
    "inverse_time_decay": lambda d: (
        lambda i: (
            inverse_time_decay(
                i,
                d(steps_),
                d(st.floats(0.0, 10.0)),
                d(st.floats(0.1, 3.0)),
                staircase=d(st.booleans()),
            ),
            0.0,
            i,
        )
    )(d(values)),
    "inverse_sqrt": lambda d: (
        lambda i, p: (inverse_sqrt_schedule(i, p, d(steps_)), 0.0, max(i, p))
    )(d(values), d(values)),
    "cyclical": lambda d: (
        lambda b, m: (
            cyclical_schedule(
                b,
                m,
                d(steps_),
                d(st.sampled_from(["triangular", "triangular2", "exp_range"])),
                d(st.floats(0.5, 1.0)),
                step_size_down=d(st.none() | steps_),
            ),
            *_span(b, m),
        )
    )(d(values), d(values)),
    "one_cycle": lambda d: (
        lambda m: (
            one_cycle_schedule(
                d(st.integers(100, 10**6)),
                m,
                d(st.floats(0.05, 0.45)),
                d(st.sampled_from(["cos", "linear"])),
                d(st.floats(1.0, 100.0)),
                d(st.floats(1.0, 1e4)),
                three_phase=d(st.booleans()),
            ),
            0.0,
            m,
        )
    )(d(values)),
    "one_cycle_momentum": lambda d: (
        lambda b, m: (
            one_cycle_momentum_schedule(
                d(st.integers(100, 10**6)),
                b,
                m,
                d(st.floats(0.05, 0.45)),
                three_phase=d(st.booleans()),
            ),
            *_span(b, m),
        )
    )(d(decays), d(decays)),
    "warmup_constant": lambda d: (
        lambda i, p: (warmup_constant_schedule(i, p, d(st.integers(0, 10**6))), *_span(i, p))
    )(d(values), d(values)),
    "warmup_cosine_decay": lambda d: (
        lambda i, p, e, w: (
            warmup_cosine_decay_schedule(i, p, w, w + d(steps_), e, d(st.floats(0.1, 5.0))),
            *_span(i, p, e),
        )
    )(d(values), d(values), d(values), d(st.integers(0, 10**6))),
    "warmup_exponential_decay": lambda d: (
        lambda i, p: (
            warmup_exponential_decay_schedule(
                i, p, d(st.integers(0, 10**6)), d(steps_), d(decays), d(begins), d(st.booleans())
            ),
            *_span(i, p, 0.0),
        )
    )(d(values), d(values)),
    "warmup_stable_decay": lambda d: (
        lambda i, p, e, w, k: (
            warmup_stable_decay_schedule(
                i,
                p,
                w,
                w + k,
                d(st.floats(0.01, 1.0)) * k / (w + k),
                e,
                decay_shape=d(st.sampled_from(["linear", "cosine", "1-sqrt"])),
            ),
            *_span(i, p, e),
        )
    )(d(values), d(values), d(values), d(st.integers(0, 10**5)), d(st.integers(1, 10**6))),
    "join": lambda d: (
        lambda i, e, v: (
            join_schedules(
                [linear_schedule(i, e, d(steps_)), constant_schedule(v)],
                [d(st.integers(1, INT32_MAX))],
            ),
            *_span(i, e, v),
        )
    )(d(signed), d(signed), d(signed)),
}

EDGES = [0, 1, 2, INT32_MAX - 1, INT32_MAX]


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@_settings(12)
@given(data=st.data(), steps=st.lists(st.integers(0, INT32_MAX), min_size=1, max_size=8))
def test_schedule_finite_and_within_bounds(name, data, steps):
    schedule, low, high = SCHEDULES[name](data.draw)
    ts = EDGES + steps
    values = np.asarray(schedule(jnp.asarray(ts, jnp.int32)))
    one_by_one = np.asarray([schedule(t) for t in ts[:3] + ts[-2:]])
    tol = 1e-5 * max(abs(low), abs(high), 1e-3)
    for got in (values, one_by_one):
        assert np.all(np.isfinite(got)), (name, ts, got)
        assert np.all(got >= low - tol) and np.all(got <= high + tol), (name, low, high, got)
    # A step given alone and in a batch agree to rounding (XLA may vectorize differently).
    np.testing.assert_allclose(one_by_one, values[[0, 1, 2, -2, -1]], rtol=1e-6, atol=1e-7)
    assert math.isfinite(float(schedule(INT32_MAX)))


# ------------------------------------------------- drawn hyperparameters vs references

# Valid ranges for every numeric hyperparameter the registry's factories take (the
# registry sets only some of them; the rest are drawn here too).
REFERENCE_RANGES: dict[str, Any] = {
    "learning_rate": st.floats(1e-3, 0.5),
    "b1": st.floats(0.0, 0.99),
    "b2": st.floats(0.0, 0.999),
    "eps": st.floats(-8.0, 0.0).map(lambda e: 10.0**e),
    "eps_root": st.floats(0.0, 0.5),
    "decay": st.floats(0.1, 0.99),
    # no subnormal radius: XLA on CPU flushes subnormals to zero (SAM's ascent step
    # rho * g / |g| with rho = 2e-311 is 0 there, 1e-311 in NumPy)
    "rho": st.floats(0.0, 0.99, allow_subnormal=False),
    "momentum": st.floats(0.0, 0.99),
    "weight_decay": st.floats(0.0, 0.5),
    "l1": st.floats(0.0, 0.1),
    "l2": st.floats(0.0, 0.1),
    "l2_shrinkage": st.floats(0.0, 0.1),
    "beta": st.floats(0.0, 1.0),
    "trust_coefficient": st.floats(1e-3, 0.1),
    "initial_accumulator_value": st.floats(0.0, 1.0),
    "initial_scale": st.floats(0.0, 1.0),
    "threshold": st.floats(4.0, 10.0),
    "learning_rate_power": st.floats(-1.0, -0.1),
    "momentum_decay": st.floats(1e-3, 1.0),
    "decay_rate": st.floats(0.5, 1.0),
    "clipping_threshold": st.floats(0.5, 2.0),
    "min_scale": st.floats(1e-3, 2.0),
    "l2_norm_clip": st.floats(0.1, 5.0),
    "noise_multiplier": st.floats(0.0, 2.0),
}
# No zero-size leaves here: the references take means and norms of whole leaves.
REFERENCE_SHAPES = [(), (1,), (3,), (2, 3), (4, 1)]


# Hyperparameters that only exist in some configurations (the factory refuses them
# elsewhere).
APPLIES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "momentum_decay": lambda kwargs: kwargs.get("momentum_schedule") == "dozat",
}


# Ranges of one factory that differ from the common ones: Schedule-Free's b1 is in (0, 1)
# (its evaluation weights divide by it).
# DP-SGD draws its noise in the gradients' dtype: in float64 (this test's) those are not
# the float32 draws its reference reproduces, so the noise is off here (the battery checks
# it in float32).
FACTORY_RANGES: dict[tuple[str, str], Any] = {
    **{
        (name, "b1"): st.floats(0.05, 0.99)
        for name in ("schedule_free_sgd", "schedule_free_adamw", "schedule_free_rmsprop")
    },
    ("dpsgd", "noise_multiplier"): st.just(0.0),
    ("muon", "beta"): st.floats(0.0, 0.99),
    ("shampoo", "b2"): st.floats(0.5, 1.0),
}


@st.composite
def reference_hyperparams(draw: Any, entry: Entry) -> dict[str, float]:
    names = sorted(set(inspect.signature(entry.factory).parameters) & set(REFERENCE_RANGES))
    factory = entry.factory.__name__
    return {
        n: draw(FACTORY_RANGES.get((factory, n), REFERENCE_RANGES[n]))
        for n in names
        if APPLIES.get(n, lambda _: True)(entry.kwargs)
    }


@st.composite
def reference_layouts(draw: Any) -> Any:
    names = draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=3, unique=True))
    return {n: draw(st.sampled_from(REFERENCE_SHAPES)) for n in names}


# SOAP's first eigenbasis is that of L = G G^T: for a (4, 1) leaf a rank-one factor whose
# zero eigenvalue is threefold, so every basis of its null space is as right as another
# (float64 and float32 eigh pick different ones, and Adam's diagonal second moment in them
# differs). A (2, 3) leaf stands for it: its factors' null spaces are at most lines.
WELL_POSED_SHAPES: dict[str, dict[tuple[int, ...], tuple[int, ...]]] = {"soap": {(4, 1): (2, 3)}}


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
@_settings(3, shrink=False)
@given(layout=reference_layouts(), seed=st.integers(0, 2**16), data=st.data())
def test_matches_reference_at_drawn_hyperparameters(entry: Entry, layout, seed, data):
    """Any valid hyperparameters, not only the registry's, give the reference's updates.

    In float64 (x64), so that the comparison is limited by gradxform's float32 scalars
    (bias factors, RAdam's rho_t), not by the conditioning of the drawn configuration.
    """
    kwargs = {**entry.kwargs, **data.draw(reference_hyperparams(entry))}
    swap = WELL_POSED_SHAPES.get(entry.id, {})
    layout = {k: swap.get(v, v) for k, v in layout.items()}
    with jax.enable_x64(True):
        params = build(layout, seed, jnp.float64)
        grads = [build(layout, seed + i + 1, jnp.float64) for i in range(4)]
        updates, _, _ = run(entry.factory(**kwargs), params, grads)
    leaves = [np.asarray(p, np.float64) for p in jax.tree.leaves(params)]
    reference = entry.reference(**kwargs)
    if not isinstance(reference, references.TreeReference):  # one reference per leaf
        reference = references.PerLeaf(entry.reference(**kwargs) for _ in leaves)
    state = reference.init(leaves)
    for t, g in enumerate(grads):
        gs = [np.asarray(x, np.float64) for x in jax.tree.leaves(g)]
        want, state = reference.step(gs, state, leaves)
        scale = max(float(np.max(np.abs(u))) for u in want if u.size)
        for got, w in zip(jax.tree.leaves(updates[t]), want, strict=True):
            np.testing.assert_allclose(
                np.asarray(got),
                w,
                rtol=1e-6,
                atol=1e-6 * scale,
                err_msg=f"{entry.id}({kwargs}), step {t + 1}",
            )
        leaves = [p + u for p, u in zip(leaves, want, strict=True)]


def _line(scale: float, slope: float) -> Callable[[Any], Any]:
    """A join_schedules piece ``scale + slope * t`` (Python and JAX steps)."""
    return lambda t: scale + slope * jnp.asarray(t, jnp.float32)


def _bounds(draw: Any, low: int = 1, high: int = 10**6) -> dict[int, float]:
    bounds = draw(st.lists(st.integers(low, high), min_size=1, max_size=4, unique=True))
    return {b: draw(st.floats(0.0, 2.0)) for b in sorted(bounds)}


# name -> a strategy of keyword arguments (the schedule's and its reference's).
SCHEDULE_ARGS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "constant_schedule": lambda d: dict(value=d(signed)),
    "linear_schedule": lambda d: dict(
        init_value=d(signed),
        end_value=d(signed),
        transition_steps=d(steps_),
        transition_begin=d(begins),
    ),
    "polynomial_schedule": lambda d: dict(
        init_value=d(signed),
        end_value=d(signed),
        power=d(st.floats(0.1, 5.0)),
        transition_steps=d(steps_),
        transition_begin=d(begins),
    ),
    "piecewise_constant_schedule": lambda d: dict(
        init_value=d(values), boundaries_and_scales=_bounds(d)
    ),
    "piecewise_interpolate_schedule": lambda d: dict(
        interpolate_type=d(st.sampled_from(["linear", "cosine"])),
        init_value=d(values),
        boundaries_and_scales=_bounds(d),
    ),
    "cosine_decay_schedule": lambda d: dict(
        init_value=d(values),
        decay_steps=d(steps_),
        alpha=d(fractions),
        exponent=d(st.floats(0.1, 5.0)),
    ),
    "sgdr_schedule": lambda d: dict(
        init_value=d(values),
        first_decay_steps=d(small_steps),
        t_mul=d(st.sampled_from([1.0, 1.5, 2.0, 3.0])),
        m_mul=d(fractions),
        alpha=d(fractions),
    ),
    "exponential_decay": lambda d: dict(
        init_value=d(values),
        transition_steps=d(steps_),
        decay_rate=d(decays),
        transition_begin=d(begins),
        staircase=d(st.booleans()),
        end_value=d(st.none() | st.floats(0.0, 1e-3)),
    ),
    "inverse_time_decay": lambda d: dict(
        init_value=d(values),
        decay_steps=d(steps_),
        decay_rate=d(st.floats(0.0, 10.0)),
        power=d(st.floats(0.1, 3.0)),
        staircase=d(st.booleans()),
    ),
    "inverse_sqrt_schedule": lambda d: dict(
        init_value=d(values), peak_value=d(values), warmup_steps=d(steps_)
    ),
    "cyclical_schedule": lambda d: dict(
        base_value=d(values),
        max_value=d(values),
        step_size=d(small_steps),
        mode=d(st.sampled_from(["triangular", "triangular2", "exp_range"])),
        gamma=d(st.floats(0.9, 1.0)),
        step_size_down=d(st.none() | small_steps),
    ),
    "one_cycle_schedule": lambda d: dict(
        total_steps=d(st.integers(100, 10**6)),
        max_value=d(values),
        pct_start=d(st.floats(0.05, 0.45)),
        anneal_strategy=d(st.sampled_from(["cos", "linear"])),
        div_factor=d(st.floats(1.0, 100.0)),
        final_div_factor=d(st.floats(1.0, 1e4)),
        three_phase=d(st.booleans()),
    ),
    "one_cycle_momentum_schedule": lambda d: dict(
        total_steps=d(st.integers(100, 10**6)),
        base_momentum=d(decays),
        max_momentum=d(decays),
        pct_start=d(st.floats(0.05, 0.45)),
        anneal_strategy=d(st.sampled_from(["cos", "linear"])),
        three_phase=d(st.booleans()),
    ),
    "warmup_constant_schedule": lambda d: dict(
        init_value=d(values), peak_value=d(values), warmup_steps=d(st.integers(0, 10**6))
    ),
    "warmup_cosine_decay_schedule": lambda d: (
        lambda w: dict(
            init_value=d(values),
            peak_value=d(values),
            warmup_steps=w,
            decay_steps=w + d(steps_),
            end_value=d(values),
            exponent=d(st.floats(0.1, 5.0)),
        )
    )(d(st.integers(0, 10**6))),
    "warmup_exponential_decay_schedule": lambda d: dict(
        init_value=d(values),
        peak_value=d(values),
        warmup_steps=d(st.integers(0, 10**6)),
        transition_steps=d(steps_),
        decay_rate=d(decays),
        transition_begin=d(begins),
        staircase=d(st.booleans()),
    ),
    "warmup_stable_decay_schedule": lambda d: (
        lambda w, k: dict(
            init_value=d(values),
            peak_value=d(values),
            warmup_steps=w,
            total_steps=w + k,
            decay_fraction=d(st.floats(0.01, 1.0)) * k / (w + k),
            end_value=d(values),
            decay_shape=d(st.sampled_from(["linear", "cosine", "1-sqrt"])),
        )
    )(d(st.integers(0, 10**5)), d(st.integers(1, 10**6))),
    "join_schedules": lambda d: dict(
        schedules=[_line(d(signed), d(st.floats(-1e-3, 1e-3))), _line(d(signed), 0.0)],
        boundaries=[d(st.integers(1, 10**6))],
    ),
}
# Exact in float32, where the schedules count (as JAX does without x64).
EXACT_STEPS = st.integers(0, 2**24)


@pytest.mark.parametrize("name", sorted(SCHEDULE_ARGS))
@_settings(8, shrink=False)
@given(data=st.data(), steps=st.lists(EXACT_STEPS, min_size=1, max_size=8))
def test_schedule_matches_reference_at_drawn_arguments(name, data, steps):
    kwargs = SCHEDULE_ARGS[name](data.draw)
    schedule = getattr(gx, name)(**kwargs)
    formula = getattr(references, name)
    ts = [0, 1, 2, *steps]
    want = np.array([formula(t, **kwargs) for t in ts], np.float64)
    got = np.asarray(schedule(jnp.asarray(ts, jnp.int32)), np.float64)
    scale = max(float(np.max(np.abs(want))), 1e-6)
    # float32 against float64: a value r**(t / T) carries the rounding of its exponent,
    # about 6e-8 * |log of the value|; 1e-5 covers values down to e**-160 (then atol).
    np.testing.assert_allclose(
        got, want, rtol=1e-5, atol=1e-6 * scale, err_msg=f"{name}({kwargs}) at steps {ts}"
    )
