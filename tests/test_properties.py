"""Property tests over every registered optimizer and every schedule factory.

Hypothesis draws tree structures and leaf shapes (scalars and zero-size
leaves included), data, dtypes and valid hyperparameters; the draws are
derandomized, so every run checks the same examples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from tests._util import run, scan_run
from tests.registry import REGISTRY, Entry

IDS = [e.id for e in REGISTRY]
INT32_MAX = 2**31 - 1


def _settings(n: int) -> Any:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


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
        return {"outer": {n: s for n, s in zip(names[1:], shapes[1:], strict=True)},
                names[0]: shapes[0]}
    return dict(zip(names, shapes, strict=True))


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple)


def build(layout: Any, seed: int, dtype: Any, scale: float = 1.0) -> Any:
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(scale * rng.normal(size=s), dtype), layout,
                        is_leaf=_is_shape)


# Valid ranges for the hyperparameters the registry's configurations set.
RANGES: dict[str, tuple[float, float]] = {
    "learning_rate": (1e-4, 1.0), "b1": (0.0, 0.99), "b2": (0.0, 0.999),
    # decay = 0 makes centered RMSProp's variance estimate g**2 - g**2 = 0 identically, so
    # its update is g / eps: ill-conditioned by construction, not a property to check.
    "decay": (0.1, 0.99),
    "rho": (0.0, 0.99), "momentum": (0.0, 0.99), "weight_decay": (0.0, 0.5),
    "l1": (0.0, 0.1), "l2": (0.0, 0.1), "l2_shrinkage": (0.0, 0.1), "beta": (0.0, 1.0),
    "trust_coefficient": (1e-3, 0.1),
}


@st.composite
def hyperparams(draw: Any, entry: Entry) -> dict[str, float]:
    names = sorted(set(entry.kwargs) & set(RANGES) | {"learning_rate"})
    return {n: draw(st.floats(*RANGES[n], allow_nan=False, allow_infinity=False))
            for n in names}


def _no_decay(entry: Entry) -> dict[str, Any]:
    """Overrides that turn off every pull toward the origin (weight decay, l1, l2)."""
    return {k: 0.0 for k in ("weight_decay", "l1", "l2", "l2_shrinkage") if k in entry.kwargs}


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
    chex.assert_trees_all_close(jitted, eager, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
@_settings(4)
@given(layout=layouts(), seed=st.integers(0, 2**16), data=st.data(),
       dtype=st.sampled_from([jnp.float32, jnp.bfloat16, jnp.float16]))
def test_zero_gradient_without_decay_gives_exactly_zero_update(entry: Entry, layout, seed,
                                                               data, dtype):
    tx = entry.make(**{**data.draw(hyperparams(entry)), **_no_decay(entry)})
    params = build(layout, seed, dtype)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _, state = run(tx, params, [zeros, zeros])
    for u in updates:
        chex.assert_trees_all_equal(u, zeros)
    chex.assert_tree_all_finite(state)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
@_settings(6)
@given(layout=layouts(), seed=st.integers(0, 2**16), data=st.data(),
       dtype=st.sampled_from([jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64]),
       scale=st.sampled_from([1e-3, 1.0, 10.0]))
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
@given(layout=layouts(), seed=st.integers(0, 2**16), data=st.data(),
       dtype=st.sampled_from([jnp.float32, jnp.bfloat16, jnp.float16]))
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
    "linear": lambda d: (lambda i, e: (linear_schedule(i, e, d(steps_), d(begins)),
                                       *_span(i, e)))(d(signed), d(signed)),
    "polynomial": lambda d: (lambda i, e: (
        polynomial_schedule(i, e, d(st.floats(0.1, 5.0)), d(steps_), d(begins)),
        *_span(i, e)))(d(signed), d(signed)),
    "piecewise_constant": lambda d: (lambda i, sc: (
        piecewise_constant_schedule(i, sc), *_span(*_cumulative(i, sc))))(d(values),
                                                                         _scales(d)),
    "piecewise_interpolate": lambda d: (lambda i, sc, kind: (
        piecewise_interpolate_schedule(kind, i, sc), *_span(*_cumulative(i, sc))))(
            d(values), _scales(d), d(st.sampled_from(["linear", "cosine"]))),
    "cosine_decay": lambda d: (lambda i, a: (
        cosine_decay_schedule(i, d(steps_), a, d(st.floats(0.1, 5.0))), i * a, i))(
            d(values), d(fractions)),
    "sgdr": lambda d: (lambda i: (
        sgdr_schedule(i, d(small_steps), d(st.floats(1.0, 3.0)), d(fractions), d(fractions)),
        0.0, i))(d(values)),
    "exponential_decay": lambda d: (lambda i, e: (
        exponential_decay(i, d(steps_), d(decays), d(begins), d(st.booleans()), e),
        e or 0.0, i))(d(values), d(st.none() | st.just(0.0))),
    "exponential_growth": lambda d: (lambda i, e: (
        exponential_decay(i, d(steps_), d(st.floats(1.01, 3.0)), d(begins), d(st.booleans()),
                          e), i, e))(d(st.floats(1e-3, 1.0)), d(st.floats(1.0, 10.0))),
    "inverse_time_decay": lambda d: (lambda i: (
        inverse_time_decay(i, d(steps_), d(st.floats(0.0, 10.0)), d(st.floats(0.1, 3.0)),
                           staircase=d(st.booleans())), 0.0, i))(d(values)),
    "inverse_sqrt": lambda d: (lambda i, p: (
        inverse_sqrt_schedule(i, p, d(steps_)), 0.0, max(i, p)))(d(values), d(values)),
    "cyclical": lambda d: (lambda b, m: (
        cyclical_schedule(b, m, d(steps_), d(st.sampled_from(
            ["triangular", "triangular2", "exp_range"])), d(st.floats(0.5, 1.0)),
            step_size_down=d(st.none() | steps_)), *_span(b, m)))(d(values), d(values)),
    "one_cycle": lambda d: (lambda m: (
        one_cycle_schedule(d(st.integers(100, 10**6)), m, d(st.floats(0.05, 0.45)),
                           d(st.sampled_from(["cos", "linear"])), d(st.floats(1.0, 100.0)),
                           d(st.floats(1.0, 1e4)), three_phase=d(st.booleans())), 0.0, m))(
                               d(values)),
    "one_cycle_momentum": lambda d: (lambda b, m: (
        one_cycle_momentum_schedule(d(st.integers(100, 10**6)), b, m, d(st.floats(0.05, 0.45)),
                                    three_phase=d(st.booleans())), *_span(b, m)))(
                                        d(decays), d(decays)),
    "warmup_constant": lambda d: (lambda i, p: (
        warmup_constant_schedule(i, p, d(st.integers(0, 10**6))), *_span(i, p)))(
            d(values), d(values)),
    "warmup_cosine_decay": lambda d: (lambda i, p, e, w: (
        warmup_cosine_decay_schedule(i, p, w, w + d(steps_), e, d(st.floats(0.1, 5.0))),
        *_span(i, p, e)))(d(values), d(values), d(values), d(st.integers(0, 10**6))),
    "warmup_exponential_decay": lambda d: (lambda i, p: (
        warmup_exponential_decay_schedule(i, p, d(st.integers(0, 10**6)), d(steps_),
                                          d(decays), d(begins), d(st.booleans())),
        *_span(i, p, 0.0)))(d(values), d(values)),
    "warmup_stable_decay": lambda d: (lambda i, p, e, w, k: (
        warmup_stable_decay_schedule(i, p, w, w + k, d(st.floats(0.01, 1.0)) * k / (w + k), e,
                                     decay_shape=d(st.sampled_from(["linear", "cosine",
                                                                    "1-sqrt"]))),
        *_span(i, p, e)))(d(values), d(values), d(values), d(st.integers(0, 10**5)),
                          d(st.integers(1, 10**6))),
    "join": lambda d: (lambda i, e, v: (
        join_schedules([linear_schedule(i, e, d(steps_)), constant_schedule(v)],
                       [d(st.integers(1, INT32_MAX))]), *_span(i, e, v)))(
                           d(signed), d(signed), d(signed)),
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
