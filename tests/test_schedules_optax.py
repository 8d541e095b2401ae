"""Schedules against optax: signatures, the onecycle and SGDR forms, and the optax-found cases.

Each schedule that optax has is checked against a NumPy reference written from
its formula and against optax itself (evaluated with standard dtype promotion,
as optax is written for it).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from gradxform import schedules

# optax.schedules also holds the hyperparameter-injection wrappers; they are not schedules.
NOT_SCHEDULES = {
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "StatefulSchedule",
    "WrappedSchedule",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
}
OPTAX_SCHEDULES = sorted(
    n
    for n in dir(optax.schedules)
    if not n.startswith("_")
    and n not in NOT_SCHEDULES
    and inspect.isfunction(getattr(optax.schedules, n))
)

STEPS = np.arange(0, 130)


def optax_values(schedule: Callable[[Any], Any], steps: np.ndarray = STEPS) -> np.ndarray:
    """optax's values one step at a time (some of its schedules take scalar steps only)."""
    with jax.numpy_dtype_promotion("standard"):
        return np.array([np.asarray(schedule(int(t)), np.float64) for t in steps])


def values(schedule: Callable[[Any], Any], steps: np.ndarray = STEPS) -> np.ndarray:
    return np.asarray(schedule(jnp.asarray(steps)), np.float64)


def close(got: Any, want: Any, rtol: float = 2e-6, atol: float = 1e-7) -> None:
    np.testing.assert_allclose(
        np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=rtol, atol=atol
    )


# ----------------------------------------------------------------------------- namespace


def test_every_optax_schedule_is_in_gradxform_schedules():
    missing = [n for n in OPTAX_SCHEDULES if not hasattr(schedules, n)]
    assert not missing
    assert set(schedules.__all__) >= set(OPTAX_SCHEDULES)


def test_schedules_namespace_is_the_top_level_one():
    for name in schedules.__all__:
        if name in gx.__all__:
            assert getattr(schedules, name) is getattr(gx, name), name


@pytest.mark.parametrize("name", OPTAX_SCHEDULES)
def test_signature_matches_optax(name):
    """optax's parameters, in optax's order, kinds and defaults; gradxform extras keyword-only."""
    ours = list(inspect.signature(getattr(schedules, name)).parameters.values())
    theirs = list(inspect.signature(getattr(optax.schedules, name)).parameters.values())
    assert [p.name for p in ours[: len(theirs)]] == [p.name for p in theirs]
    for a, b in zip(ours, theirs, strict=False):
        assert a.kind == b.kind, (name, a.name)
        if name == "sgdr_schedule":
            continue  # optax's cosine_kwargs is required; ours defaults to None (see below)
        assert a.default == b.default or (a.default is b.default), (name, a.name)
    for extra in ours[len(theirs) :]:
        assert extra.kind is inspect.Parameter.KEYWORD_ONLY, (name, extra.name)


# ----------------------------------------------------------------------------- references


def ref_piecewise_interpolate(
    t: np.ndarray, kind: str, init: float, scales: dict[int, float]
) -> np.ndarray:
    """optax's piecewise interpolation: at each boundary, init times the scales so far."""
    bounds = [0, *sorted(scales)]
    vals = np.cumprod([init, *(scales[b] for b in sorted(scales))])
    out = np.full(t.shape, vals[-1], np.float64)
    for i in range(len(bounds) - 1):
        lo, hi = bounds[i], bounds[i + 1]
        if hi <= lo:
            continue
        frac = (t - lo) / (hi - lo)
        if kind == "linear":
            piece = vals[i] + (vals[i + 1] - vals[i]) * frac
        else:
            piece = vals[i + 1] + (vals[i] - vals[i + 1]) / 2 * (np.cos(np.pi * frac) + 1)
        out = np.where((t >= lo) & (t < hi), piece, out)
    return out


def ref_linear_onecycle(t, T, peak, pct_start=0.3, pct_final=0.85, div=25.0, final_div=1e4):
    scales = {int(pct_start * T): div, int(pct_final * T): 1 / div, T: 1 / final_div}
    init = peak / div
    if 0 in scales:
        init *= scales.pop(0)
    return ref_piecewise_interpolate(t, "linear", init, scales)


def ref_cosine_onecycle(t, T, peak, pct_start=0.3, div=25.0, final_div=1e4):
    scales = {int(pct_start * T): div, T: 1 / (div * final_div)}
    init = peak / div
    if 0 in scales:
        init *= scales.pop(0)
    return ref_piecewise_interpolate(t, "cosine", init, scales)


def ref_warmup_cosine(t, init, peak, warmup, decay, end=0.0, exponent=1.0):
    """Linear warmup, then ``peak * ((1 - a) * c**exponent + a)`` with ``a = end / peak``."""
    alpha = 0.0 if peak == 0 else end / peak
    warm = init + (peak - init) * np.clip(t / max(warmup, 1), 0, 1)
    frac = np.clip((t - warmup) / (decay - warmup), 0, 1)
    cos = 0.5 * (1 + np.cos(np.pi * frac))
    return np.where(t < warmup, warm, peak * ((1 - alpha) * cos**exponent + alpha))


def ref_sgdr(t, cycles):
    """Each cycle a warmup-cosine schedule on its own clock, back to back."""
    out = np.zeros(t.shape)
    start = 0
    for i, kw in enumerate(cycles):
        local = ref_warmup_cosine(
            t - start,
            kw["init_value"],
            kw["peak_value"],
            kw["warmup_steps"],
            kw["decay_steps"],
            kw.get("end_value", 0.0),
            kw.get("exponent", 1.0),
        )
        last = i == len(cycles) - 1
        mask = (t >= start) & ((t < start + kw["decay_steps"]) | last)
        out = np.where(mask, local, out)
        start += kw["decay_steps"]
    return out


def ref_exponential(t, init, steps, rate, begin=0, staircase=False, end=None):
    p = np.maximum(t - begin, 0) / steps
    if staircase:
        p = np.floor(p)
    v = init * rate**p
    if end is not None:
        v = np.maximum(v, end) if rate < 1 else np.minimum(v, end)
    return v


# ----------------------------------------------------------------------------- onecycle

LINEAR_ONECYCLE = [
    dict(transition_steps=100, peak_value=0.3),
    dict(
        transition_steps=10,
        peak_value=1.0,
        pct_start=0.2,
        pct_final=0.6,
        div_factor=10.0,
        final_div_factor=10.0,
    ),
    dict(transition_steps=7, peak_value=2.0, pct_start=0.0, pct_final=0.5),
    dict(transition_steps=3, peak_value=1.0),
    dict(transition_steps=1, peak_value=1.0),
]
COSINE_ONECYCLE = [
    dict(transition_steps=100, peak_value=0.3),
    dict(
        transition_steps=10, peak_value=1.0, pct_start=0.2, div_factor=10.0, final_div_factor=10.0
    ),
    dict(transition_steps=7, peak_value=2.0, pct_start=0.0),
    dict(transition_steps=5, peak_value=1.0, pct_start=1.0),
    dict(transition_steps=1, peak_value=1.0),
]


@pytest.mark.parametrize("kw", LINEAR_ONECYCLE)
def test_linear_onecycle(kw):
    s = schedules.linear_onecycle_schedule(**kw)
    t = np.arange(0, kw["transition_steps"] + 5)
    want = ref_linear_onecycle(
        t.astype(np.float64),
        kw["transition_steps"],
        kw["peak_value"],
        kw.get("pct_start", 0.3),
        kw.get("pct_final", 0.85),
        kw.get("div_factor", 25.0),
        kw.get("final_div_factor", 1e4),
    )
    close(values(s, t), want, rtol=1e-5)
    close(values(s, t), optax_values(optax.linear_onecycle_schedule(**kw), t), rtol=1e-5)


@pytest.mark.parametrize("kw", COSINE_ONECYCLE)
def test_cosine_onecycle(kw):
    s = schedules.cosine_onecycle_schedule(**kw)
    t = np.arange(0, kw["transition_steps"] + 5)
    want = ref_cosine_onecycle(
        t.astype(np.float64),
        kw["transition_steps"],
        kw["peak_value"],
        kw.get("pct_start", 0.3),
        kw.get("div_factor", 25.0),
        kw.get("final_div_factor", 1e4),
    )
    close(values(s, t), want, rtol=1e-5)
    close(values(s, t), optax_values(optax.cosine_onecycle_schedule(**kw), t), rtol=1e-5)


def test_onecycle_peak_is_reached_at_pct_start():
    s = schedules.cosine_onecycle_schedule(200, 0.5, pct_start=0.25)
    assert float(s(50)) == pytest.approx(0.5)
    assert float(s(0)) == pytest.approx(0.02)
    assert float(s(10**6)) == pytest.approx(0.02 / 1e4)


@pytest.mark.parametrize(
    "factory, kw, match",
    [
        (
            schedules.linear_onecycle_schedule,
            dict(transition_steps=0, peak_value=1.0),
            "transition_steps",
        ),
        (
            schedules.cosine_onecycle_schedule,
            dict(transition_steps=-3, peak_value=1.0),
            "transition_steps",
        ),
        (
            schedules.linear_onecycle_schedule,
            dict(transition_steps=10, peak_value=1.0, pct_start=0.5, pct_final=0.4),
            "pct_final",
        ),
        (
            schedules.cosine_onecycle_schedule,
            dict(transition_steps=10, peak_value=1.0, div_factor=0.0),
            "div_factor",
        ),
    ],
)
def test_onecycle_bad_arguments(factory, kw, match):
    with pytest.raises(ValueError, match=match):
        factory(**kw)


# ----------------------------------------------------------------------------- SGDR

SGDR_CYCLES = [
    [dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=40)],
    [
        dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=40, end_value=0.1),
        dict(init_value=0.1, peak_value=0.5, warmup_steps=0, decay_steps=30, exponent=2.0),
        dict(init_value=0.05, peak_value=0.25, warmup_steps=10, decay_steps=50),
    ],
    [dict(init_value=0.2, peak_value=0.2, warmup_steps=1, decay_steps=2)] * 4,
]


@pytest.mark.parametrize("cycles", SGDR_CYCLES)
def test_sgdr_optax_form(cycles):
    s = schedules.sgdr_schedule(cycles)
    t = np.arange(0, sum(c["decay_steps"] for c in cycles) + 10)
    close(values(s, t), ref_sgdr(t.astype(np.float64), cycles), rtol=1e-5, atol=1e-6)
    close(values(s, t), optax_values(optax.sgdr_schedule(cycles), t), rtol=1e-5, atol=1e-6)


def test_sgdr_accepts_any_iterable_once():
    cycles = SGDR_CYCLES[1]
    s = schedules.sgdr_schedule(iter(cycles))
    close(values(s), values(schedules.sgdr_schedule(cycles)))


def test_sgdr_geometric_restarts_by_keyword():
    """The keyword form: cycle i lasts T * t_mul**i, height scaled by m_mul**i above the floor."""
    s = schedules.sgdr_schedule(
        init_value=1.0, first_decay_steps=4, t_mul=2.0, m_mul=0.5, alpha=0.1
    )
    t = np.arange(0, 40, dtype=np.float64)
    cycle = np.floor(np.log2(t / 4 + 1))
    start = 4 * (2**cycle - 1)
    frac = (t - start) / (4 * 2**cycle)
    want = 0.1 + 0.9 * 0.5**cycle * 0.5 * (1 + np.cos(np.pi * frac))
    close(values(s, t), want, rtol=1e-5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: schedules.sgdr_schedule(1.0), "cosine_kwargs"),
        (lambda: schedules.sgdr_schedule(), "cosine_kwargs"),
        (lambda: schedules.sgdr_schedule(init_value=1.0), "first_decay_steps"),
        (lambda: schedules.sgdr_schedule(SGDR_CYCLES[0], init_value=1.0), "init_value"),
        (lambda: schedules.sgdr_schedule(SGDR_CYCLES[0], t_mul=3.0), "t_mul"),
        (lambda: schedules.sgdr_schedule([{"peak_value": 1.0}]), "decay_steps"),
    ],
)
def test_sgdr_wrong_calls(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def test_sgdr_needs_a_cycle():
    with pytest.raises(ValueError, match="at least one"):
        schedules.sgdr_schedule([])


def test_sgdr_positional_keras_form_is_gone():
    with pytest.raises(TypeError):
        schedules.sgdr_schedule(1.0, 10)  # type: ignore[misc]


# ----------------------------------------------------------------------------- optax cases


@pytest.mark.parametrize("end_value", [-3.0, 0.0, 0.5])
def test_warmup_cosine_zero_peak_stays_zero(end_value):
    """As in optax, a zero peak makes the whole decay phase 0 (never end_value, never negative)."""
    kw = dict(
        init_value=0.2,
        peak_value=0.0,
        end_value=end_value,
        warmup_steps=50,
        decay_steps=100,
        exponent=2.0,
    )
    s = jax.jit(schedules.warmup_cosine_decay_schedule(**kw))
    t = np.array([0, 10, 50, 75, 100, 1000])
    close(values(s, t), [0.2, 0.16, 0.0, 0.0, 0.0, 0.0])
    close(values(s, t), optax_values(optax.warmup_cosine_decay_schedule(**kw), t))


def test_warmup_cosine_zero_peak_traced():
    def at(peak):
        return schedules.warmup_cosine_decay_schedule(0.2, peak, 5, 20, end_value=-1.0)(10)

    assert float(jax.jit(at)(jnp.float32(0.0))) == 0.0
    close(jax.jit(at)(jnp.float32(1.0)), ref_warmup_cosine(np.float64(10), 0.2, 1.0, 5, 20, -1.0))


@pytest.mark.parametrize(
    "kw",
    [
        dict(init_value=1.0, peak_value=2.0, warmup_steps=10, decay_steps=100, end_value=0.1),
        dict(init_value=0.0, peak_value=1.0, warmup_steps=0, decay_steps=60, exponent=3.0),
        dict(init_value=0.5, peak_value=-1.0, warmup_steps=20, decay_steps=50, end_value=-0.2),
    ],
)
def test_warmup_cosine_matches_optax(kw):
    want = ref_warmup_cosine(
        STEPS.astype(np.float64),
        kw["init_value"],
        kw["peak_value"],
        kw["warmup_steps"],
        kw["decay_steps"],
        kw.get("end_value", 0.0),
        kw.get("exponent", 1.0),
    )
    got = values(schedules.warmup_cosine_decay_schedule(**kw))
    close(got, want, rtol=1e-5, atol=1e-6)
    close(got, optax_values(optax.warmup_cosine_decay_schedule(**kw)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("end_value", [0.1, 1.0, 3.0])
@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay_rate_one_caps_at_end_value(end_value, staircase):
    """With decay_rate=1, end_value is an upper bound (optax: min(value, end_value))."""
    kw = dict(
        init_value=1.0,
        transition_steps=2,
        decay_rate=1.0,
        transition_begin=3,
        staircase=staircase,
        end_value=end_value,
    )
    s = jax.jit(schedules.exponential_decay(**kw))
    t = np.arange(0, 14)
    close(values(s, t), np.full(t.shape, min(1.0, end_value)))
    close(values(s, t), optax_values(optax.exponential_decay(**kw), t))


@pytest.mark.parametrize("rate, end", [(0.5, 0.1), (2.0, 3.0), (0.9, None), (1.0, None)])
@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay_matches_optax(rate, end, staircase):
    kw = dict(
        init_value=1.0,
        transition_steps=3,
        decay_rate=rate,
        transition_begin=4,
        staircase=staircase,
        end_value=end,
    )
    t = np.arange(0, 40)
    want = ref_exponential(t.astype(np.float64), 1.0, 3, rate, 4, staircase, end)
    close(values(schedules.exponential_decay(**kw), t), want, rtol=1e-5)
    close(
        values(schedules.exponential_decay(**kw), t),
        optax_values(optax.exponential_decay(**kw), t),
        rtol=1e-5,
    )


def test_cosine_decay_giant_integer_steps():
    """decay_steps beyond int32 (optax's test): no OverflowError, the cosine formula's value."""
    s = jax.jit(schedules.cosine_decay_schedule(init_value=1000.0, decay_steps=int(1e10)))
    want = 1000.0 * 0.5 * (1 + math.cos(math.pi * 0.1))
    close(s(int(1e9)), want, rtol=1e-6)
    close(schedules.cosine_decay_schedule(1000.0, int(1e10))(int(1e9)), want, rtol=1e-6)


BIG = 10**10
GIANT_STEP_SCHEDULES = {
    "polynomial": lambda: schedules.polynomial_schedule(1.0, 0.0, 2.0, BIG, BIG),
    "linear": lambda: schedules.linear_schedule(1.0, 0.0, BIG),
    "piecewise_constant": lambda: schedules.piecewise_constant_schedule(1.0, {BIG: 0.5}),
    "piecewise_interpolate": lambda: schedules.piecewise_interpolate_schedule(
        "cosine", 1.0, {BIG: 0.5, 2 * BIG: 0.5}
    ),
    "exponential": lambda: schedules.exponential_decay(1.0, BIG, 0.5, BIG),
    "exponential_staircase": lambda: schedules.exponential_decay(1.0, BIG, 0.5, staircase=True),
    "inverse_time": lambda: schedules.inverse_time_decay(1.0, BIG, staircase=True),
    "inverse_sqrt": lambda: schedules.inverse_sqrt_schedule(0.0, 1.0, BIG),
    "cosine": lambda: schedules.cosine_decay_schedule(1.0, BIG),
    "sgdr": lambda: schedules.sgdr_schedule(
        [dict(init_value=0.0, peak_value=1.0, warmup_steps=BIG, decay_steps=2 * BIG)] * 2
    ),
    "sgdr_geometric": lambda: schedules.sgdr_schedule(init_value=1.0, first_decay_steps=BIG),
    "sgdr_geometric_t1": lambda: schedules.sgdr_schedule(
        init_value=1.0, first_decay_steps=BIG, t_mul=1.0
    ),
    "warmup_constant": lambda: schedules.warmup_constant_schedule(0.0, 1.0, BIG),
    "warmup_cosine": lambda: schedules.warmup_cosine_decay_schedule(0.0, 1.0, BIG, 2 * BIG),
    "warmup_exponential": lambda: schedules.warmup_exponential_decay_schedule(
        0.0, 1.0, BIG, BIG, 0.5
    ),
    "warmup_stable_decay": lambda: schedules.warmup_stable_decay_schedule(0.0, 1.0, BIG, 10 * BIG),
    "join": lambda: schedules.join_schedules(
        [schedules.constant_schedule(1.0), schedules.constant_schedule(2.0)], [BIG]
    ),
    "cyclical": lambda: schedules.cyclical_schedule(0.0, 1.0, BIG),
    "one_cycle": lambda: schedules.one_cycle_schedule(BIG, 1.0),
    "linear_onecycle": lambda: schedules.linear_onecycle_schedule(BIG, 1.0),
    "cosine_onecycle": lambda: schedules.cosine_onecycle_schedule(BIG, 1.0),
}


@pytest.mark.parametrize("name", sorted(GIANT_STEP_SCHEDULES))
def test_giant_step_arguments(name):
    """Step-count arguments beyond int32 work, eagerly and under jit, at any step."""
    s = GIANT_STEP_SCHEDULES[name]()
    for count in (0, 7, 2**31 - 1, BIG // 2, 3 * BIG, 2**62):
        assert np.all(np.isfinite(np.asarray(s(count)))), (name, count)
        if count < 2**31:  # jit itself cannot take a larger Python int under x32
            assert np.all(np.isfinite(np.asarray(jax.jit(s)(count)))), (name, count)
    assert np.all(np.isfinite(np.asarray(s(jnp.arange(5)))))
