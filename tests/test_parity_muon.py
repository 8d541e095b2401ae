"""Muon against optax.contrib, torch.optim.Muon and keras.optimizers.Muon (docs/parity.md).

Each case runs 25 steps on a per-coordinate quadratic plus a fixed noise sequence (every
gradient depends on the iterate) and compares the iterates after every step. Every flag
that selects a variant is checked against the library whose variant it is, and its other
setting must not match (a negative control).

* optax: the same float32 computation, rtol 1e-5.
* torch runs the Newton-Schulz iteration in bfloat16 (``_zeropower_via_newtonschulz``
  casts to bfloat16): its updates are compared step by step, fed the same gradients, to
  bfloat16's precision (BF16_TOL below, measured), not to float32's.
* keras runs the iteration in float32 like gradxform: rtol 1e-5.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests._require import require, require_keras

optax = require("optax", why="optax.contrib.muon parity")
torch = require("torch", why="torch.optim.Muon parity")
keras = require_keras("jax", why="keras.optimizers.Muon parity")

STEPS = 25
RTOL, ATOL = 1e-5, 1e-6
LR = 0.02
D = gx.MuonDimensionNumbers


def problem(shapes: dict[str, tuple[int, ...]], seed: int = 0):
    rng = np.random.default_rng(seed)
    init = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    curvature = {k: rng.uniform(0.2, 1.0, size=v.shape).astype(np.float32) for k, v in init.items()}
    noise = [
        {k: (0.5 * rng.normal(size=v.shape)).astype(np.float32) for k, v in init.items()}
        for _ in range(STEPS)
    ]

    def grad(params: dict[str, np.ndarray], t: int) -> dict[str, np.ndarray]:
        return {k: (curvature[k] * params[k] + noise[t][k]).astype(np.float32) for k in params}

    return init, grad


MATRICES = {"w": (4, 3), "v": (3, 5)}
WITH_BIAS = {"w": (4, 3), "v": (3, 5), "b": (4,)}
STACKED = {"w": (4, 3), "heads": (2, 3, 5), "conv": (3, 3, 2, 4), "b": (4,)}


def run_jax(tx, init, grad, *, promote: bool = False):
    params = {k: jnp.asarray(v) for k, v in init.items()}
    state = tx.init(params)
    update = jax.jit(tx.update)
    out = []
    for t in range(STEPS):
        g = {
            k: jnp.asarray(v)
            for k, v in grad({k: np.asarray(v) for k, v in params.items()}, t).items()
        }
        if promote:  # optax relies on implicit promotion
            with jax.numpy_dtype_promotion("standard"):
                u, state = update(g, state, params)
        else:
            u, state = update(g, state, params)
        params = gx.apply_updates(params, u)
        out.append({k: np.asarray(v) for k, v in params.items()})
    return out


def run_torch(make: Callable[[list[Any]], Any], init, grad):
    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in init.items()}
    opt = make(list(params.values()))
    out = []
    for t in range(STEPS):
        g = grad({k: p.detach().numpy().copy() for k, p in params.items()}, t)
        for k, p in params.items():
            p.grad = torch.tensor(g[k])
        opt.step()
        out.append({k: p.detach().numpy().copy() for k, p in params.items()})
    return out


def run_keras(make: Callable[[], Any], init, grad):
    variables = {k: keras.Variable(v, name=k) for k, v in init.items()}
    opt = make()
    out = []
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        for t in range(STEPS):
            g = grad({k: np.asarray(v.value) for k, v in variables.items()}, t)
            opt.apply_gradients([(g[k], variables[k]) for k in variables])
            out.append({k: np.array(v.value) for k, v in variables.items()})
    return out


def same(ours, theirs, rtol: float = RTOL, atol: float = ATOL) -> bool:
    return all(
        np.allclose(a[k], b[k], rtol=rtol, atol=atol)
        for a, b in zip(ours, theirs, strict=True)
        for k in a
    )


def assert_same_iterates(ours, theirs, rtol: float = RTOL, atol: float = ATOL):
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for k in a:
            np.testing.assert_allclose(
                a[k], b[k], rtol=rtol, atol=atol, err_msg=f"parameter {k!r} after step {t + 1}"
            )


# ------------------------------------------------------------------------- optax

C = optax.contrib
OD = C.MuonDimensionNumbers
PER_STEP = ((3.0, -3.2, 1.2), (3.4445, -4.7750, 2.0315), (2.5, -2.0, 0.6))
GX_DIMS = {"w": D(), "heads": D(1, 2), "conv": D((0, 1, 2), 3), "b": None}
OPTAX_DIMS = {"w": OD(), "heads": OD(1, 2), "conv": OD((0, 1, 2), 3), "b": None}

# (id, shapes, gradxform keywords, optax keywords, the keywords of a negative control)
OPTAX_CASES = [
    ("defaults", WITH_BIAS, {}, {}, {"nesterov": False}),
    ("no-nesterov", WITH_BIAS, {"nesterov": False}, {"nesterov": False}, {"nesterov": True}),
    ("adaptive", WITH_BIAS, {"adaptive": True}, {"adaptive": True}, {"adaptive": False}),
    (
        "consistent-rms",
        WITH_BIAS,
        {"consistent_rms": 0.2},
        {"consistent_rms": 0.2},
        {"consistent_rms": None},
    ),
    (
        "per-step-coeffs",
        WITH_BIAS,
        {"ns_coeffs": PER_STEP, "ns_steps": 3},
        {"ns_coeffs": PER_STEP, "ns_steps": 3},
        {"ns_coeffs": PER_STEP[0], "ns_steps": 3},
    ),
    ("dion", WITH_BIAS, {"ns_coeffs": "dion"}, {"ns_coeffs": "dion"}, {"ns_coeffs": "standard"}),
    (
        "decay-beta-adam",
        WITH_BIAS,
        {"beta": 0.8, "weight_decay": 0.1, "adam_weight_decay": 0.05, "adam_learning_rate": 0.05},
        {"beta": 0.8, "weight_decay": 0.1, "adam_weight_decay": 0.05, "adam_learning_rate": 0.05},
        {"adam_learning_rate": None},
    ),
    (
        "dimension-numbers-3d-4d",
        STACKED,
        {"muon_weight_dimension_numbers": GX_DIMS},
        {"muon_weight_dimension_numbers": OPTAX_DIMS},
        {"muon_weight_dimension_numbers": {**GX_DIMS, "heads": D(2, 1)}},
    ),
    *[
        (
            f"preconditioning-{p}",
            WITH_BIAS,
            {"preconditioning": p},
            {"preconditioning": p},
            {"preconditioning": "frobenius"},
        )
        for p in ("spectral", "aol", "schatten")
    ],
]


# AdamW's leaves at a larger rate: gradxform's bias correction is exact to rounding where
# optax's 1 - b2**t is off by 6e-6 relative (docs/differences.md); measured 1.9e-6 apart.
OPTAX_ATOL = {"decay-beta-adam": 3e-6}


@pytest.mark.parametrize("case", OPTAX_CASES, ids=[c[0] for c in OPTAX_CASES])
def test_same_iterates_as_optax_muon(case):
    name, shapes, ours, theirs, other = case
    init, grad = problem(shapes)
    want = run_jax(C.muon(LR, **theirs), init, grad, promote=True)
    atol = OPTAX_ATOL.get(name, ATOL)
    assert_same_iterates(run_jax(gx.muon(LR, **ours), init, grad), want, atol=atol)
    assert not same(run_jax(gx.muon(LR, **{**ours, **other}), init, grad), want, atol=atol)


@pytest.mark.parametrize("nesterov", [True, False])
def test_scale_by_muon_matches_optax_on_a_batch_of_matrices(nesterov):
    dims = {"w": D(), "heads": D(-1, 0)}
    init, grad = problem({"w": (4, 3), "heads": (5, 2, 3)})
    tx = gx.chain(gx.scale_by_muon(nesterov=nesterov, weight_dimension_numbers=dims), gx.scale(-LR))
    ref = optax.chain(
        C.scale_by_muon(
            nesterov=nesterov, weight_dimension_numbers={"w": OD(), "heads": OD(-1, 0)}
        ),
        optax.scale(-LR),
    )
    assert_same_iterates(run_jax(tx, init, grad), run_jax(ref, init, grad, promote=True))


# ------------------------------------------------------------------------- torch

TD = D(reduction_axis=1, output_axis=0)  # torch's weights are (fan_out, fan_in)


def torch_like(**kw: Any) -> Any:
    defaults = {"bias_correction": False, "ns_dtype": jnp.bfloat16, "weight_decay": 0.1}
    return gx.muon(LR, eps=1e-7, muon_weight_dimension_numbers=TD, **{**defaults, **kw})


def lockstep_gap(tx, kw: dict[str, Any]) -> float:
    """The largest gap between gradxform's and torch's update, relative to torch's largest
    entry, over 25 steps fed the same gradients at torch's iterates (so the bfloat16
    rounding of one step is not carried into the next step's gradient)."""
    init, grad = problem(MATRICES)
    theirs = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in init.items()}
    opt = torch.optim.Muon(list(theirs.values()), lr=LR, **kw)
    state = tx.init({k: jnp.asarray(v) for k, v in init.items()})
    update = jax.jit(tx.update)
    worst = 0.0
    for t in range(STEPS):
        before = {k: p.detach().numpy().copy() for k, p in theirs.items()}
        g = grad(before, t)
        for k, p in theirs.items():
            p.grad = torch.tensor(g[k])
        opt.step()
        params = {k: jnp.asarray(v) for k, v in before.items()}
        u, state = update({k: jnp.asarray(v) for k, v in g.items()}, state, params)
        for k, p in theirs.items():
            want = p.detach().numpy() - before[k]
            gap = np.max(np.abs(np.asarray(u[k]) - want)) / np.max(np.abs(want))
            worst = max(worst, float(gap))
    return worst


# torch runs the iteration in bfloat16 (8 bits) with its own rounding order (one addmm
# for b*A + c*A@A), so two bfloat16 iterations differ by their independent roundings:
# measured at most 15% of the update's largest entry with ns_dtype=bfloat16 (6% with
# float32, which carries only torch's rounding). A different variant moves it by 40% or
# more (no Nesterov, another scale, another decay, the bias correction).
BF16_TOL = 0.2

# (id, gradxform, torch keywords, a gradxform negative control)
TORCH_CASES = [
    ("defaults", torch_like(), {}, torch_like(bias_correction=True)),
    (
        "defaults-float32-iteration",
        torch_like(ns_dtype=jnp.float32),
        {},
        torch_like(nesterov=False),
    ),
    ("original", torch_like(), {"adjust_lr_fn": "original"}, torch_like(consistent_rms=0.2)),
    (
        "match-rms-adamw",
        torch_like(consistent_rms=0.2),
        {"adjust_lr_fn": "match_rms_adamw"},
        torch_like(),
    ),
    ("no-nesterov", torch_like(nesterov=False), {"nesterov": False}, torch_like()),
    ("weight-decay", torch_like(weight_decay=0.5), {"weight_decay": 0.5}, torch_like()),
]


@pytest.mark.parametrize(
    "ours,kw,other", [c[1:] for c in TORCH_CASES], ids=[c[0] for c in TORCH_CASES]
)
def test_same_updates_as_torch_muon(ours, kw, other):
    assert lockstep_gap(ours, kw) < BF16_TOL
    assert lockstep_gap(other, kw) > 2 * BF16_TOL


def test_bfloat16_iteration_rounds_to_bfloat16():
    """``ns_dtype=jnp.bfloat16`` runs the iteration in bfloat16 (as torch does): its result
    differs from float32's by bfloat16's rounding, not by float32's."""
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 6)), jnp.float32)
    tx16, tx32 = gx.scale_by_muon(ns_dtype=jnp.bfloat16), gx.scale_by_muon()
    u16, _ = tx16.update(x, tx16.init(x))
    u32, _ = tx32.update(x, tx32.init(x))
    assert u16.dtype == jnp.float32
    gap = float(jnp.max(jnp.abs(u16 - u32)))
    assert 1e-3 < gap < 0.1, gap


# ------------------------------------------------------------------------- keras

K = keras.optimizers


def keras_like(**kw: Any) -> Any:
    defaults = {"weight_decay": 0.004, "adam_weight_decay": 0.004, "consistent_rms": 0.2}
    return gx.muon(LR, eps=1e-12, **{"bias_correction": False, **defaults, **kw})


# (id, shapes, gradxform, keras keywords, a gradxform negative control). keras' AdamW step
# is Adam's without Nesterov and with eps added before the bias correction: the cases with
# AdamW leaves run nesterov=False, and both sides eps=1e-12 (keras' epsilon is only
# AdamW's; its iteration adds 1e-7 to the norm, 1e-7 relative). keras decays AdamW's
# leaves at the full learning rate, not at adam_lr_ratio times it: adam-lr-ratio runs
# without AdamW decay.
KERAS_CASES = [
    ("defaults", MATRICES, keras_like(), {}, keras_like(bias_correction=True)),
    ("rms-rate", MATRICES, keras_like(consistent_rms=0.1), {"rms_rate": 0.1}, keras_like()),
    (
        "no-rms-rate",
        MATRICES,
        keras_like(consistent_rms=None, width_scaling=False),
        {"rms_rate": None},
        keras_like(consistent_rms=None),
    ),
    (
        "no-nesterov-adamw",
        WITH_BIAS,
        keras_like(nesterov=False),
        {"nesterov": False},
        keras_like(nesterov=False, adam_learning_rate=0.5 * LR),
    ),
    (
        "adam-lr-ratio",
        WITH_BIAS,
        keras_like(nesterov=False, adam_learning_rate=0.5 * LR, adam_weight_decay=0.0),
        {"nesterov": False, "adam_lr_ratio": 0.5, "adam_weight_decay": 0.0},
        keras_like(nesterov=False, adam_weight_decay=0.0),
    ),
    (
        "exclude-embeddings",
        {"w": (4, 3), "embedding": (6, 3)},
        keras_like(nesterov=False, muon_weight_dimension_numbers={"w": D(), "embedding": None}),
        {"nesterov": False},
        keras_like(nesterov=False),
    ),
]


@pytest.mark.parametrize(
    "shapes,ours,kw,other", [c[1:] for c in KERAS_CASES], ids=[c[0] for c in KERAS_CASES]
)
def test_same_iterates_as_keras_muon(shapes, ours, kw, other):
    init, grad = problem(shapes)
    want = run_keras(lambda: K.Muon(LR, epsilon=1e-12, **kw), init, grad)
    assert_same_iterates(run_jax(ours, init, grad), want)
    assert not same(run_jax(other, init, grad), want)
