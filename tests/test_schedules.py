"""Schedules against NumPy references written from the published formulas, torch and keras."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
from gradxform import schedules as gx_schedules
from tests._require import require, require_keras

os.environ.setdefault("KERAS_BACKEND", "jax")

STEPS = 300
INT32_MAX = 2**31 - 1


# --------------------------------------------------------------- NumPy references
# Each is written from the formula in the paper or the library documentation, in
# float64, one step at a time.


def ref_polynomial(t, init, end, power, steps, begin=0):
    s = min(max(t - begin, 0), steps)
    return (init - end) * (1 - s / steps) ** power + end


def ref_piecewise_constant(t, init, boundaries_and_scales):
    value = init
    for b, s in sorted(boundaries_and_scales.items()):
        if t >= b:
            value *= s
    return value


def ref_piecewise_interpolate(t, kind, init, boundaries_and_scales):
    xs, ys = [0], [init]
    for b, s in sorted(boundaries_and_scales.items()):
        xs.append(b)
        ys.append(ys[-1] * s)
    if t >= xs[-1]:
        return ys[-1]
    k = max(i for i in range(len(xs)) if xs[i] <= t)
    frac = (t - xs[k]) / (xs[k + 1] - xs[k])
    if kind == "cosine":
        frac = (1 - math.cos(math.pi * frac)) / 2
    return ys[k] + (ys[k + 1] - ys[k]) * frac


def ref_exponential(t, init, steps, rate, begin=0, staircase=False, end=None):
    p = max(t - begin, 0) / steps
    if staircase:
        p = math.floor(p)
    value = init * math.exp(min(p * math.log(rate), 700.0))
    if end is not None:
        value = max(value, end) if rate < 1 else min(value, end)
    return value


def ref_inverse_time(t, init, steps, rate, power=1.0, staircase=False):
    p = math.floor(t / steps) if staircase else t / steps
    return init / (1 + rate * p) ** power


def ref_noam(t, d_model, warmup):
    """Vaswani et al. (2017), eq. (3): d**-0.5 * min(step**-0.5, step * warmup**-1.5)."""
    if t == 0:
        return 0.0
    return d_model**-0.5 * min(t**-0.5, t * warmup**-1.5)


def ref_cosine(t, init, steps, alpha=0.0, exponent=1.0):
    s = min(t, steps)
    return init * (alpha + (1 - alpha) * (0.5 * (1 + math.cos(math.pi * s / steps))) ** exponent)


def ref_sgdr(t, init, first, t_mul, m_mul, alpha):
    """Walk the cycles one by one (no closed form): Loshchilov & Hutter (2017), eq. (5).

    The i-th peak is ``m_mul**i`` times higher above the floor ``alpha * init`` (keras'
    documented ``m_mul`` and ``alpha``).
    """
    if t_mul == 1:
        i, start, length = t // first, t - t % first, first
    else:
        start, length, i = 0, first, 0
    while t >= start + length:
        start += length
        length *= t_mul
        i += 1
    cos = 0.5 * (1 + math.cos(math.pi * (t - start) / length))
    return init * (alpha + (1 - alpha) * m_mul**i * cos)


def ref_warmup_cosine(t, init, peak, warmup, decay_steps, end, exponent=1.0):
    if t < warmup:
        return init + (peak - init) * t / warmup
    s = min(t - warmup, decay_steps - warmup)
    cos = (0.5 * (1 + math.cos(math.pi * s / (decay_steps - warmup)))) ** exponent
    return end + (peak - end) * cos


def ref_warmup_exponential(t, init, peak, warmup, steps, rate, begin=0, staircase=False, end=None):
    if t < warmup:
        return init + (peak - init) * t / warmup
    return ref_exponential(t - warmup, peak, steps, rate, begin, staircase, end)


def ref_wsd(t, init, peak, warmup, total, fraction, end, shape):
    decay = round(fraction * total)
    start = total - decay
    if t < warmup:
        return init + (peak - init) * t / warmup
    if t < start:
        return peak
    f = min((t - start) / decay, 1.0)
    keep = {
        "linear": 1 - f,
        "cosine": 0.5 * (1 + math.cos(math.pi * f)),
        "1-sqrt": 1 - math.sqrt(f),
    }[shape]
    return end + (peak - end) * keep


def ref_clr(t, base, top, step_size, mode, gamma=1.0):
    """Smith (2017), section 3.1: cycle = floor(1 + t / 2s), x = |t / s - 2 cycle + 1|."""
    cycle = math.floor(1 + t / (2 * step_size))
    x = abs(t / step_size - 2 * cycle + 1)
    amplitude = {"triangular": 1.0, "triangular2": 2.0 ** -(cycle - 1), "exp_range": gamma**t}[mode]
    return base + (top - base) * max(0.0, 1 - x) * amplitude


def ref_one_cycle(t, total, top, pct, strategy, div, final_div, three_phase, momentum=None):
    """Smith & Topin (2019) as torch documents it: phase ends at pct*N - 1, (2 pct N - 2,) N - 1."""
    start = top / div
    low = start / final_div
    if momentum is None:
        values = [start, top, start, low] if three_phase else [start, top, low]
    else:
        base_m, max_m = momentum
        values = [max_m, base_m, max_m, max_m] if three_phase else [max_m, base_m, max_m]
    ends = (
        [0, pct * total - 1, 2 * pct * total - 2, total - 1]
        if three_phase
        else [0, pct * total - 1, total - 1]
    )
    t = min(t, total - 1)
    k = max(i for i in range(len(ends) - 1) if ends[i] <= t)
    frac = (t - ends[k]) / (ends[k + 1] - ends[k])
    a, b = values[k], values[k + 1]
    if strategy == "cos":
        return b + (a - b) * (1 + math.cos(math.pi * frac)) / 2
    return a + (b - a) * frac


# ---------------------------------------------------------------------- the catalog

Case = tuple[Callable[[], Any], Callable[[int], float], float]

CASES: dict[str, Case] = {
    "constant": (lambda: constant_schedule(0.3), lambda t: 0.3, 0.3),
    "linear": (
        lambda: linear_schedule(0.5, 0.01, 120, transition_begin=30),
        lambda t: ref_polynomial(t, 0.5, 0.01, 1, 120, 30),
        0.5,
    ),
    "linear-up": (
        lambda: linear_schedule(0.0, 2.0, 100),
        lambda t: ref_polynomial(t, 0.0, 2.0, 1, 100),
        0.0,
    ),
    "polynomial": (
        lambda: polynomial_schedule(1.0, 0.1, 2.5, 200, transition_begin=20),
        lambda t: ref_polynomial(t, 1.0, 0.1, 2.5, 200, 20),
        1.0,
    ),
    "piecewise-constant": (
        lambda: piecewise_constant_schedule(0.8, {150: 0.1, 50: 0.5, 250: 2.0}),
        lambda t: ref_piecewise_constant(t, 0.8, {150: 0.1, 50: 0.5, 250: 2.0}),
        0.8,
    ),
    "piecewise-linear": (
        lambda: piecewise_interpolate_schedule("linear", 1.0, {40: 0.1, 200: 3.0}),
        lambda t: ref_piecewise_interpolate(t, "linear", 1.0, {40: 0.1, 200: 3.0}),
        1.0,
    ),
    "piecewise-cosine": (
        lambda: piecewise_interpolate_schedule("cosine", 2.0, {10: 0.5, 120: 0.01, 121: 5.0}),
        lambda t: ref_piecewise_interpolate(t, "cosine", 2.0, {10: 0.5, 120: 0.01, 121: 5.0}),
        2.0,
    ),
    "exponential": (
        lambda: exponential_decay(0.1, 25, 0.7, transition_begin=10),
        lambda t: ref_exponential(t, 0.1, 25, 0.7, 10),
        0.1,
    ),
    "exponential-staircase-end": (
        lambda: exponential_decay(0.1, 30, 0.5, staircase=True, end_value=0.004),
        lambda t: ref_exponential(t, 0.1, 30, 0.5, staircase=True, end=0.004),
        0.1,
    ),
    "exponential-growth": (
        lambda: exponential_decay(0.01, 40, 3.0, end_value=2.0),
        lambda t: ref_exponential(t, 0.01, 40, 3.0, end=2.0),
        0.01,
    ),
    "inverse-time": (
        lambda: inverse_time_decay(0.2, 10, 0.5),
        lambda t: ref_inverse_time(t, 0.2, 10, 0.5),
        0.2,
    ),
    "power-staircase": (
        lambda: inverse_time_decay(1.0, 7, 1.0, 0.75, staircase=True),
        lambda t: ref_inverse_time(t, 1.0, 7, 1.0, 0.75, True),
        1.0,
    ),
    "noam": (
        lambda: inverse_sqrt_schedule(0.0, 512**-0.5 * 40**-0.5, 40),
        lambda t: ref_noam(t, 512, 40),
        0.0,
    ),
    "cosine": (
        lambda: cosine_decay_schedule(0.4, 250, alpha=0.05),
        lambda t: ref_cosine(t, 0.4, 250, 0.05),
        0.4,
    ),
    "cosine-exponent": (
        lambda: cosine_decay_schedule(1.0, 180, exponent=2.0),
        lambda t: ref_cosine(t, 1.0, 180, 0.0, 2.0),
        1.0,
    ),
    "sgdr-t1": (
        lambda: sgdr_schedule(init_value=0.5, first_decay_steps=37, t_mul=1.0, alpha=0.1),
        lambda t: ref_sgdr(t, 0.5, 37, 1, 1.0, 0.1),
        0.5,
    ),
    "sgdr-t2": (
        lambda: sgdr_schedule(
            init_value=1.0, first_decay_steps=10, t_mul=2.0, m_mul=0.7, alpha=0.2
        ),
        lambda t: ref_sgdr(t, 1.0, 10, 2, 0.7, 0.2),
        1.0,
    ),
    "sgdr-t1.5": (
        lambda: sgdr_schedule(init_value=1.0, first_decay_steps=16, t_mul=1.5, m_mul=0.9),
        lambda t: ref_sgdr(t, 1.0, 16, 1.5, 0.9, 0.0),
        1.0,
    ),
    "warmup-constant": (
        lambda: warmup_constant_schedule(0.01, 0.3, 45),
        lambda t: ref_polynomial(t, 0.01, 0.3, 1, 45),
        0.01,
    ),
    "warmup-cosine": (
        lambda: warmup_cosine_decay_schedule(0.0, 1.0, 30, 260, 0.02),
        lambda t: ref_warmup_cosine(t, 0.0, 1.0, 30, 260, 0.02),
        0.0,
    ),
    "warmup-cosine-exponent": (
        lambda: warmup_cosine_decay_schedule(0.1, 0.5, 10, 100, 0.0, exponent=0.5),
        lambda t: ref_warmup_cosine(t, 0.1, 0.5, 10, 100, 0.0, 0.5),
        0.1,
    ),
    "warmup-exponential": (
        lambda: warmup_exponential_decay_schedule(
            0.0, 0.2, 20, 15, 0.8, transition_begin=5, staircase=True, end_value=0.01
        ),
        lambda t: ref_warmup_exponential(t, 0.0, 0.2, 20, 15, 0.8, 5, True, 0.01),
        0.0,
    ),
    "wsd-linear": (
        lambda: warmup_stable_decay_schedule(0.0, 1.0, 20, 250, 0.2),
        lambda t: ref_wsd(t, 0.0, 1.0, 20, 250, 0.2, 0.0, "linear"),
        0.0,
    ),
    "wsd-cosine": (
        lambda: warmup_stable_decay_schedule(0.1, 1.0, 15, 240, 0.25, 0.05, decay_shape="cosine"),
        lambda t: ref_wsd(t, 0.1, 1.0, 15, 240, 0.25, 0.05, "cosine"),
        0.1,
    ),
    "wsd-1-sqrt": (
        lambda: warmup_stable_decay_schedule(0.0, 0.6, 10, 200, 0.3, 0.0, decay_shape="1-sqrt"),
        lambda t: ref_wsd(t, 0.0, 0.6, 10, 200, 0.3, 0.0, "1-sqrt"),
        0.0,
    ),
    "clr-triangular": (
        lambda: cyclical_schedule(0.001, 0.006, 40),
        lambda t: ref_clr(t, 0.001, 0.006, 40, "triangular"),
        0.001,
    ),
    "clr-triangular2": (
        lambda: cyclical_schedule(0.1, 1.0, 25, "triangular2"),
        lambda t: ref_clr(t, 0.1, 1.0, 25, "triangular2"),
        0.1,
    ),
    "clr-exp-range": (
        lambda: cyclical_schedule(0.1, 1.0, 30, "exp_range", gamma=0.995),
        lambda t: ref_clr(t, 0.1, 1.0, 30, "exp_range", 0.995),
        0.1,
    ),
    "one-cycle-cos": (
        lambda: one_cycle_schedule(STEPS, 0.5),
        lambda t: ref_one_cycle(t, STEPS, 0.5, 0.3, "cos", 25.0, 1e4, False),
        0.02,
    ),
    "one-cycle-linear-3": (
        lambda: one_cycle_schedule(277, 2.0, 0.25, "linear", 10.0, 100.0, three_phase=True),
        lambda t: ref_one_cycle(t, 277, 2.0, 0.25, "linear", 10.0, 100.0, True),
        0.2,
    ),
    "one-cycle-momentum": (
        lambda: one_cycle_momentum_schedule(250, 0.8, 0.95, 0.4),
        lambda t: ref_one_cycle(t, 250, 1.0, 0.4, "cos", 1.0, 1.0, False, (0.8, 0.95)),
        0.95,
    ),
    "join": (
        lambda: join_schedules(
            [
                linear_schedule(0.0, 1.0, 20),
                cosine_decay_schedule(1.0, 100),
                constant_schedule(0.5),
            ],
            [20, 150],
        ),
        lambda t: (
            ref_polynomial(t, 0.0, 1.0, 1, 20)
            if t < 20
            else ref_cosine(t - 20, 1.0, 100)
            if t < 150
            else 0.5
        ),
        0.0,
    ),
}
IDS = list(CASES)


def close(actual, expected, rtol=2e-5):
    expected = np.asarray(expected, np.float64)
    scale = max(float(np.max(np.abs(expected))), 1e-30)
    np.testing.assert_allclose(
        np.asarray(actual, np.float64), expected, rtol=rtol, atol=rtol * scale
    )


@pytest.mark.parametrize("name", IDS)
def test_matches_numpy_formula(name):
    make, ref, _ = CASES[name]
    s = make()
    steps = np.arange(STEPS + 1)
    expected = [ref(int(t)) for t in steps]
    vmapped = jax.jit(jax.vmap(s))(jnp.asarray(steps, jnp.int32))
    chex.assert_shape(vmapped, (STEPS + 1,))
    assert vmapped.dtype == jnp.float32
    close(vmapped, expected)
    close(s(jnp.asarray(steps)), expected)  # elementwise on an array of steps
    close([s(int(t)) for t in steps[::37]], expected[::37])  # Python ints


@pytest.mark.parametrize("name", IDS)
def test_first_value_is_the_initial_value(name):
    make, _, init = CASES[name]
    s = make()
    for step in (0, jnp.int32(0), np.int64(0), jnp.zeros([], jnp.int32), 0.0):
        assert s(step) == np.float32(init), (step, s(step))
    assert jax.jit(s)(jnp.int32(0)) == np.float32(init)


@pytest.mark.parametrize("name", IDS)
def test_finite_for_huge_steps(name):
    make, ref, _ = CASES[name]
    s = make()
    big = jnp.array([INT32_MAX - 1, INT32_MAX], jnp.int32)
    values = jax.jit(jax.vmap(s))(big)
    chex.assert_tree_all_finite(values)
    # int32 steps are exact in the periodic schedules; float32 rounds 2**31 - 1 up.
    close(values, [ref(INT32_MAX - 1), ref(INT32_MAX)], rtol=1e-4)
    close(s(2**40), ref(2**40), rtol=1e-4)
    for huge in (2**62, 10**30, 10**400, np.uint64(2**64 - 1)):
        value = s(huge)
        chex.assert_tree_all_finite(value)
        assert value == s(2**62)


def test_x64_schedules_compute_in_float64():
    with jax.enable_x64(True):
        for name in IDS:
            make, ref, _ = CASES[name]
            values = make()(jnp.arange(STEPS + 1))
            assert values.dtype == jnp.float64, name
            close(values, [ref(t) for t in range(STEPS + 1)], rtol=1e-10)


def test_value_arguments_may_be_traced():
    sweep = jax.vmap(lambda v: cosine_decay_schedule(v, 100, alpha=0.5)(50))
    chex.assert_trees_all_close(sweep(jnp.array([1.0, 2.0])), jnp.array([0.75, 1.5]))


def test_join_shifts_steps_and_keeps_them_integer():
    seen = []

    def record(t):
        seen.append(jnp.asarray(t).dtype)
        return jnp.asarray(t).astype(jnp.float32)

    s = join_schedules([constant_schedule(-1.0), record], [3])
    chex.assert_trees_all_equal(s(jnp.arange(6)), jnp.array([-1.0, -1, -1, 0, 1, 2]))
    assert seen[0] == jnp.int32
    # Pieces of different dtypes are promoted explicitly (strict promotion would refuse).
    mixed = join_schedules([lambda t: jnp.float16(1.0), constant_schedule(2.0)], [1])
    assert mixed(jnp.arange(3)).dtype == jnp.float32


# ------------------------------------------------------------------------- torch

STEPS_TORCH = 250


def torch_values(make_scheduler, steps=STEPS_TORCH, lr=1.0, betas=False):
    """Learning rate and momentum (or beta1) at each step, as a training loop sees them."""
    torch = require("torch")
    param = torch.zeros(1, requires_grad=True)
    if betas:
        opt = torch.optim.Adam([param], lr=lr)
    else:
        opt = torch.optim.SGD([param], lr=lr, momentum=0.9)
    sched = make_scheduler(torch.optim.lr_scheduler, opt)
    lrs, moms = [], []
    for _ in range(steps):
        group = opt.param_groups[0]
        lrs.append(float(group["lr"]))
        moms.append(float(group["betas"][0] if betas else group["momentum"]))
        opt.step()
        sched.step()
    return np.array(lrs), np.array(moms)


TORCH_CASES: dict[str, tuple[Callable[[], Any], Callable[[Any, Any], Any], float]] = {
    "StepLR": (
        lambda: exponential_decay(1.0, 30, 0.5, staircase=True),
        lambda m, o: m.StepLR(o, step_size=30, gamma=0.5),
        1.0,
    ),
    "ExponentialLR": (
        lambda: exponential_decay(0.5, 1, 0.98),
        lambda m, o: m.ExponentialLR(o, gamma=0.98),
        0.5,
    ),
    "MultiStepLR": (
        lambda: piecewise_constant_schedule(1.0, {40: 0.3, 90: 0.3, 200: 0.3}),
        lambda m, o: m.MultiStepLR(o, milestones=[40, 90, 200], gamma=0.3),
        1.0,
    ),
    "LinearLR": (
        lambda: linear_schedule(0.25, 1.0, 80),
        lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=80),
        1.0,
    ),
    "LinearLR-warmup": (
        lambda: warmup_constant_schedule(0.02, 0.2, 60),
        lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=60),
        0.2,
    ),
    "PolynomialLR": (
        lambda: polynomial_schedule(1.0, 0.0, 2.0, 180),
        lambda m, o: m.PolynomialLR(o, total_iters=180, power=2.0),
        1.0,
    ),
    "CosineAnnealingLR": (
        lambda: cosine_decay_schedule(1.0, STEPS_TORCH - 1, alpha=0.1),
        lambda m, o: m.CosineAnnealingLR(o, T_max=STEPS_TORCH - 1, eta_min=0.1),
        1.0,
    ),
    "WarmRestarts-T1": (
        lambda: sgdr_schedule(init_value=1.0, first_decay_steps=40, t_mul=1.0, alpha=0.05),
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=40, eta_min=0.05),
        1.0,
    ),
    "WarmRestarts-T2": (
        lambda: sgdr_schedule(init_value=0.3, first_decay_steps=15, t_mul=2.0),
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=15, T_mult=2),
        0.3,
    ),
    "CyclicLR-triangular": (
        lambda: cyclical_schedule(0.1, 1.0, 20),
        lambda m, o: m.CyclicLR(o, 0.1, 1.0, step_size_up=20),
        0.1,
    ),
    "CyclicLR-triangular2-asym": (
        lambda: cyclical_schedule(0.1, 1.0, 15, "triangular2", step_size_down=35),
        lambda m, o: m.CyclicLR(o, 0.1, 1.0, 15, 35, mode="triangular2"),
        0.1,
    ),
    "CyclicLR-exp-range": (
        lambda: cyclical_schedule(0.01, 0.1, 25, "exp_range", 0.99),
        lambda m, o: m.CyclicLR(o, 0.01, 0.1, 25, mode="exp_range", gamma=0.99),
        0.01,
    ),
    "OneCycleLR-cos": (
        lambda: one_cycle_schedule(STEPS_TORCH, 0.8),
        lambda m, o: m.OneCycleLR(o, 0.8, total_steps=STEPS_TORCH),
        1.0,
    ),
    "OneCycleLR-linear-3": (
        lambda: one_cycle_schedule(STEPS_TORCH, 1.0, 0.35, "linear", 5.0, 50.0, three_phase=True),
        lambda m, o: m.OneCycleLR(
            o,
            1.0,
            total_steps=STEPS_TORCH,
            pct_start=0.35,
            anneal_strategy="linear",
            div_factor=5.0,
            final_div_factor=50.0,
            three_phase=True,
        ),
        1.0,
    ),
}


@pytest.mark.parametrize("name", list(TORCH_CASES))
def test_matches_torch_lr_scheduler(name):
    make, make_torch, lr = TORCH_CASES[name]
    expected, _ = torch_values(make_torch, lr=lr)
    ours = jax.vmap(make())(jnp.arange(STEPS_TORCH))
    close(ours, expected, rtol=1e-5)


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("betas", [False, True], ids=["sgd-momentum", "adam-beta1"])
def test_one_cycle_momentum_matches_torch(betas, three_phase):
    def make_torch(m, o):
        return m.OneCycleLR(
            o,
            1.0,
            total_steps=STEPS_TORCH,
            pct_start=0.2,
            base_momentum=0.8,
            max_momentum=0.92,
            three_phase=three_phase,
        )

    _, expected = torch_values(make_torch, betas=betas)
    s = one_cycle_momentum_schedule(STEPS_TORCH, 0.8, 0.92, 0.2, three_phase=three_phase)
    close(jax.vmap(s)(jnp.arange(STEPS_TORCH)), expected, rtol=1e-6)


def test_cyclical_momentum_is_the_swapped_schedule():
    def make_torch(m, o):
        return m.CyclicLR(
            o, 0.1, 1.0, 20, 30, mode="triangular2", base_momentum=0.8, max_momentum=0.9
        )

    _, expected = torch_values(make_torch)
    s = cyclical_schedule(0.9, 0.8, 20, "triangular2", step_size_down=30)
    close(jax.vmap(s)(jnp.arange(STEPS_TORCH)), expected, rtol=1e-6)


def test_one_cycle_holds_the_final_value_where_torch_stops():
    """Intended difference: torch extrapolates at step total_steps and raises after it."""
    s = one_cycle_schedule(100, 1.0)
    final = np.float32(1.0 / 25.0 / 1e4)
    chex.assert_trees_all_close(s(jnp.array([99, 100, 101, 10**6])), jnp.full(4, final))


def test_cosine_annealing_holds_alpha_where_torch_climbs_back():
    """Intended difference: torch's CosineAnnealingLR is periodic past T_max."""
    lrs, _ = torch_values(lambda m, o: m.CosineAnnealingLR(o, T_max=100), steps=201)
    s = cosine_decay_schedule(1.0, 100)
    close(jax.vmap(s)(jnp.arange(101)), lrs[:101], rtol=1e-5)
    assert lrs[200] > 0.99 and float(s(200)) == 0.0


# ------------------------------------------------------------------------- keras


def keras_values(schedule, steps=STEPS_TORCH):
    keras = require_keras()  # on the jax backend, or fail in CI
    with jax.numpy_dtype_promotion("standard"):  # keras relies on implicit promotion
        return np.asarray(
            jax.jit(jax.vmap(schedule(keras.optimizers.schedules)))(jnp.arange(steps))
        )


KERAS_CASES: dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]] = {
    "ExponentialDecay": (
        lambda: exponential_decay(0.1, 20, 0.6),
        lambda k: k.ExponentialDecay(0.1, 20, 0.6),
    ),
    "ExponentialDecay-staircase": (
        lambda: exponential_decay(0.1, 20, 0.6, staircase=True),
        lambda k: k.ExponentialDecay(0.1, 20, 0.6, staircase=True),
    ),
    "PolynomialDecay": (
        lambda: polynomial_schedule(1.0, 0.05, 3.0, 170),
        lambda k: k.PolynomialDecay(1.0, 170, 0.05, power=3.0),
    ),
    "InverseTimeDecay": (
        lambda: inverse_time_decay(0.5, 10, 0.3),
        lambda k: k.InverseTimeDecay(0.5, 10, 0.3),
    ),
    "InverseTimeDecay-staircase": (
        lambda: inverse_time_decay(0.5, 10, 0.3, staircase=True),
        lambda k: k.InverseTimeDecay(0.5, 10, 0.3, staircase=True),
    ),
    "CosineDecay": (
        lambda: cosine_decay_schedule(1.0, 200, alpha=0.1),
        lambda k: k.CosineDecay(1.0, 200, alpha=0.1),
    ),
    "CosineDecay-warmup": (
        lambda: warmup_cosine_decay_schedule(0.0, 2.0, 25, 225, end_value=0.2),
        lambda k: k.CosineDecay(0.0, 200, alpha=0.1, warmup_target=2.0, warmup_steps=25),
    ),
    "CosineDecayRestarts": (
        lambda: sgdr_schedule(
            init_value=1.0, first_decay_steps=10, t_mul=2.0, m_mul=0.8, alpha=0.1
        ),
        lambda k: k.CosineDecayRestarts(1.0, 10, 2.0, 0.8, 0.1),
    ),
    "CosineDecayRestarts-1.5": (
        lambda: sgdr_schedule(init_value=1.0, first_decay_steps=12, t_mul=1.5, m_mul=0.9),
        lambda k: k.CosineDecayRestarts(1.0, 12, 1.5, 0.9),
    ),
    "CosineDecayRestarts-t1": (
        lambda: sgdr_schedule(init_value=1.0, first_decay_steps=30, t_mul=1.0, m_mul=0.5),
        lambda k: k.CosineDecayRestarts(1.0, 30, 1.0, 0.5),
    ),
    # Intended difference: keras switches after the boundary (t > b), gradxform at it.
    "PiecewiseConstantDecay": (
        lambda: piecewise_constant_schedule(1.0, {50: 0.5, 120: 0.2}),
        lambda k: k.PiecewiseConstantDecay([49, 119], [1.0, 0.5, 0.1]),
    ),
}


@pytest.mark.parametrize("name", list(KERAS_CASES))
def test_matches_keras_schedules(name):
    make, make_keras = KERAS_CASES[name]
    expected = keras_values(make_keras)
    close(jax.vmap(make())(jnp.arange(STEPS_TORCH)), expected, rtol=2e-5)


# -------------------------------------------------------------------- validation

BAD: list[tuple[Callable[..., Any], dict[str, Any], str, type[Exception]]] = [
    (constant_schedule, dict(value=float("nan")), "value", ValueError),
    (constant_schedule, dict(value=lambda t: t), "value", TypeError),
    (
        polynomial_schedule,
        dict(init_value=1.0, end_value=0.0, power=0.0, transition_steps=5),
        "power",
        ValueError,
    ),
    (
        polynomial_schedule,
        dict(init_value=1.0, end_value=0.0, power=1, transition_steps=0),
        "transition_steps",
        ValueError,
    ),
    (
        polynomial_schedule,
        dict(init_value=1.0, end_value=0.0, power=1, transition_steps=2.5),
        "transition_steps",
        TypeError,
    ),
    (
        linear_schedule,
        dict(init_value=1.0, end_value=0.0, transition_steps=5, transition_begin=-1),
        "transition_begin",
        ValueError,
    ),
    (
        linear_schedule,
        dict(init_value=math.inf, end_value=0.0, transition_steps=5),
        "init_value",
        ValueError,
    ),
    (
        piecewise_constant_schedule,
        dict(init_value=1.0, boundaries_and_scales={10: -0.5}),
        "boundaries_and_scales",
        ValueError,
    ),
    (
        piecewise_constant_schedule,
        dict(init_value=1.0, boundaries_and_scales={0: 0.5}),
        "boundaries_and_scales",
        ValueError,
    ),
    (
        piecewise_constant_schedule,
        dict(init_value=1.0, boundaries_and_scales=[(1, 0.5)]),
        "boundaries_and_scales",
        TypeError,
    ),
    (
        piecewise_interpolate_schedule,
        dict(interpolate_type="cubic", init_value=1.0),
        "interpolate_type",
        ValueError,
    ),
    (
        exponential_decay,
        dict(init_value=1.0, transition_steps=0, decay_rate=0.5),
        "transition_steps",
        ValueError,
    ),
    (
        exponential_decay,
        dict(init_value=1.0, transition_steps=10, decay_rate=0.0),
        "decay_rate",
        ValueError,
    ),
    (
        exponential_decay,
        dict(init_value=1.0, transition_steps=10, decay_rate=1.5),
        "decay_rate",
        ValueError,
    ),
    (
        exponential_decay,
        dict(init_value=1.0, transition_steps=10, decay_rate=0.5, end_value=2.0),
        "end_value",
        ValueError,
    ),
    (
        exponential_decay,
        dict(init_value=1.0, transition_steps=10, decay_rate=0.5, transition_begin=-3),
        "transition_begin",
        ValueError,
    ),
    (
        inverse_time_decay,
        dict(init_value=1.0, decay_steps=10, decay_rate=-1.0),
        "decay_rate",
        ValueError,
    ),
    (inverse_time_decay, dict(init_value=1.0, decay_steps=0), "decay_steps", ValueError),
    (
        inverse_sqrt_schedule,
        dict(init_value=0.0, peak_value=1.0, warmup_steps=0),
        "warmup_steps",
        ValueError,
    ),
    (cosine_decay_schedule, dict(init_value=1.0, decay_steps=0), "decay_steps", ValueError),
    (cosine_decay_schedule, dict(init_value=1.0, decay_steps=10, alpha=1.5), "alpha", ValueError),
    (
        cosine_decay_schedule,
        dict(init_value=1.0, decay_steps=10, exponent=-1.0),
        "exponent",
        ValueError,
    ),
    (sgdr_schedule, dict(init_value=1.0, first_decay_steps=10, t_mul=0.5), "t_mul", ValueError),
    (sgdr_schedule, dict(init_value=1.0, first_decay_steps=10, m_mul=2.0), "m_mul", ValueError),
    (sgdr_schedule, dict(init_value=1.0, first_decay_steps=0), "first_decay_steps", ValueError),
    # the ends of the ranges, each side
    (cosine_decay_schedule, dict(init_value=1.0, decay_steps=10, alpha=-0.5), "alpha", ValueError),
    (
        cosine_decay_schedule,
        dict(init_value=1.0, decay_steps=10, exponent=0.0),
        "exponent",
        ValueError,
    ),
    (sgdr_schedule, dict(init_value=1.0, first_decay_steps=10, alpha=-0.5), "alpha", ValueError),
    (sgdr_schedule, dict(init_value=1.0, first_decay_steps=10, alpha=1.5), "alpha", ValueError),
    (sgdr_schedule, dict(init_value=1.0, first_decay_steps=10, m_mul=-0.1), "m_mul", ValueError),
    (
        sgdr_schedule,
        dict(init_value=1.0, first_decay_steps=10, t_mul=math.inf),
        "t_mul",
        ValueError,
    ),
    (sgdr_schedule, dict(init_value=1.0), "first_decay_steps", TypeError),
    (sgdr_schedule, dict(first_decay_steps=5), "init_value", TypeError),
    (sgdr_schedule, dict(cosine_kwargs=[{"init_value": 1.0}]), "cosine_kwargs", TypeError),
    (
        warmup_constant_schedule,
        dict(init_value=0.0, peak_value=1.0, warmup_steps=-1),
        "warmup_steps",
        ValueError,
    ),
    (
        warmup_cosine_decay_schedule,
        dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=10),
        "decay_steps",
        ValueError,
    ),
    (
        warmup_exponential_decay_schedule,
        dict(init_value=0.0, peak_value=1.0, warmup_steps=5, transition_steps=10, decay_rate=-0.5),
        "decay_rate",
        ValueError,
    ),
    (
        warmup_stable_decay_schedule,
        dict(init_value=0.0, peak_value=1.0, warmup_steps=90, total_steps=100, decay_fraction=0.2),
        "warmup_steps",
        ValueError,
    ),
    (
        warmup_stable_decay_schedule,
        dict(init_value=0.0, peak_value=1.0, warmup_steps=9, total_steps=100, decay_fraction=0.0),
        "decay_fraction",
        ValueError,
    ),
    (
        warmup_stable_decay_schedule,
        dict(init_value=0.0, peak_value=1.0, warmup_steps=9, total_steps=100, decay_shape="square"),
        "decay_shape",
        ValueError,
    ),
    (cyclical_schedule, dict(base_value=0.1, max_value=1.0, step_size=0), "step_size", ValueError),
    (
        cyclical_schedule,
        dict(base_value=0.1, max_value=1.0, step_size=5, mode="sine"),
        "mode",
        ValueError,
    ),
    (
        cyclical_schedule,
        dict(base_value=0.1, max_value=1.0, step_size=5, mode="exp_range", gamma=1.5),
        "gamma",
        ValueError,
    ),
    (
        cyclical_schedule,
        dict(base_value=0.1, max_value=1.0, step_size=5, step_size_down=0),
        "step_size_down",
        ValueError,
    ),
    (
        one_cycle_schedule,
        dict(total_steps=100, max_value=1.0, pct_start=1.0),
        "pct_start",
        ValueError,
    ),
    (
        one_cycle_schedule,
        dict(total_steps=4, max_value=1.0, pct_start=0.25),
        "pct_start",
        ValueError,
    ),
    (
        one_cycle_schedule,
        dict(total_steps=100, max_value=1.0, anneal_strategy="cosine"),
        "anneal_strategy",
        ValueError,
    ),
    (
        one_cycle_schedule,
        dict(total_steps=100, max_value=1.0, div_factor=0.0),
        "div_factor",
        ValueError,
    ),
    (one_cycle_schedule, dict(total_steps=0, max_value=1.0), "total_steps", ValueError),
    (
        one_cycle_momentum_schedule,
        dict(total_steps=100, base_momentum=1.0),
        "base_momentum",
        ValueError,
    ),
    (
        join_schedules,
        dict(schedules=[constant_schedule(1.0)] * 2, boundaries=[]),
        "boundaries",
        ValueError,
    ),
    (
        join_schedules,
        dict(schedules=[constant_schedule(1.0)] * 3, boundaries=[5, 5]),
        "boundaries",
        ValueError,
    ),
    (
        join_schedules,
        dict(schedules=[constant_schedule(1.0), 0.5], boundaries=[5]),
        "schedules",
        TypeError,
    ),
]


@pytest.mark.parametrize(
    "factory,kwargs,argument,error",
    BAD,
    ids=[f"{f.__name__}-{a}-{i}" for i, (f, _, a, _) in enumerate(BAD)],
)
def test_bad_arguments_raise_naming_argument_and_value(factory, kwargs, argument, error):
    with pytest.raises(error, match=rf"{argument}(\[\d+\])?="):
        factory(**kwargs)


@pytest.mark.parametrize("factory", [linear_schedule, polynomial_schedule])
def test_a_single_transition_step_is_allowed(factory):
    """``transition_steps=1``, the smallest valid value: the end value from step 1 on."""
    extra = {"power": 2.0} if factory is polynomial_schedule else {}
    schedule = factory(init_value=3.0, end_value=1.0, transition_steps=1, **extra)
    assert [float(schedule(t)) for t in (0, 1, 5)] == [3.0, 1.0, 1.0]


@pytest.mark.parametrize("name", IDS)
def test_negative_steps_count_as_zero(name):
    make, _, init = CASES[name]
    s = make()
    for step in (-1, -7, np.int64(-5), jnp.int32(-3), jnp.float32(-2.5), -0.5):
        assert s(step) == np.float32(init), (step, s(step))


@pytest.mark.parametrize("name", IDS)
def test_float_steps_follow_the_formula(name):
    """A float step (the float path of the periodic and shifted schedules) gives the value
    of the same integer step."""
    make, ref, _ = CASES[name]
    steps = np.arange(0, STEPS + 1, 7)
    close(make()(jnp.asarray(steps, jnp.float32)), [ref(int(t)) for t in steps])


def test_periods_and_boundaries_beyond_int32():
    """Periods, boundaries and transitions longer than 2**31 steps, met by int32 steps and
    by Python ints: no int32 overflow anywhere."""
    long = 2**31 + 10
    cyc = cyclical_schedule(0.0, 1.0, step_size=long)
    for step in (jnp.int32(INT32_MAX), INT32_MAX, float(INT32_MAX)):
        close(cyc(step), INT32_MAX / long, rtol=1e-6)
    joined = join_schedules([constant_schedule(1.0), constant_schedule(2.0)], [long])
    assert joined(jnp.int32(INT32_MAX)) == 1.0 and joined(long) == 2.0
    assert joined(jnp.float32(2.0**40)) == 2.0
    lin = linear_schedule(1.0, 0.0, transition_steps=2**40)
    close(lin(2**39), 0.5, rtol=1e-6)
    close(lin(jnp.float32(2.0**39)), 0.5, rtol=1e-6)


def test_boundaries_beyond_float32_steps_are_met_exactly():
    """float32 holds every integer only up to 2**24: a boundary one step past it is met at
    that step, not one step early, by int32 steps and Python ints."""
    b = 2**24 + 1
    piecewise = piecewise_constant_schedule(1.0, {b: 0.5})
    joined = join_schedules([constant_schedule(1.0), constant_schedule(0.5)], [b])
    for s in (piecewise, joined):
        for before, at in ((b - 1, b), (jnp.int32(b - 1), jnp.int32(b))):
            assert s(before) == 1.0 and s(at) == 0.5, (s, before)
        np.testing.assert_array_equal(s(jnp.asarray([b - 1, b], jnp.int32)), [1.0, 0.5])


def test_the_smallest_periods_are_allowed():
    """One-step decays and restart periods, the smallest valid values."""
    assert float(cosine_decay_schedule(1.0, decay_steps=1, alpha=0.25)(1)) == 0.25
    sgdr = sgdr_schedule(init_value=1.0, first_decay_steps=1, t_mul=1.0)
    assert [float(sgdr(t)) for t in range(3)] == [1.0, 1.0, 1.0]  # a restart every step
    assert float(sgdr_schedule(init_value=2.0, first_decay_steps=4, alpha=1.0)(2)) == 2.0
    assert float(sgdr_schedule(init_value=2.0, first_decay_steps=4, m_mul=0.0)(5)) == 0.0


def test_sgdr_restarts_exactly_where_the_cycles_end():
    """Doubling cycles from one step restart at steps 2**k - 1. The cycle index comes from a
    logarithm, which float32 lands a hair on either side of a restart: the step before one
    is the last of its cycle, the step of one starts the next (up to 2**25, beyond which
    float32 steps are no longer exact)."""
    s = sgdr_schedule(init_value=1.0, first_decay_steps=1, t_mul=2.0)
    for k in range(2, 26):
        length = 2 ** (k - 1)
        last = 0.5 * (1 + math.cos(math.pi * (length - 1) / length))
        np.testing.assert_allclose(float(s(2**k - 2)), last, atol=1e-6, err_msg=f"{k}")
        assert float(s(2**k - 1)) == 1.0, k


@pytest.mark.parametrize(("arg", "value"), [("t_mul", 3.0), ("m_mul", 0.5), ("alpha", 0.1)])
def test_sgdr_refuses_restart_keywords_beside_cosine_kwargs(arg, value):
    """With optax's ``cosine_kwargs`` the restart keywords have no meaning: any value other
    than the default, above or below it, is refused by name."""
    pieces = [dict(init_value=0.0, peak_value=1.0, warmup_steps=2, decay_steps=10)]
    with pytest.raises(TypeError, match=rf"cosine_kwargs and {arg}"):
        sgdr_schedule(cosine_kwargs=pieces, **{arg: value})
    sgdr_schedule(cosine_kwargs=pieces, **{arg: {"t_mul": 2.0, "m_mul": 1.0, "alpha": 0.0}[arg]})


@pytest.mark.parametrize(("peak", "end"), [(-1.0, -0.25), (0.0, 0.5), (2.0, 0.5)])
def test_warmup_cosine_end_value_is_a_fraction_of_a_nonzero_peak(peak, end):
    """optax's definition: a zero peak decays to 0 whatever ``end_value``; any other peak,
    negative included, decays to ``end_value``."""
    s = warmup_cosine_decay_schedule(0.0, peak, warmup_steps=2, decay_steps=6, end_value=end)
    expected = [ref_warmup_cosine(t, 0.0, peak, 2, 6, 0.0 if peak == 0 else end) for t in range(9)]
    close(s(jnp.arange(9)), expected)


def test_warmup_schedule_boundaries():
    """The smallest valid step counts are accepted, the values beside them refused by name."""
    one = warmup_cosine_decay_schedule(0.0, 2.0, warmup_steps=0, decay_steps=1, end_value=0.5)
    assert [float(one(t)) for t in range(3)] == [2.0, 0.5, 0.5]
    with pytest.raises(ValueError, match=r"decay_steps=5 must be > warmup_steps=10"):
        warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=10, decay_steps=5)
    for bad in (0.0, -0.5):
        with pytest.raises(ValueError, match=rf"exponent={bad} must be in \(0\.0, inf\)"):
            warmup_cosine_decay_schedule(0.0, 1.0, 2, 10, exponent=bad)
    with pytest.raises(ValueError, match=r"exponent=inf must be finite"):
        warmup_cosine_decay_schedule(0.0, 1.0, 2, 10, exponent=math.inf)
    # Warmup and decay may fill all the steps (no stable phase), one decay step at least.
    full = warmup_stable_decay_schedule(0.0, 1.0, 2, 4, decay_fraction=0.5)
    assert [float(full(t)) for t in range(6)] == [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    short = warmup_stable_decay_schedule(0.0, 1.0, 0, 4, decay_fraction=0.1)  # round(0.4) = 0
    assert [float(short(t)) for t in range(6)] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    single = warmup_stable_decay_schedule(0.0, 1.0, 0, 1)
    assert [float(single(t)) for t in range(3)] == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"decay_fraction=1\.5 must be in \(0\.0, 1\.0\]"):
        warmup_stable_decay_schedule(0.0, 1.0, 0, 10, decay_fraction=1.5)


def test_exponential_decay_bounds_and_their_boundaries():
    """``r < 1`` is bounded below by ``end_value``, ``r >= 1`` above (``r = 1``: the smaller of
    the two at every step, as optax); the order checks refuse exactly the inconsistent pairs."""
    hold = exponential_decay(2.0, 1, 1.0, end_value=3.0)  # r = 1 may sit below end_value
    assert [float(hold(t)) for t in (0, 1, 5)] == [2.0, 2.0, 2.0]
    clip = exponential_decay(2.0, 1, 1.0, end_value=0.5)
    assert [float(clip(t)) for t in (0, 1, 5)] == [0.5, 0.5, 0.5]
    flat = exponential_decay(1.0, 1, 2.0, end_value=1.0)  # growing to its own start
    assert [float(flat(t)) for t in (0, 3)] == [1.0, 1.0]
    grow = exponential_decay(0.5, 2, 4.0, end_value=3.0)
    close(grow(jnp.arange(6)), [0.5, 1.0, 2.0, 3.0, 3.0, 3.0])
    huge = exponential_decay(1.0, 1, 10.0, end_value=7.0)
    assert float(huge(10**6)) == 7.0  # r**p is inf there
    with pytest.raises(ValueError, match=r"end_value=0\.5 must be >= init_value=1\.0 > 0"):
        exponential_decay(1.0, 1, 1.5, end_value=0.5)
    for init in (0.0, -1.0):  # growth from a non-positive value is refused, end above or not
        with pytest.raises(ValueError, match=rf"end_value=2\.0 must be >= init_value={init}"):
            exponential_decay(init, 1, 1.5, end_value=2.0)
    with pytest.raises(ValueError, match=r"transition_begin=-1 must be"):
        exponential_decay(1.0, 10, 0.5, transition_begin=-1)
    assert float(exponential_decay(1.0, 1, 1.0)(9)) == 1.0  # r = 1 needs no end_value
    assert float(exponential_decay(1.0, 1, 0.5, end_value=1.0)(9)) == 1.0  # decay to itself
    with pytest.raises(ValueError, match=r"decay_rate=inf must be"):
        exponential_decay(1.0, 1, math.inf, end_value=2.0)
    # A traced init_value cannot be ordered against end_value: the check is left to the user.
    traced = jax.vmap(lambda v: exponential_decay(v, 1, 0.5, end_value=0.25)(3))
    close(traced(jnp.array([1.0, 4.0])), [0.25, 0.5])
    traced_end = jax.vmap(lambda e: exponential_decay(1.0, 1, 0.5, end_value=e)(3))
    close(traced_end(jnp.array([0.25, 0.0])), [0.25, 0.125])


def test_one_cycle_argument_boundaries():
    """The phase and divisor checks refuse exactly the configurations outside their ranges."""
    # pct_start * N - 1 < 0: the first phase would end before step 0 (not only at it).
    with pytest.raises(ValueError, match=r"pct_start=0\.05 with total_steps=10 leaves an empty"):
        one_cycle_schedule(10, 1.0, pct_start=0.05)
    for name in ("div_factor", "final_div_factor"):
        for bad in (0.0, -1.0, math.inf):
            with pytest.raises(ValueError, match=rf"{name}={bad}"):
                one_cycle_schedule(100, 1.0, **{name: bad})
    # Divisors below 1 are valid: the cycle then starts above its peak, or ends above its start.
    s = one_cycle_schedule(11, 1.0, pct_start=0.5, div_factor=0.5, final_div_factor=0.25)
    close(s(jnp.array([0, 10])), [2.0, 8.0])
    for factory in (gx_schedules.linear_onecycle_schedule, gx_schedules.cosine_onecycle_schedule):
        with pytest.raises(ValueError, match=r"pct_start=-0\.5"):
            factory(10, 1.0, pct_start=-0.5)
        for name in ("div_factor", "final_div_factor"):
            with pytest.raises(ValueError, match=rf"{name}=0\.0"):
                factory(10, 1.0, **{name: 0.0})
    with pytest.raises(ValueError, match=r"pct_final=1\.5"):
        gx_schedules.linear_onecycle_schedule(10, 1.0, pct_final=1.5)
    for factory in (gx_schedules.linear_onecycle_schedule, gx_schedules.cosine_onecycle_schedule):
        with pytest.raises(ValueError, match=r"pct_start=1\.5"):
            factory(
                10,
                1.0,
                pct_start=1.5,
                **({"pct_final": 1.0} if "linear" in factory.__name__ else {}),
            )
        with pytest.raises(ValueError, match=r"transition_steps=0"):
            factory(0, 1.0)


def test_cyclical_gamma_range_and_precision():
    """``gamma`` in ``(0, 1]``, used by ``exp_range`` only; ``gamma**t`` from the float64
    ``log(gamma)``, so a ``gamma`` near 1 keeps its digits over many steps."""
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match=rf"gamma={bad}"):
            cyclical_schedule(0.0, 1.0, 2, mode="exp_range", gamma=bad)
    plain = cyclical_schedule(0.0, 1.0, 2)(jnp.arange(9))
    ignored = cyclical_schedule(0.0, 1.0, 2, mode="triangular", gamma=0.5)(jnp.arange(9))
    np.testing.assert_array_equal(plain, ignored)
    t = np.array([1, 4001, 10001, 20001])  # odd steps: the triangle at 1/2
    got = cyclical_schedule(0.0, 1.0, 2, mode="exp_range", gamma=0.9999)(jnp.asarray(t))
    close(got, 0.5 * 0.9999 ** t.astype(np.float64), rtol=2e-6)
