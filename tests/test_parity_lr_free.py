"""Parity of the learning-rate-free optimizers with their reference implementations.

* ``prodigy`` with ``optax.contrib.prodigy`` and the authors' ``prodigyopt.Prodigy``;
* ``dadapt_adamw`` with ``optax.contrib.dadapt_adamw`` and ``dadaptation.DAdaptAdam``;
* ``dadapt_sgd`` with ``dadaptation.DAdaptSGD``;
* ``mechanize`` with ``optax.contrib.mechanize``.

Each case runs both for 25 steps on the problem of test_parity_torch.py (a
per-coordinate quadratic plus a fixed noise sequence) in float32 and compares the
parameters after every step. Every flag that selects a variant is tested against the
setting of the package it reproduces, and against the other setting, which must differ
(a negative control). The tolerances are in docs/parity.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax
import optax.contrib
import pytest

import gradxform as gx
from tests._require import require
from tests.test_parity_torch import problem, run_gradxform, run_torch
from tests.test_signatures import signature_mismatches

torch = require("torch", why="parity with the authors' torch packages")
prodigyopt = require("prodigyopt", why="parity with prodigyopt.Prodigy")
dadaptation = require("dadaptation", why="parity with dadaptation's DAdaptAdam and DAdaptSGD")

RTOL, ATOL = 1e-5, 1e-6
# The packages keep d (and its numerator and denominator) as Python floats, in float64;
# gradxform, as optax, in float32 (in float64 both agree to 1e-15). Where d jumps in the
# first steps (prodigyopt's and DAdaptAdam's default, without the bias factor, and
# Prodigy with decoupled decay) the float32 rounding of d carries into the iterates:
# these cases agree to the absolute tolerances below (weights of order 1).
PRODIGY_ATOL = {"package-default": 2e-4, "decoupled-decay": 3e-4}
DADAPT_ADAM_ATOL = {"package-default": 3e-4}
# optax rounds b2 = 0.99 and its schedule's value differently (its constants are weakly
# typed Python floats): 4e-6 after 25 steps.
OPTAX_ATOL = {"prodigy-options": 1e-5}
# Mechanic's update is x0 - S (Delta - u) - x: optax forms it as new_params - params, one
# rounding of a weight (up to about 3 here: ulp 2.4e-7), where gradxform forms the same
# difference without the params; over 25 steps its scale S, learned from sums that
# cancel, carries the difference on.
MECHANIC_RTOL, MECHANIC_ATOL = 1e-5, 2e-6


def _close(ours, theirs, rtol: float, atol: float) -> str | None:
    """The first step and parameter where the runs differ, or None."""
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for k in a:
            if not np.allclose(a[k], b[k], rtol=rtol, atol=atol):
                worst = float(np.max(np.abs(a[k] - b[k])))
                return f"parameter {k!r} after step {t + 1} (max abs difference {worst:.3g})"
    return None


def assert_same(ours, theirs, rtol: float = RTOL, atol: float = ATOL) -> None:
    where = _close(ours, theirs, rtol, atol)
    assert where is None, f"the runs differ at {where}"


def assert_differ(ours, theirs, rtol: float = RTOL, atol: float = ATOL) -> None:
    assert _close(ours, theirs, rtol, atol) is not None, (
        "the negative control matches: the setting under test makes no difference here"
    )


def run_optax(tx: Any, init, grad):
    with jax.numpy_dtype_promotion("standard"):  # optax relies on implicit promotion
        return run_gradxform(tx, init, grad)


def coupled(weight_decay: float, tx: Any) -> Any:
    """L2 regularisation in the gradient (the packages' ``decouple=False``)."""
    return gx.chain(gx.add_decayed_weights(weight_decay), tx)


# ------------------------------------------------------------------ names and states


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (gx.prodigy, optax.contrib.prodigy),
        (gx.dadapt_adamw, optax.contrib.dadapt_adamw),
        (gx.mechanize, optax.contrib.mechanize),
    ],
    ids=lambda f: f.__name__,
)
def test_takes_optax_contrib_arguments(ours, theirs):
    assert signature_mismatches(ours, theirs) == []


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (gx.ProdigyState, optax.contrib.ProdigyState),
        (gx.DAdaptAdamWState, optax.contrib.DAdaptAdamWState),
        (gx.MechanicState, optax.contrib.MechanicState),
    ],
    ids=lambda c: c.__name__,
)
def test_state_has_optax_contrib_fields(ours, theirs):
    assert ours._fields == theirs._fields


# ------------------------------------------------------------------------- optax


def _decaying(t: Any) -> Any:
    return 1.0 - 0.02 * jax.numpy.asarray(t, jax.numpy.float32)


OPTAX_CASES = [
    ("prodigy", gx.prodigy, optax.contrib.prodigy, {}),
    (
        "prodigy-options",
        gx.prodigy,
        optax.contrib.prodigy,
        dict(
            learning_rate=_decaying,
            betas=(0.8, 0.99),
            beta3=0.9,
            eps=1e-6,
            estim_lr0=1e-4,
            estim_lr_coef=2.0,
            weight_decay=0.1,
        ),
    ),
    (
        "prodigy-safeguard",
        gx.prodigy,
        optax.contrib.prodigy,
        dict(learning_rate=0.5, safeguard_warmup=True),
    ),
    ("dadapt-adamw", gx.dadapt_adamw, optax.contrib.dadapt_adamw, {}),
    (
        "dadapt-adamw-options",
        gx.dadapt_adamw,
        optax.contrib.dadapt_adamw,
        dict(
            learning_rate=_decaying,
            betas=(0.8, 0.99),
            eps=1e-6,
            estim_lr0=1e-4,
            weight_decay=0.1,
        ),
    ),
]


@pytest.mark.parametrize(
    "ours,theirs,kwargs,atol",
    [pytest.param(*c[1:], OPTAX_ATOL.get(c[0], ATOL), id=c[0]) for c in OPTAX_CASES],
)
def test_matches_optax_contrib(ours, theirs, kwargs, atol):
    init, grad = problem()
    ours_run = run_gradxform(ours(**kwargs), init, grad)
    assert_same(ours_run, run_optax(theirs(**kwargs), init, grad), atol=atol)


MECHANIC_CASES = [
    ("sgd", lambda: gx.sgd(0.05), lambda: optax.sgd(0.05), {}),
    ("adam", lambda: gx.adam(0.05), lambda: optax.adam(0.05), {}),
    (
        "momentum-options",
        lambda: gx.sgd(0.05, momentum=0.9),
        lambda: optax.sgd(0.05, momentum=0.9),
        dict(weight_decay=0.1, eps=1e-6, s_init=1e-3, num_betas=3),
    ),
]


@pytest.mark.parametrize(
    "base,optax_base,kwargs", [pytest.param(*c[1:], id=c[0]) for c in MECHANIC_CASES]
)
def test_mechanize_matches_optax_contrib(base, optax_base, kwargs):
    init, grad = problem()
    ours = run_gradxform(gx.mechanize(base(), **kwargs), init, grad)
    theirs = run_optax(optax.contrib.mechanize(optax_base(), **kwargs), init, grad)
    assert_same(ours, theirs, MECHANIC_RTOL, MECHANIC_ATOL)


# ---------------------------------------------------------------------- prodigyopt


def _prodigy(**kwargs: Any) -> Callable[[list[Any]], Any]:
    return lambda params: prodigyopt.Prodigy(params, **kwargs)


# (id, gradxform optimizer, the package's same variant, the package's other setting)
PRODIGY_CASES: list[tuple[str, Callable[[], Any], dict[str, Any], dict[str, Any]]] = [
    (
        "bias-correction",
        lambda: gx.prodigy(),
        dict(use_bias_correction=True),
        dict(use_bias_correction=False),
    ),
    (
        "package-default",
        lambda: gx.prodigy(use_bias_correction=False),
        dict(),
        dict(use_bias_correction=True),
    ),
    (
        "safeguard-warmup",
        lambda: gx.prodigy(0.5, safeguard_warmup=True),
        dict(lr=0.5, use_bias_correction=True, safeguard_warmup=True),
        dict(lr=0.5, use_bias_correction=True, safeguard_warmup=False),
    ),
    (
        "decoupled-decay",
        lambda: gx.prodigy(weight_decay=0.1),
        dict(weight_decay=0.1, use_bias_correction=True),
        dict(weight_decay=0.1, use_bias_correction=True, decouple=False),
    ),
    (
        "coupled-decay",
        lambda: coupled(0.1, gx.prodigy()),
        dict(weight_decay=0.1, use_bias_correction=True, decouple=False),
        dict(weight_decay=0.1, use_bias_correction=True, decouple=True),
    ),
    (
        "coefficients",
        lambda: gx.prodigy(
            betas=(0.8, 0.99), beta3=0.9, eps=1e-6, estim_lr0=1e-4, estim_lr_coef=2.0
        ),
        dict(
            betas=(0.8, 0.99),
            beta3=0.9,
            eps=1e-6,
            d0=1e-4,
            d_coef=2.0,
            use_bias_correction=True,
        ),
        dict(betas=(0.8, 0.99), beta3=0.9, eps=1e-6, d0=1e-4, use_bias_correction=True),
    ),
]


@pytest.mark.parametrize(
    "make,same,other,atol",
    [pytest.param(*c[1:], PRODIGY_ATOL.get(c[0], ATOL), id=c[0]) for c in PRODIGY_CASES],
)
def test_prodigy_matches_prodigyopt(make, same, other, atol):
    init, grad = problem()
    ours = run_gradxform(make(), init, grad)
    assert_same(ours, run_torch(_prodigy(**same), init, grad), atol=atol)
    assert_differ(ours, run_torch(_prodigy(**other), init, grad), atol=atol)


# --------------------------------------------------------------------- dadaptation


def _dadapt_adam(**kwargs: Any) -> Callable[[list[Any]], Any]:
    return lambda params: dadaptation.DAdaptAdam(params, **kwargs)


DADAPT_ADAM_CASES: list[tuple[str, Callable[[], Any], dict[str, Any], dict[str, Any]]] = [
    (
        "bias-correction",
        lambda: gx.dadapt_adamw(),
        dict(decouple=True, use_bias_correction=True),
        dict(decouple=True, use_bias_correction=False),
    ),
    (
        "package-default",
        lambda: gx.dadapt_adamw(use_bias_correction=False),
        dict(decouple=True),
        dict(decouple=True, use_bias_correction=True),
    ),
    (
        "decoupled-decay",
        lambda: gx.dadapt_adamw(weight_decay=0.1),
        dict(weight_decay=0.1, decouple=True, use_bias_correction=True),
        dict(weight_decay=0.1, decouple=False, use_bias_correction=True),
    ),
    (
        "coupled-decay",
        lambda: coupled(0.1, gx.dadapt_adamw()),
        dict(weight_decay=0.1, decouple=False, use_bias_correction=True),
        dict(weight_decay=0.1, decouple=True, use_bias_correction=True),
    ),
    (
        "growth-rate",
        lambda: gx.dadapt_adamw(growth_rate=1.5),
        dict(growth_rate=1.5, decouple=True, use_bias_correction=True),
        dict(decouple=True, use_bias_correction=True),
    ),
    (
        "coefficients",
        lambda: gx.dadapt_adamw(0.5, betas=(0.8, 0.99), eps=1e-6, estim_lr0=1e-4),
        dict(lr=0.5, betas=(0.8, 0.99), eps=1e-6, d0=1e-4, decouple=True, use_bias_correction=True),
        dict(lr=0.5, betas=(0.8, 0.99), eps=1e-6, decouple=True, use_bias_correction=True),
    ),
]


@pytest.mark.parametrize(
    "make,same,other,atol",
    [pytest.param(*c[1:], DADAPT_ADAM_ATOL.get(c[0], ATOL), id=c[0]) for c in DADAPT_ADAM_CASES],
)
def test_dadapt_adamw_matches_dadaptation(make, same, other, atol):
    init, grad = problem()
    ours = run_gradxform(make(), init, grad)
    assert_same(ours, run_torch(_dadapt_adam(**same), init, grad), atol=atol)
    assert_differ(ours, run_torch(_dadapt_adam(**other), init, grad), atol=atol)


def _dadapt_sgd(**kwargs: Any) -> Callable[[list[Any]], Any]:
    return lambda params: dadaptation.DAdaptSGD(params, **kwargs)


DADAPT_SGD_CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("default", {}, {}, dict(momentum=0.9)),
    ("momentum", dict(momentum=0.9), dict(momentum=0.9), {}),
    ("weight-decay", dict(weight_decay=0.1), dict(weight_decay=0.1), {}),
    ("growth-rate", dict(growth_rate=1.5), dict(growth_rate=1.5), {}),
    (
        "coefficients",
        dict(learning_rate=0.5, d0=1e-3, momentum=0.5),
        dict(lr=0.5, d0=1e-3, momentum=0.5),
        dict(lr=0.5, momentum=0.5),
    ),
]


@pytest.mark.parametrize(
    "kwargs,same,other", [pytest.param(*c[1:], id=c[0]) for c in DADAPT_SGD_CASES]
)
def test_dadapt_sgd_matches_dadaptation(kwargs, same, other):
    init, grad = problem()
    ours = run_gradxform(gx.dadapt_sgd(**kwargs), init, grad)
    assert_same(ours, run_torch(_dadapt_sgd(**same), init, grad))
    assert_differ(ours, run_torch(_dadapt_sgd(**other), init, grad))
