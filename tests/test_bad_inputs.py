"""A corpus of bad inputs: each one gets a clear exception naming the argument or key path.

Every case is a row of a table: a description (the test id), a thunk that
feeds the bad input, the exception type and a regular expression the message
must match (the argument's name and value, or the key path of the first
offending leaf). Where the documented behaviour is to pass a value through
(integer and boolean leaves), the case asserts that the data comes back bit
for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import (
    MultiSteps,
    adabelief,
    adadelta,
    adafactor,
    adamax,
    adamaxw,
    adaptive_grad_clip,
    add_decayed_weights,
    add_noise,
    amsgrad,
    apply_if_finite,
    clip,
    clip_by_block_rms,
    clip_by_global_norm,
    constant_schedule,
    cosine_decay_schedule,
    cyclical_schedule,
    dynamic_loss_scaling,
    ema_params,
    exponential_decay,
    ftrl,
    inject_hyperparams,
    inverse_sqrt_schedule,
    inverse_time_decay,
    join_schedules,
    label_by_path,
    lamb,
    lars,
    linear_schedule,
    lion,
    load_state_dict,
    lookahead,
    masked,
    multi_transform,
    nadam,
    nadamw,
    one_cycle_momentum_schedule,
    one_cycle_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    polynomial_schedule,
    radam,
    reduce_on_plateau,
    scale,
    scale_by_schedule,
    set_hyperparams,
    sgd_nesterov_lookahead,
    sgdr_schedule,
    sign_sgd,
    signum,
    state_dict,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
    warmup_stable_decay_schedule,
    yogi,
    zero_nans,
)


class Case(NamedTuple):
    id: str
    run: Callable[[], Any]
    error: type[Exception]
    match: str


def _update(tx: Any, params: Any, grads: Any) -> Any:
    """One update of ``tx`` from ``init(params)``, applied to the params."""
    updates, _ = tx.update(grads, tx.init(params), params)
    return gx.apply_updates(params, updates)


def _tree(**kw: Any) -> dict[str, Any]:
    return dict(kw)


P = {"a": jnp.ones(3), "b": {"c": jnp.ones((2, 2))}}  # the params most cases use


# ------------------------------------------------------------- tree structure

STRUCTURE = [
    Case(
        "missing-key",
        lambda: _update(gx.adam(0.1), P, {"a": jnp.ones(3)}),
        ValueError,
        r"lacks the leaf 'b/c'",
    ),
    Case(
        "extra-key",
        lambda: _update(gx.adam(0.1), P, {**P, "z": jnp.ones(1)}),
        ValueError,
        r"extra leaf 'z'",
    ),
    Case(
        "renamed-nested-key",
        lambda: _update(gx.sgd(0.1, 0.9), P, {"a": jnp.ones(3), "b": {"d": jnp.ones((2, 2))}}),
        ValueError,
        r"'b/d'.*'b/c'",
    ),
    Case(
        "list-vs-tuple",
        lambda: _update(gx.rmsprop(0.1), [jnp.ones(2), jnp.ones(2)], (jnp.ones(2), jnp.ones(2))),
        ValueError,
        r"different containers",
    ),
    Case(
        "list-vs-dict",
        lambda: _update(gx.adagrad(0.1), {"w": [jnp.ones(2)]}, {"w": {"x": jnp.ones(2)}}),
        ValueError,
        r"'w/x'.*'w/0'",
    ),
    Case(
        "none-leaf-for-array",
        lambda: _update(gx.adam(0.1), P, {"a": None, "b": {"c": jnp.ones((2, 2))}}),
        ValueError,
        r"'b/c'.*'a'",
    ),
    Case(
        "none-leaf-stateless-sgd",
        lambda: _update(gx.sgd(0.1), P, {"a": jnp.ones(3), "b": {"c": None}}),
        ValueError,
        r"lacks the leaf 'b/c'",
    ),
    Case(
        "apply-updates-missing-key",
        lambda: gx.apply_updates(P, {"a": jnp.ones(3)}),
        ValueError,
        r"lacks the leaf 'b/c'",
    ),
    Case(
        "state-of-other-chain-length",
        lambda: gx.adamw(0.1).update(P, gx.adam(0.1).init(P), P),
        ValueError,
        r"tuple of 3 states",
    ),
]

# ------------------------------------------------------------ shapes that broadcast

SHAPES = [
    Case(
        "size-1-for-vector",
        lambda: _update(gx.adam(0.1), P, {**P, "a": jnp.ones(1)}),
        ValueError,
        r"'a' has shape \(1,\).*\(3,\)",
    ),
    Case(
        "scalar-for-vector",
        lambda: _update(gx.lion(0.1), P, {**P, "a": jnp.ones(())}),
        ValueError,
        r"'a' has shape \(\).*\(3,\)",
    ),
    Case(
        "column-for-vector",
        lambda: _update(gx.sgd(0.1), P, {**P, "a": jnp.ones((3, 1))}),
        ValueError,
        r"'a' has shape \(3, 1\).*\(3,\)",
    ),
    Case(
        "row-for-matrix",
        lambda: _update(gx.adafactor(0.1), P, {**P, "b": {"c": jnp.ones((1, 2))}}),
        ValueError,
        r"'b/c' has shape \(1, 2\).*\(2, 2\)",
    ),
    Case(
        "transposed",
        lambda: _update(gx.lamb(0.1), {"k": jnp.ones((3, 4))}, {"k": jnp.ones((4, 3))}),
        ValueError,
        r"'k' has shape \(4, 3\).*\(3, 4\)",
    ),
    Case(
        "apply-updates-broadcast",
        lambda: gx.apply_updates({"k": jnp.ones((2, 3))}, {"k": jnp.ones(3)}),
        ValueError,
        r"'k' has shape \(3,\).*\(2, 3\)",
    ),
    Case(
        "state-from-other-shapes",
        lambda: gx.adam(0.1).update(P, gx.adam(0.1).init({**P, "a": jnp.ones(5)}), P),
        ValueError,
        r"'a' has shape \(3,\).*\(5,\)",
    ),
]

# ---------------------------------------------------------------- dtype kinds

C = {"z": jnp.ones(2, jnp.complex64)}

DTYPES = [
    Case(
        "int-gradient-for-float-param",
        lambda: _update(gx.adam(0.1), P, {**P, "a": jnp.ones(3, jnp.int32)}),
        TypeError,
        r"'a' has dtype int32.*float32",
    ),
    Case(
        "bool-gradient-for-float-param",
        lambda: _update(gx.sgd(0.1), P, {**P, "a": jnp.ones(3, jnp.bool_)}),
        TypeError,
        r"'a' has dtype bool",
    ),
    Case(
        "complex-param-real-mu-dtype",
        lambda: _update(gx.adam(0.1, mu_dtype=jnp.float32), C, C),
        TypeError,
        r"'z' is complex.*mu_dtype=float32",
    ),
    Case(
        "complex-param-real-accumulator-dtype",
        lambda: _update(gx.sgd(0.1, 0.9, accumulator_dtype=jnp.float32), C, C),
        TypeError,
        r"'z' is complex.*accumulator_dtype=float32",
    ),
    Case(
        "complex-param-sign-sgd",
        lambda: _update(sign_sgd(0.1), C, C),
        TypeError,
        r"'z' is complex.*sign of a complex number",
    ),
    Case(
        "complex-gradient-for-real-param",
        lambda: _update(gx.sgd(0.1), {"z": jnp.ones(2)}, C),
        TypeError,
        r"'z' is complex.*real",
    ),
    Case(
        "complex-update-apply-updates",
        lambda: gx.apply_updates({"z": jnp.ones(2)}, C),
        TypeError,
        r"'z' is complex.*real",
    ),
    Case(
        "int-mu-dtype", lambda: gx.adam(0.1, mu_dtype=jnp.int32), TypeError, r"mu_dtype=.*floating"
    ),
    Case("nonsense-mu-dtype", lambda: gx.adam(0.1, mu_dtype="fast"), TypeError, r"mu_dtype='fast'"),
]

# ------------------------------------------- invalid hyperparameters, every factory

FACTORIES: list[tuple[str, Callable[..., Any]]] = [
    ("sgd", gx.sgd),
    ("adagrad", gx.adagrad),
    ("rmsprop", gx.rmsprop),
    ("adam", gx.adam),
    ("adamw", gx.adamw),
    ("amsgrad", amsgrad),
    ("adamax", adamax),
    ("adamaxw", adamaxw),
    ("nadam", nadam),
    ("nadamw", nadamw),
    ("radam", radam),
    ("adabelief", adabelief),
    ("yogi", yogi),
    ("adadelta", adadelta),
    ("ftrl", ftrl),
    ("sgd_nesterov_lookahead", sgd_nesterov_lookahead),
    ("lion", lion),
    ("lamb", lamb),
    ("lars", lars),
    ("adafactor", adafactor),
    ("sign_sgd", sign_sgd),
    ("signum", signum),
]

BAD_LEARNING_RATES: list[tuple[str, Any, type[Exception], str]] = [
    ("negative", -0.1, ValueError, r"learning_rate=-0\.1 must be >=? 0"),
    ("nan", math.nan, ValueError, r"learning_rate=nan must not be NaN"),
    ("inf", math.inf, ValueError, r"learning_rate=inf must be finite"),
    ("string", "0.1", TypeError, r"learning_rate='0\.1'"),
    ("bool", True, TypeError, r"learning_rate=True"),
    ("complex", 0.1j, TypeError, r"learning_rate=0\.1j"),
    ("complex-jax-scalar", jnp.complex64(0.1), TypeError, r"learning_rate=.*complex"),
    ("vector", jnp.ones(2), TypeError, r"learning_rate=.*shape \(2,\)"),
    ("none", None, TypeError, r"learning_rate=None"),
]

# As in optax, adadelta and adafactor take learning_rate=None (no learning-rate scaling).
NONE_IS_VALID = ("adadelta", "adafactor")

LEARNING_RATES = [
    Case(
        f"{name}-learning-rate-{kind}",
        (lambda f=factory, v=value: f(learning_rate=v)),
        error,
        match,
    )
    for name, factory in FACTORIES
    for kind, value, error, match in BAD_LEARNING_RATES
    if not (kind == "none" and name in NONE_IS_VALID)
] + [
    Case(
        "ftrl-learning-rate-zero", lambda: ftrl(0.0), ValueError, r"learning_rate=0\.0 must be > 0"
    )
]


def _every(decay: Any) -> Any:
    return lambda step: decay


HYPERPARAMETERS = [
    Case("sgd-momentum-1", lambda: gx.sgd(0.1, momentum=1.0), ValueError, r"momentum=1\.0.*\[0"),
    # The summing momentum takes decay in [0, 1] (1: a running sum), the averaging forms
    # in [0, 1); none takes a schedule.
    *[
        Case(f"{name}-decay-{value}", make, ValueError, rf"decay={value}.*\[0\.0, 1\.0{end}")
        for name, make, value, end in [
            ("momentum", lambda: gx.scale_by_momentum(-0.1), -0.1, r"\]"),
            ("momentum", lambda: gx.scale_by_momentum(1.5), 1.5, r"\]"),
            ("momentum-ema", lambda: gx.scale_by_momentum(1.0, ema=True), 1.0, r"\)"),
            ("momentum-ema", lambda: gx.scale_by_momentum(-0.1, ema=True), -0.1, r"\)"),
            ("trace", lambda: gx.trace(1.5), 1.5, r"\]"),
            ("ema", lambda: gx.ema(1.0), 1.0, r"\)"),
        ]
    ],
    *[
        Case(f"{name}-decay-schedule", make, TypeError, r"decay=.* must be a number")
        for name, make in [
            ("momentum", lambda: gx.scale_by_momentum(_every(0.9))),
            ("momentum-ema", lambda: gx.scale_by_momentum(_every(0.9), ema=True)),
            ("trace", lambda: gx.trace(_every(0.9))),
            ("ema", lambda: gx.ema(_every(0.9))),
        ]
    ],
    Case(
        "sgd-nesterov-without-momentum",
        lambda: gx.sgd(0.1, nesterov=True),
        ValueError,
        r"nesterov=True.*momentum=None",
    ),
    Case(
        "adagrad-negative-initial",
        lambda: gx.adagrad(0.1, initial_accumulator_value=-1.0),
        ValueError,
        r"initial_accumulator_value=-1\.0",
    ),
    Case("rmsprop-decay-nan", lambda: gx.rmsprop(0.1, decay=math.nan), ValueError, r"decay=nan"),
    Case("adam-b1-1", lambda: gx.adam(0.1, b1=1.0), ValueError, r"b1=1\.0 must be in \[0"),
    Case("adam-b2-negative", lambda: gx.adam(0.1, b2=-0.1), ValueError, r"b2=-0\.1"),
    Case("adam-eps-negative", lambda: gx.adam(0.1, eps=-1e-8), ValueError, r"eps=-1e-08"),
    Case("adam-b1-string", lambda: gx.adam(0.1, b1="0.9"), TypeError, r"b1='0\.9'"),
    Case(
        "adam-b2-rounds-to-1-in-float32",
        lambda: gx.adam(0.1, b2=1 - 1e-9),
        ValueError,
        r"b2=0\.999999999 must be in \[0, 1\); it rounds to 1 in float32",
    ),
    Case(
        "adam-b1-schedule",
        lambda: gx.adam(0.1, b1=lambda t: 0.9),
        TypeError,
        r"b1=.*not a schedule",
    ),
    Case(
        "adamw-weight-decay-negative",
        lambda: gx.adamw(0.1, weight_decay=-1e-4),
        ValueError,
        r"weight_decay=-0\.0001",
    ),
    Case(
        "amsgrad-max-unknown",
        lambda: amsgrad(0.1, amsgrad_max="biggest"),
        ValueError,
        r"amsgrad_max='biggest'",
    ),
    Case(
        "adam-dozat-without-nesterov",
        lambda: gx.scale_by_adam(momentum_schedule="dozat"),
        ValueError,
        r"momentum_schedule='dozat' is NAdam's schedule: it needs nesterov=True",
    ),
    Case(
        "adam-momentum-decay-without-dozat",
        lambda: gx.scale_by_adam(nesterov=True, momentum_decay=0.1),
        ValueError,
        r"momentum_decay=0\.1 has no effect unless momentum_schedule='dozat'",
    ),
    Case(
        "amsgrad-raw-max-without-correction",
        lambda: gx.scale_by_amsgrad(amsgrad_max="raw", bias_correction_nu=False),
        ValueError,
        r"amsgrad_max='raw' has no effect unless bias_correction_nu=True",
    ),
    Case(
        "nadam-momentum-schedule-unknown",
        lambda: nadam(0.1, momentum_schedule="x"),
        ValueError,
        r"momentum_schedule='x'",
    ),
    Case(
        "radam-threshold-below-4",
        lambda: radam(0.1, threshold=3.0),
        ValueError,
        r"threshold=3\.0 must be >= 4",
    ),
    Case(
        "yogi-initial-negative",
        lambda: yogi(0.1, initial_accumulator_value=-1e-6),
        ValueError,
        r"initial_accumulator_value=-1e-06",
    ),
    Case("adadelta-eps-zero", lambda: adadelta(1.0, eps=0.0), ValueError, r"eps=0\.0 must be > 0"),
    Case(
        "ftrl-power-positive",
        lambda: ftrl(0.1, learning_rate_power=0.5),
        ValueError,
        r"learning_rate_power=0\.5 must be <= 0",
    ),
    Case("ftrl-l1-negative", lambda: ftrl(0.1, l1=-0.1), ValueError, r"l1=-0\.1"),
    Case(
        "ftrl-proximal-center-unknown",
        lambda: ftrl(0.1, proximal_center="mean"),
        ValueError,
        r"proximal_center='mean'",
    ),
    Case("lion-b2-above-1", lambda: lion(0.1, b2=1.5), ValueError, r"b2=1\.5"),
    Case(
        "lars-trust-coefficient-nan",
        lambda: lars(0.1, trust_coefficient=math.nan),
        ValueError,
        r"trust_coefficient=nan",
    ),
    Case(
        "adafactor-decay-rate-nan",
        lambda: adafactor(0.1, decay_rate=math.nan),
        ValueError,
        r"decay_rate=nan",
    ),
    Case("signum-beta-1", lambda: signum(0.1, beta=1.0), ValueError, r"beta=1\.0"),
    Case("clip-negative", lambda: clip(-1.0), ValueError, r"max_delta=-1\.0"),
    Case(
        "clip-by-global-norm-nan",
        lambda: clip_by_global_norm(math.nan),
        ValueError,
        r"max_norm=nan",
    ),
    Case(
        "clip-by-global-norm-mode",
        lambda: clip_by_global_norm(1.0, on_nonfinite="ignore"),
        ValueError,
        r"on_nonfinite='ignore'",
    ),
    Case("clip-by-block-rms-string", lambda: clip_by_block_rms("1"), TypeError, r"threshold='1'"),
    Case(
        "adaptive-grad-clip-negative",
        lambda: adaptive_grad_clip(-0.01),
        ValueError,
        r"clipping=-0\.01",
    ),
    Case(
        "add-decayed-weights-negative",
        lambda: add_decayed_weights(-0.1),
        ValueError,
        r"weight_decay=-0\.1",
    ),
    Case("scale-inf", lambda: scale(math.inf), ValueError, r"step_size=inf"),
    Case(
        "scale-by-schedule-not-callable",
        lambda: scale_by_schedule(0.1),
        TypeError,
        r"step_size_fn=0\.1",
    ),
    Case(
        "add-noise-key-float",
        lambda: add_noise(0.01, 0.55, 0.5),
        TypeError,
        r"key=0\.5 must be an int",
    ),
    Case(
        "add-noise-raw-key",
        lambda: add_noise(0.01, 0.55, jax.random.PRNGKey(0)),
        TypeError,
        r"raw uint32 key",
    ),
    Case(
        "add-noise-key-and-seed",
        lambda: add_noise(0.01, 0.55, 1, seed=2),
        ValueError,
        r"key or seed, not both",
    ),
    Case(
        "chain-non-transformation",
        lambda: gx.chain(gx.adam(0.1), "sgd"),
        TypeError,
        r"chain argument 1='sgd'",
    ),
    Case("multi-steps-zero", lambda: MultiSteps(gx.sgd(0.1), 0), ValueError, r"every_k_schedule=0"),
    Case(
        "apply-if-finite-negative",
        lambda: apply_if_finite(gx.sgd(0.1), -1),
        ValueError,
        r"max_consecutive_errors=-1",
    ),
    Case(
        "lookahead-sync-period-zero",
        lambda: lookahead(gx.sgd(0.1), sync_period=0, slow_step_size=0.5),
        ValueError,
        r"sync_period=0",
    ),
    Case("ema-params-decay-1", lambda: ema_params(1.0), ValueError, r"decay=1\.0"),
    Case(
        "reduce-on-plateau-factor-1",
        lambda: reduce_on_plateau(factor=1.0),
        ValueError,
        r"factor=1\.0",
    ),
    Case(
        "reduce-on-plateau-patience-float",
        lambda: reduce_on_plateau(patience=2.5),
        TypeError,
        r"patience=2\.5",
    ),
    Case(
        "loss-scaling-min-above-initial",
        lambda: dynamic_loss_scaling(gx.sgd(0.1), initial_scale=1.0, min_scale=2.0),
        ValueError,
        r"min_scale=2\.0 must be <= initial_scale=1\.0",
    ),
    Case(
        "inject-hyperparams-negative",
        lambda: inject_hyperparams(gx.adam)(-0.1),
        ValueError,
        r"learning_rate=",
    ),
    Case(
        "inject-hyperparams-unknown-static",
        lambda: inject_hyperparams(gx.adam, static_args="lr"),
        ValueError,
        r"static_args=",
    ),
    Case(
        "set-hyperparams-unknown",
        lambda: set_hyperparams(inject_hyperparams(gx.adam)(0.1).init(P), lr=0.1),
        ValueError,
        r"lr=0\.1 is not a hyperparameter",
    ),
]

# ---------------------------------------------------------------- schedules

SCHEDULES = [
    Case("constant-nan", lambda: constant_schedule(math.nan), ValueError, r"value=nan"),
    Case(
        "linear-zero-steps",
        lambda: linear_schedule(1.0, 0.0, 0),
        ValueError,
        r"transition_steps=0 must be >= 1",
    ),
    Case(
        "linear-negative-steps",
        lambda: linear_schedule(1.0, 0.0, -5),
        ValueError,
        r"transition_steps=-5",
    ),
    Case(
        "linear-float-steps",
        lambda: linear_schedule(1.0, 0.0, 10.5),
        TypeError,
        r"transition_steps=10\.5 must be an int",
    ),
    Case(
        "linear-negative-begin",
        lambda: linear_schedule(1.0, 0.0, 10, transition_begin=-1),
        ValueError,
        r"transition_begin=-1",
    ),
    Case(
        "polynomial-zero-power",
        lambda: polynomial_schedule(1.0, 0.0, 0.0, 10),
        ValueError,
        r"power=0\.0",
    ),
    Case(
        "piecewise-boundary-negative",
        lambda: piecewise_constant_schedule(1.0, {-5: 0.1}),
        ValueError,
        r"boundaries_and_scales=.*>= 1|boundaries_and_scales.*-5",
    ),
    Case(
        "piecewise-scale-negative",
        lambda: piecewise_constant_schedule(1.0, {5: -0.1}),
        ValueError,
        r"boundaries_and_scales\[5\]=-0\.1",
    ),
    Case(
        "piecewise-not-a-dict",
        lambda: piecewise_constant_schedule(1.0, [(5, 0.1)]),
        TypeError,
        r"boundaries_and_scales=.*dict",
    ),
    Case(
        "interpolate-unknown-type",
        lambda: piecewise_interpolate_schedule("cubic", 1.0, {5: 0.5}),
        ValueError,
        r"interpolate_type='cubic'",
    ),
    Case("cosine-zero-steps", lambda: cosine_decay_schedule(1.0, 0), ValueError, r"decay_steps=0"),
    Case(
        "cosine-alpha-above-1",
        lambda: cosine_decay_schedule(1.0, 10, alpha=1.5),
        ValueError,
        r"alpha=1\.5",
    ),
    Case(
        "sgdr-t-mul-below-1",
        lambda: sgdr_schedule(init_value=1.0, first_decay_steps=10, t_mul=0.5),
        ValueError,
        r"t_mul=0\.5",
    ),
    Case(
        "exponential-rate-zero",
        lambda: exponential_decay(1.0, 10, 0.0),
        ValueError,
        r"decay_rate=0\.0",
    ),
    Case(
        "exponential-growth-without-end",
        lambda: exponential_decay(1.0, 10, 2.0),
        ValueError,
        r"decay_rate=2\.0.*end_value",
    ),
    Case(
        "inverse-time-negative-rate",
        lambda: inverse_time_decay(1.0, 10, decay_rate=-1.0),
        ValueError,
        r"decay_rate=-1\.0",
    ),
    Case(
        "inverse-sqrt-zero-warmup",
        lambda: inverse_sqrt_schedule(0.0, 1.0, 0),
        ValueError,
        r"warmup_steps=0",
    ),
    Case(
        "cyclical-zero-step-size",
        lambda: cyclical_schedule(0.1, 1.0, 0),
        ValueError,
        r"step_size=0",
    ),
    Case(
        "cyclical-unknown-mode",
        lambda: cyclical_schedule(0.1, 1.0, 5, mode="sine"),
        ValueError,
        r"mode='sine'",
    ),
    Case(
        "one-cycle-pct-above-1",
        lambda: one_cycle_schedule(100, 1.0, pct_start=1.5),
        ValueError,
        r"pct_start=1\.5",
    ),
    Case("one-cycle-zero-total", lambda: one_cycle_schedule(0, 1.0), ValueError, r"total_steps=0"),
    Case(
        "one-cycle-momentum-above-1",
        lambda: one_cycle_momentum_schedule(100, 0.85, 1.2),
        ValueError,
        r"max_momentum=1\.2",
    ),
    Case(
        "warmup-constant-negative-steps",
        lambda: warmup_constant_schedule(0.0, 1.0, -1),
        ValueError,
        r"warmup_steps=-1",
    ),
    Case(
        "warmup-cosine-decay-before-warmup",
        lambda: warmup_cosine_decay_schedule(0.0, 1.0, 10, 5),
        ValueError,
        r"decay_steps=5 must be > warmup_steps=10",
    ),
    Case(
        "warmup-exponential-inf-peak",
        lambda: warmup_exponential_decay_schedule(0.0, math.inf, 10, 10, 0.5),
        ValueError,
        r"peak_value=inf",
    ),
    Case(
        "warmup-stable-decay-fraction-zero",
        lambda: warmup_stable_decay_schedule(0.0, 1.0, 10, 100, decay_fraction=0.0),
        ValueError,
        r"decay_fraction=0\.0",
    ),
    Case(
        "join-boundaries-out-of-order",
        lambda: join_schedules([constant_schedule(1.0)] * 3, [10, 5]),
        ValueError,
        r"boundaries=\(10, 5\) must be strictly increasing",
    ),
    Case(
        "join-wrong-boundary-count",
        lambda: join_schedules([constant_schedule(1.0)] * 3, [10]),
        ValueError,
        r"boundaries=\(10,\) must hold len\(schedules\) - 1 = 2 steps, got 1",
    ),
    Case(
        "join-too-many-boundaries",
        lambda: join_schedules([constant_schedule(1.0)] * 2, [10, 20]),
        ValueError,
        r"boundaries=\(10, 20\) must hold len\(schedules\) - 1 = 1 steps, got 2",
    ),
    Case(
        "join-not-callable",
        lambda: join_schedules([constant_schedule(1.0), 0.5], [10]),
        TypeError,
        r"schedules\[1\]=0\.5",
    ),
]

# ----------------------------------------------------------- masks and labels

MASKS = [
    Case(
        "mask-missing-key",
        lambda: _update(masked(gx.adam(0.1), {"a": True}), P, P),
        ValueError,
        r"lacks the leaf 'b/c'",
    ),
    Case(
        "mask-non-bool-leaf",
        lambda: _update(masked(gx.adam(0.1), {"a": 1, "b": {"c": True}}), P, P),
        TypeError,
        r"mask leaf 'a' must be a Python bool",
    ),
    Case(
        "mask-string-leaf",
        lambda: _update(masked(gx.adam(0.1), {"a": "yes", "b": {"c": True}}), P, P),
        TypeError,
        r"mask leaf 'a' must be a Python bool",
    ),
    Case(
        "mask-fn-wrong-structure",
        lambda: _update(gx.adamw(0.1, mask=lambda p: {"a": True}), P, P),
        ValueError,
        r"lacks the leaf 'b/c'",
    ),
    Case(
        "labels-unknown-label",
        lambda: _update(multi_transform({"x": gx.sgd(0.1)}, {"a": "x", "b": {"c": "y"}}), P, P),
        ValueError,
        r"'b/c'.*'y'",
    ),
    Case(
        "labels-missing-key",
        lambda: _update(multi_transform({"x": gx.sgd(0.1)}, {"a": "x"}), P, P),
        ValueError,
        r"lacks the leaf 'b/c'",
    ),
    Case(
        "label-by-path-no-match",
        lambda: _update(multi_transform({"x": gx.sgd(0.1)}, label_by_path({"^a$": "x"})), P, P),
        ValueError,
        r"no rule matches the leaf 'b/c'",
    ),
    Case(
        "label-by-path-bad-regex",
        lambda: label_by_path({"(": "x"}),
        ValueError,
        r"'\('.*not a valid regular expression",
    ),
]

# --------------------------------------------------------- restoring a state

_MOMENTUM = gx.sgd(0.1, momentum=0.9)


def _restore(template_tx: Any, template_params: Any, saved: dict[str, Any]) -> Any:
    return load_state_dict(template_tx.init(template_params), saved)


RESTORE = [
    Case(
        "restore-momentum-into-adagrad",
        lambda: _restore(gx.adagrad(0.1), P, state_dict(_MOMENTUM.init(P))),
        ValueError,
        r"key '0/sum_of_squares/a'.*missing",
    ),
    Case(
        "restore-missing-key",
        lambda: _restore(_MOMENTUM, P, {"0/trace/a": jnp.ones(3)}),
        ValueError,
        r"key '0/trace/b/c'.*missing",
    ),
    Case(
        "restore-unexpected-key",
        lambda: _restore(_MOMENTUM, P, {**state_dict(_MOMENTUM.init(P)), "0/trace/z": jnp.ones(1)}),
        ValueError,
        r"unexpected key '0/trace/z'",
    ),
    Case(
        "restore-other-model-shapes",
        lambda: _restore(_MOMENTUM, P, state_dict(_MOMENTUM.init({**P, "a": jnp.ones(4)}))),
        ValueError,
        r"key '0/trace/a' has shape \(4,\).*\(3,\)",
    ),
    Case(
        "restore-other-dtype",
        lambda: _restore(
            _MOMENTUM,
            P,
            state_dict(gx.sgd(0.1, 0.9).init(jax.tree.map(lambda x: x.astype(jnp.bfloat16), P))),
        ),
        TypeError,
        r"key '0/trace/a' has dtype bfloat16.*float32",
    ),
    Case(
        "restore-float-count",
        lambda: _restore(
            gx.adam(0.1), P, {**state_dict(gx.adam(0.1).init(P)), "0/count": np.float32(0)}
        ),
        TypeError,
        r"key '0/count' has dtype float32.*int32",
    ),
]

ALL = STRUCTURE + SHAPES + DTYPES + LEARNING_RATES + HYPERPARAMETERS + SCHEDULES + MASKS + RESTORE


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_bad_input_raises_clear_error(case: Case):
    with pytest.raises(case.error, match=case.match) as info:
        case.run()
    assert type(info.value) is case.error  # not a subclass raised deep inside JAX


def test_corpus_ids_are_unique_and_large_enough():
    ids = [c.id for c in ALL]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40


# ------------------------------------------- documented pass-through: integer leaves

MIXED = {
    "w": jnp.linspace(-1.0, 1.0, 4),
    "step": jnp.array([3, -7, 2**31 - 1], jnp.int32),
    "flag": jnp.array([True, False]),
    "idx": jnp.array(5, jnp.int8),
}

PASS_THROUGH = [
    ("adam", gx.adam(0.1)),
    ("adamw", gx.adamw(0.1, weight_decay=0.5)),
    ("sgd-momentum", gx.sgd(0.1, 0.9)),
    ("ftrl", ftrl(0.1, l1=0.01)),
    ("lion", lion(0.1)),
    ("adafactor", adafactor(0.1)),
    ("lars", lars(0.1, weight_decay=0.1)),
    ("clip-by-global-norm", gx.chain(clip_by_global_norm(0.5), gx.sgd(0.1))),
    ("zero-nans", gx.chain(zero_nans(), gx.adam(0.1))),
    ("masked", masked(gx.adam(0.1), {"w": True, "step": True, "flag": False, "idx": True})),
]


@pytest.mark.parametrize("tx", [t for _, t in PASS_THROUGH], ids=[n for n, _ in PASS_THROUGH])
def test_integer_and_bool_leaves_pass_through_bit_identical(tx):
    grads = {**MIXED, "w": jnp.ones(4)}  # integer "gradients" as jax.grad(allow_int) gives
    state = tx.init(MIXED)
    updates, state = jax.jit(tx.update)(grads, state, MIXED)
    for key in ("step", "flag", "idx"):
        assert updates[key].dtype == MIXED[key].dtype
    new = gx.apply_updates(MIXED, updates)
    for key in ("step", "flag", "idx"):
        np.testing.assert_array_equal(np.asarray(new[key]), np.asarray(MIXED[key]))
        assert new[key].dtype == MIXED[key].dtype
    assert not np.array_equal(np.asarray(new["w"]), np.asarray(MIXED["w"]))


# --------------------------------------------------------- non-finite gradients

NAN_GRAD = {"a": jnp.array([1.0, jnp.nan, 2.0]), "b": {"c": jnp.ones((2, 2))}}
INF_GRAD = {"a": jnp.array([1.0, jnp.inf, 2.0]), "b": {"c": jnp.ones((2, 2))}}


@pytest.mark.parametrize("grad", [NAN_GRAD, INF_GRAD], ids=["nan", "inf"])
def test_non_finite_gradient_without_guard_is_visible_not_hidden(grad):
    """Unguarded, a non-finite gradient shows up in the updates: nothing clips or zeroes it."""
    tx = gx.adam(0.1)
    updates, state = tx.update(grad, tx.init(P), P)
    assert not bool(jnp.all(jnp.isfinite(updates["a"])))
    assert bool(jnp.all(jnp.isfinite(updates["b"]["c"])))  # other leaves are untouched
    assert not bool(jnp.all(jnp.isfinite(state[0].mu["a"])))


@pytest.mark.parametrize("grad", [NAN_GRAD, INF_GRAD], ids=["nan", "inf"])
def test_non_finite_gradient_with_apply_if_finite_is_skipped_bit_for_bit(grad):
    tx = apply_if_finite(gx.adam(0.1), max_consecutive_errors=2)
    state = tx.init(P)
    good, state = tx.update(P, state, P)
    before = state.inner_state
    updates, state = tx.update(grad, state, P)
    chex.assert_trees_all_equal(updates, jax.tree.map(jnp.zeros_like, P))
    chex.assert_trees_all_equal(state.inner_state, before)
    assert int(state.notfinite_count) == 1 and not bool(state.last_finite)
    del good


def test_non_finite_gradient_with_zero_nans_and_clipping():
    tx = gx.chain(zero_nans(), clip_by_global_norm(1.0, on_nonfinite="zero"), gx.sgd(1.0))
    updates, state = tx.update(NAN_GRAD, tx.init(P), P)
    chex.assert_tree_all_finite(updates)
    assert bool(state[0].found_nan["a"]) and not bool(state[0].found_nan["b"]["c"])
    tx = gx.chain(clip_by_global_norm(1.0, on_nonfinite="zero"), gx.sgd(1.0))
    updates, _ = tx.update(INF_GRAD, tx.init(P), P)
    chex.assert_trees_all_equal(updates, jax.tree.map(jnp.zeros_like, P))
