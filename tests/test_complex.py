"""Complex parameters, wherever optax supports them, and the refusals where the math has none.

For complex gradients the first moments are complex and the second moments are moving
averages of ``|g|**2 = g * conj(g)`` (real). Each primitive is checked against a NumPy
reference written here from its equations in complex128 arithmetic, at its defaults and
at other hyperparameters; the optimizers that optax also has are checked against optax's,
state dtypes included. The sign methods and FTRL have no complex form: they refuse
complex leaves by key path.

The same file checks that the primitives optax also has take optax's positional
arguments and keywords (gradxform's own options are keyword-only, after optax's) and keep
optax's state fields, and Lion's ``mode``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx

STEPS = 10
RTOL, ATOL = 1e-5, 1e-7


def _complex(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def complex_params() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "layer": {"w": jnp.asarray(_complex(rng, (3, 2)), jnp.complex64)},
        "z": jnp.asarray(_complex(rng, (2,)), jnp.complex64),
    }


def complex_grads(params: Any, steps: int = STEPS, seed: int = 1) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [
        jax.tree.map(lambda p: jnp.asarray(_complex(rng, p.shape), p.dtype), params)
        for _ in range(steps)
    ]


def run(tx: Any, params: Any, grads: list[Any], *, jit: bool = False, apply: Any = None):
    """The updates of every step, and the final state."""
    update = jax.jit(tx.update) if jit else tx.update
    apply = apply or gx.apply_updates
    state, out = tx.init(params), []
    for g in grads:
        u, state = update(g, state, params)
        params = apply(params, u)
        out.append(u)
    return out, state


def abs2(g: np.ndarray) -> np.ndarray:
    return (g * np.conj(g)).real


# -------------------------------------------------------------- NumPy references
#
# Each reference maps the gradient sequence of one leaf (complex128) to its updates.


def ref_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, nesterov=False):
    def run_leaf(gs):
        m, v, out = 0.0, 0.0, []
        for t, g in enumerate(gs, 1):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * abs2(g)
            if nesterov:
                m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
            else:
                m_hat = m / (1 - b1**t)
            out.append(m_hat / (np.sqrt(v / (1 - b2**t) + eps_root) + eps))
        return out

    return run_leaf


def ref_amsgrad(
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    bias_correction_mu=True,
    bias_correction_nu=True,
    amsgrad_max="corrected",
):
    def run_leaf(gs):
        m, v, v_max, out = 0.0, 0.0, 0.0, []
        for t, g in enumerate(gs, 1):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * abs2(g)
            if amsgrad_max == "raw":
                v_max = np.maximum(v_max, v)
                v_tilde = v_max / (1 - b2**t)
            else:
                v_max = np.maximum(v_max, v / (1 - b2**t) if bias_correction_nu else v)
                v_tilde = v_max
            m_hat = m / (1 - b1**t) if bias_correction_mu else m
            out.append(m_hat / (np.sqrt(v_tilde + eps_root) + eps))
        return out

    return run_leaf


def ref_adamax(b1=0.9, b2=0.999, eps=1e-8, eps_in_max=False):
    def run_leaf(gs):
        m, u, out = 0.0, 0.0, []
        for t, g in enumerate(gs, 1):
            m = b1 * m + (1 - b1) * g
            if eps_in_max:
                u = np.maximum(b2 * u, np.abs(g) + eps)
                out.append(m / (1 - b1**t) / u)
            else:
                u = np.maximum(b2 * u, np.abs(g))
                out.append(m / (1 - b1**t) / (u + eps))
        return out

    return run_leaf


def ref_radam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, threshold=5.0, nesterov=False):
    rho_inf = 2 / (1 - b2) - 1

    def run_leaf(gs):
        m, v, out = 0.0, 0.0, []
        for t, g in enumerate(gs, 1):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * abs2(g)
            if nesterov:
                m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
            else:
                m_hat = m / (1 - b1**t)
            rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
            if rho > threshold:
                r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
                out.append(r * m_hat / (np.sqrt(v / (1 - b2**t) + eps_root) + eps))
            else:
                out.append(m_hat)
        return out

    return run_leaf


def ref_belief(b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, nesterov=False):
    def run_leaf(gs):
        m, s, out = 0.0, 0.0, []
        for t, g in enumerate(gs, 1):
            m = b1 * m + (1 - b1) * g
            s = b2 * s + (1 - b2) * abs2(g - m) + eps_root
            if nesterov:
                m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
            else:
                m_hat = m / (1 - b1**t)
            out.append(m_hat / (np.sqrt(s / (1 - b2**t)) + eps))
        return out

    return run_leaf


def ref_yogi(b1=0.9, b2=0.999, eps=1e-3, eps_root=0.0, initial_accumulator_value=1e-6):
    def run_leaf(gs):
        m, v, out = 0.0, initial_accumulator_value, []
        for t, g in enumerate(gs, 1):
            m = b1 * m + (1 - b1) * g
            v = v - (1 - b2) * np.sign(v - abs2(g)) * abs2(g)
            out.append(m / (1 - b1**t) / (np.sqrt(v / (1 - b2**t) + eps_root) + eps))
        return out

    return run_leaf


def ref_rms(
    decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True, bias_correction=False, centered=False
):
    def run_leaf(gs):
        mu, nu, out = 0.0, initial_scale, []
        for t, g in enumerate(gs, 1):
            nu = decay * nu + (1 - decay) * abs2(g)
            mu = decay * mu + (1 - decay) * g
            c = 1 - decay**t if bias_correction else 1.0
            s = nu / c - (abs2(mu / c) if centered else 0.0)
            s = np.maximum(s, 0.0)
            out.append(g / np.sqrt(s + eps) if eps_in_sqrt else g / (np.sqrt(s) + eps))
        return out

    return run_leaf


def ref_adagrad(initial_accumulator_value=0.1, eps=1e-7, eps_in_sqrt=True):
    def run_leaf(gs):
        s, out = initial_accumulator_value, []
        for g in gs:
            s = s + abs2(g)
            out.append(g / np.sqrt(s + eps) if eps_in_sqrt else g / (np.sqrt(s) + eps))
        return out

    return run_leaf


def ref_adadelta(rho=0.9, eps=1e-6):
    def run_leaf(gs):
        e_g, e_x, out = 0.0, 0.0, []
        for g in gs:
            e_g = rho * e_g + (1 - rho) * abs2(g)
            d = np.sqrt(e_x + eps) / np.sqrt(e_g + eps) * g
            e_x = rho * e_x + (1 - rho) * abs2(d)
            out.append(d)
        return out

    return run_leaf


def ref_momentum(decay=0.9, nesterov=False, ema=False):
    w = (1 - decay) if ema else 1.0

    def run_leaf(gs):
        v, out = 0.0, []
        for g in gs:
            v = decay * v + w * g
            out.append(w * g + decay * v if nesterov else v)
        return out

    return run_leaf


def ref_ema(decay, debias=True):
    def run_leaf(gs):
        e, out = 0.0, []
        for t, g in enumerate(gs, 1):
            e = decay * e + (1 - decay) * g
            out.append(e / (1 - decay**t) if debias else e)
        return out

    return run_leaf


# (id, gradxform factory, its kwargs, the reference for these kwargs)
CASES: list[tuple[str, Callable[..., Any], dict[str, Any], Callable[..., Any]]] = [
    ("adam", gx.scale_by_adam, {}, ref_adam()),
    (
        "adam-hyper",
        gx.scale_by_adam,
        dict(b1=0.5, b2=0.9, eps=1e-3, eps_root=1e-4),
        ref_adam(0.5, 0.9, 1e-3, 1e-4),
    ),
    ("adam-nesterov", gx.scale_by_adam, dict(b1=0.8, nesterov=True), ref_adam(0.8, nesterov=True)),
    ("amsgrad", gx.scale_by_amsgrad, {}, ref_amsgrad()),
    (
        "amsgrad-hyper",
        gx.scale_by_amsgrad,
        dict(b1=0.5, b2=0.9, eps=1e-3, eps_root=1e-4),
        ref_amsgrad(0.5, 0.9, 1e-3, 1e-4),
    ),
    (
        "amsgrad-raw",
        gx.scale_by_amsgrad,
        dict(b2=0.9, amsgrad_max="raw"),
        ref_amsgrad(b2=0.9, amsgrad_max="raw"),
    ),
    (
        "amsgrad-uncorrected-mu",
        gx.scale_by_amsgrad,
        dict(b2=0.9, bias_correction_mu=False),
        ref_amsgrad(b2=0.9, bias_correction_mu=False),
    ),
    (
        "amsgrad-uncorrected-nu",
        gx.scale_by_amsgrad,
        dict(b2=0.9, bias_correction_nu=False),
        ref_amsgrad(b2=0.9, bias_correction_nu=False),
    ),
    ("adamax", gx.scale_by_adamax, {}, ref_adamax()),
    (
        "adamax-hyper",
        gx.scale_by_adamax,
        dict(b1=0.5, b2=0.8, eps=1e-2),
        ref_adamax(0.5, 0.8, 1e-2),
    ),
    (
        "adamax-eps-in-max",
        gx.scale_by_adamax,
        dict(eps=1e-2, eps_in_max=True),
        ref_adamax(eps=1e-2, eps_in_max=True),
    ),
    ("radam", gx.scale_by_radam, dict(b2=0.99), ref_radam(b2=0.99)),
    (
        "radam-hyper",
        gx.scale_by_radam,
        dict(b1=0.5, b2=0.9, eps=1e-3, eps_root=1e-4, threshold=4.5, nesterov=True),
        ref_radam(0.5, 0.9, 1e-3, 1e-4, 4.5, nesterov=True),
    ),
    ("belief", gx.scale_by_belief, {}, ref_belief()),
    (
        "belief-hyper",
        gx.scale_by_belief,
        dict(b1=0.5, b2=0.9, eps=1e-3, eps_root=1e-4),
        ref_belief(0.5, 0.9, 1e-3, 1e-4),
    ),
    (
        "belief-nesterov",
        gx.scale_by_belief,
        dict(b1=0.8, nesterov=True),
        ref_belief(0.8, nesterov=True),
    ),
    ("yogi", gx.scale_by_yogi, {}, ref_yogi()),
    (
        "yogi-hyper",
        gx.scale_by_yogi,
        dict(b1=0.5, b2=0.9, eps=1e-2, eps_root=1e-4, initial_accumulator_value=0.5),
        ref_yogi(0.5, 0.9, 1e-2, 1e-4, 0.5),
    ),
    ("rms", gx.scale_by_rms, {}, ref_rms()),
    (
        "rms-hyper",
        gx.scale_by_rms,
        dict(decay=0.5, eps=1e-3, initial_scale=0.5, eps_in_sqrt=False),
        ref_rms(0.5, 1e-3, 0.5, eps_in_sqrt=False),
    ),
    (
        "rms-bias-correction",
        gx.scale_by_rms,
        dict(decay=0.8, bias_correction=True),
        ref_rms(0.8, bias_correction=True),
    ),
    ("rms-centered", gx.scale_by_rms, dict(decay=0.8, centered=True), ref_rms(0.8, centered=True)),
    ("stddev", gx.scale_by_stddev, {}, ref_rms(centered=True)),
    (
        "stddev-corrected",
        gx.scale_by_stddev,
        dict(decay=0.8, eps=0.1, bias_correction=True),
        ref_rms(0.8, 0.1, bias_correction=True, centered=True),
    ),
    ("adagrad", gx.scale_by_adagrad, {}, ref_adagrad()),
    (
        "adagrad-hyper",
        gx.scale_by_adagrad,
        dict(initial_accumulator_value=0.0, eps=1e-4, eps_in_sqrt=False),
        ref_adagrad(0.0, 1e-4, eps_in_sqrt=False),
    ),
    ("adadelta", gx.scale_by_adadelta, {}, ref_adadelta()),
    ("adadelta-hyper", gx.scale_by_adadelta, dict(rho=0.5, eps=1e-3), ref_adadelta(0.5, 1e-3)),
    ("momentum", gx.scale_by_momentum, dict(decay=0.5), ref_momentum(0.5)),
    ("momentum-nesterov", gx.scale_by_momentum, dict(nesterov=True), ref_momentum(nesterov=True)),
    (
        "momentum-ema-nesterov",
        gx.scale_by_momentum,
        dict(decay=0.8, ema=True, nesterov=True),
        ref_momentum(0.8, nesterov=True, ema=True),
    ),
    ("trace", gx.trace, dict(decay=0.7, nesterov=True), ref_momentum(0.7, nesterov=True)),
    ("ema", gx.ema, dict(decay=0.8), ref_ema(0.8)),
    ("ema-biased", gx.ema, dict(decay=0.5, debias=False), ref_ema(0.5, debias=False)),
]
CASE_IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_complex_matches_numpy_reference(case):
    _, factory, kwargs, reference = case
    params = complex_params()
    grads = complex_grads(params)
    ours, state = run(factory(**kwargs), params, grads)
    leaves = [jax.tree.leaves(g) for g in grads]
    for i in range(len(leaves[0])):
        want = reference([np.asarray(step[i], np.complex128) for step in leaves])
        for t in range(STEPS):
            got = jax.tree.leaves(ours[t])[i]
            assert got.dtype == jnp.complex64
            np.testing.assert_allclose(
                got, want[t], rtol=RTOL, atol=ATOL, err_msg=f"leaf {i}, step {t + 1}"
            )
    # Every parameter-shaped state leaf keeps the parameter's dtype (complex64), as optax's.
    for x in jax.tree.leaves(state):
        if x.ndim:
            assert x.dtype == jnp.complex64


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_complex_jit_equals_eager(case):
    _, factory, kwargs, _ = case
    params = complex_params()
    grads = complex_grads(params, steps=4)
    eager, s1 = run(factory(**kwargs), params, grads)
    jitted, s2 = run(factory(**kwargs), params, grads, jit=True)
    chex.assert_trees_all_close(eager, jitted, rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_close(s1, s2, rtol=1e-6, atol=1e-7)


def test_second_moments_stay_real_valued():
    """A second moment kept in a complex dtype has a zero imaginary part throughout."""
    params = complex_params()
    _, state = run(gx.adam(0.1), params, complex_grads(params))
    for x in jax.tree.leaves(state[0].nu):
        assert x.dtype == jnp.complex64
        np.testing.assert_array_equal(np.imag(x), 0.0)
        assert np.all(np.real(x) > 0)


def test_real_nu_dtype_for_complex_params_gives_the_same_updates():
    params = complex_params()
    grads = complex_grads(params)
    default, _ = run(gx.adam(0.1), params, grads)
    halved, state = run(gx.adam(0.1, nu_dtype=jnp.float32), params, grads)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state[0].nu))
    chex.assert_trees_all_close(default, halved, rtol=1e-6)
    rms_default, _ = run(gx.rmsprop(0.1), params, grads)
    rms_real, state = run(
        gx.chain(gx.scale_by_rms(nu_dtype=jnp.float32), gx.scale_by_learning_rate(0.1)),
        params,
        grads,
    )
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state[0].nu))
    chex.assert_trees_all_close(rms_default, rms_real, rtol=1e-6)


# ------------------------------------------------------------------ against optax

# (id, gradxform optimizer, optax optimizer): the same name and arguments unless stated.
OPTAX = [
    ("adam", gx.adam(0.1), optax.adam(0.1)),
    (
        "adam-hyper",
        gx.adam(0.05, b1=0.5, b2=0.9, eps=1e-3, eps_root=1e-4),
        optax.adam(0.05, b1=0.5, b2=0.9, eps=1e-3, eps_root=1e-4),
    ),
    ("adamw", gx.adamw(0.1, weight_decay=0.1), optax.adamw(0.1, weight_decay=0.1)),
    ("nadam", gx.nadam(0.1), optax.nadam(0.1)),
    ("nadamw", gx.nadamw(0.1), optax.nadamw(0.1)),
    ("amsgrad", gx.amsgrad(0.1, amsgrad_max="corrected"), optax.amsgrad(0.1)),
    ("adamax", gx.adamax(0.1), optax.adamax(0.1)),
    ("adamaxw", gx.adamaxw(0.1), optax.adamaxw(0.1)),
    ("radam", gx.radam(0.1, b2=0.99), optax.radam(0.1, b2=0.99)),
    ("adabelief", gx.adabelief(0.1), optax.adabelief(0.1)),
    ("rmsprop", gx.rmsprop(0.1), optax.rmsprop(0.1)),
    (
        "rmsprop-centered-momentum",
        gx.rmsprop(0.1, decay=0.8, centered=True, momentum=0.5),
        optax.rmsprop(0.1, decay=0.8, centered=True, momentum=0.5),
    ),
    ("adagrad", gx.adagrad(0.3), optax.adagrad(0.3)),
    ("sgd-momentum", gx.sgd(0.1, momentum=0.9), optax.sgd(0.1, momentum=0.9)),
    (
        "sgd-nesterov",
        gx.sgd(0.1, momentum=0.9, nesterov=True),
        optax.sgd(0.1, momentum=0.9, nesterov=True),
    ),
    (
        "scale_by_adam-nesterov",
        gx.scale_by_adam(b1=0.8, nesterov=True),
        optax.scale_by_adam(b1=0.8, nesterov=True),
    ),
    (
        "scale_by_amsgrad-paper",
        gx.scale_by_amsgrad(b2=0.9, bias_correction_mu=False, bias_correction_nu=False),
        optax.scale_by_amsgrad(b2=0.9, bias_correction_mu=False, bias_correction_nu=False),
    ),
    (
        "scale_by_radam-nesterov",
        gx.scale_by_radam(b2=0.99, nesterov=True),
        optax.scale_by_radam(b2=0.99, nesterov=True),
    ),
    (
        "scale_by_belief-nesterov",
        gx.scale_by_belief(nesterov=True),
        optax.scale_by_belief(nesterov=True),
    ),
    (
        "scale_by_rms-corrected",
        gx.scale_by_rms(0.8, 1e-3, 0.1, False, True),
        optax.scale_by_rms(0.8, 1e-3, 0.1, False, True),
    ),
    ("scale_by_stddev", gx.scale_by_stddev(0.8), optax.scale_by_stddev(0.8)),
    (
        "scale_by_stddev-corrected",
        gx.scale_by_stddev(0.8, 0.1, bias_correction=True),
        optax.scale_by_stddev(0.8, 0.1, bias_correction=True),
    ),
    ("trace", gx.trace(0.7, nesterov=True), optax.trace(0.7, nesterov=True)),
    ("ema", gx.ema(0.8), optax.ema(0.8)),
]


@pytest.mark.parametrize("case", OPTAX, ids=[c[0] for c in OPTAX])
def test_complex_matches_optax(case):
    _, ours_tx, theirs_tx = case
    params = complex_params()
    grads = complex_grads(params)
    ours, our_state = run(ours_tx, params, grads)
    with jax.numpy_dtype_promotion("standard"):  # optax relies on implicit promotion
        theirs, their_state = run(theirs_tx, params, grads, apply=optax.apply_updates)
    # 2e-5: optax's bias correction 1 - b**t is off by up to 6e-6, and its RAdam length
    # rho_t by up to 1.4e-4 in float32 (docs/differences.md); both are exact here.
    rtol = 2e-4 if "radam" in case[0] else 2e-5
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        chex.assert_trees_all_close(a, b, rtol=rtol, atol=1e-6, custom_message=f"step {t + 1}")
    # Same state fields, leaves and dtypes (a complex second moment included).
    ours_leaves = jax.tree_util.tree_leaves_with_path(our_state)
    their_leaves = jax.tree_util.tree_leaves_with_path(their_state)
    assert [jax.tree_util.keystr(p) for p, _ in ours_leaves] == [
        jax.tree_util.keystr(p) for p, _ in their_leaves
    ]
    assert [x.dtype for _, x in ours_leaves] == [x.dtype for _, x in their_leaves]


def test_complex_optimization_converges_like_optax_test():
    """optax's own check: a complex parabola is minimized with conjugated gradients."""
    target = jnp.array([1.0, -1.0, 1.0], jnp.complex64) * (1 + 1j)
    for tx in [
        gx.adam(0.1),
        gx.rmsprop(5e-3),
        gx.yogi(0.1),
        gx.adadelta(0.1),
        gx.adabelief(1e-2),
        gx.sgd(1e-3, momentum=0.9),
    ]:

        def step(_, carry, tx=tx):
            params, state = carry
            g = jax.grad(lambda p: jnp.sum(jnp.abs(p - target) ** 2))(params)
            u, state = tx.update(jnp.conj(g), state, params)
            return gx.apply_updates(params, u), state

        params = jnp.array([-1.0, 10.0, 1.0], jnp.complex64)
        params, _ = jax.jit(lambda c: jax.lax.fori_loop(0, 10000, step, c))(
            (params, tx.init(params))
        )
        np.testing.assert_allclose(params, target, atol=3e-2, rtol=3e-2)


# ------------------------------------------------------------------------ dtypes


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("params_dtype", [jnp.float32, jnp.complex64])
def test_complex_state_dtype_argument(name, params_dtype):
    """A complex ``mu_dtype``/``accumulator_dtype`` is accepted, for real params too."""
    if name == "sgd":
        tx, field = gx.sgd(0.1, momentum=0.9, accumulator_dtype=jnp.complex64), "trace"
        plain = gx.sgd(0.1, momentum=0.9)
    else:
        tx, field = getattr(gx, name)(0.1, mu_dtype=jnp.complex64), "mu"
        plain = getattr(gx, name)(0.1)
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=3), jnp.float32).astype(params_dtype)}
    grads = [jax.tree.map(lambda p, k=k: p * (k + 1) - 0.3, params) for k in range(4)]
    ours, state = run(tx, params, grads)
    assert getattr(state[0], field)["w"].dtype == jnp.complex64
    want, _ = run(plain, params, grads)
    for a, b in zip(ours, want, strict=True):
        assert a["w"].dtype == params_dtype  # an update keeps its gradient's dtype
        chex.assert_trees_all_close(a, b, rtol=1e-6)


def test_real_mu_dtype_for_complex_params_refuses_the_update_by_key_path():
    """The state can be created (optax's test_explicit_dtype), but a real ``mu`` cannot
    hold a complex first moment."""
    params = complex_params()
    for tx, arg in [
        (gx.adam(0.1, mu_dtype=jnp.bfloat16), r"mu_dtype=bfloat16"),
        (gx.sgd(0.1, momentum=0.9, accumulator_dtype=jnp.float32), r"accumulator_dtype=float32"),
        (gx.scale_by_rms(centered=True, nu_dtype=jnp.float32), r"nu_dtype=float32"),
    ]:
        state = tx.init(params)
        with pytest.raises(TypeError, match=rf"'layer/w' is complex.*{arg}.*imaginary"):
            tx.update(params, state, params)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_complex_gradient_for_real_param_names_the_key_path(case):
    _, factory, kwargs, _ = case
    params = jax.tree.map(lambda z: jnp.real(z), complex_params())
    tx = factory(**kwargs)
    with pytest.raises(TypeError, match=r"'layer/w' is complex.*real.*imaginary part"):
        tx.update(complex_params(), tx.init(params), params)


@pytest.mark.parametrize(
    "dtype_arg", [dict(mu_dtype=jnp.complex64), dict(accumulator_dtype=jnp.complex64)]
)
def test_unsupported_complex_state_dtypes_are_refused_at_construction(dtype_arg):
    factory = gx.scale_by_lion if "mu_dtype" in dtype_arg else gx.ftrl
    args = () if "mu_dtype" in dtype_arg else (0.1,)
    with pytest.raises(TypeError, match=r"dtype=.*must be a real floating-point dtype"):
        factory(*args, **dtype_arg)
    with pytest.raises(TypeError, match=r"mu_dtype=.*floating-point or complex"):
        gx.adam(0.1, mu_dtype=jnp.int32)


# --------------------------------------------------- where the math has no complex form

REFUSED = [
    ("sign_sgd", lambda: gx.sign_sgd(0.1), r"sign of a complex number"),
    ("signum", lambda: gx.signum(0.1), r"sign of a complex number"),
    ("scale_by_sign", gx.scale_by_sign, r"sign of a complex number"),
    ("lion", lambda: gx.lion(0.1), r"sign of a complex number"),
    ("scale_by_lion", lambda: gx.scale_by_lion(mode="refined"), r"sign of a complex number"),
    ("ftrl", lambda: gx.ftrl(0.1), r"FTRL"),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_refusals_name_the_key_path_and_the_reason(case):
    _, make, reason = case
    params = complex_params()
    tx = make()
    with pytest.raises(TypeError, match=rf"'layer/w' is complex.*{reason}"):
        tx.update(params, tx.init(params), params)


# --------------------------------------------------------- optax's signatures and states

SAME_NAMED = [
    "scale_by_rms",
    "scale_by_stddev",
    "scale_by_adam",
    "scale_by_amsgrad",
    "scale_by_adamax",
    "scale_by_radam",
    "scale_by_belief",
    "scale_by_yogi",
    "scale_by_lion",
    "scale_by_adadelta",
    "scale_by_sign",
    "trace",
    "ema",
]


@pytest.mark.parametrize("name", SAME_NAMED)
def test_signature_extends_optax(name):
    """optax's parameters first, in its order, kinds and defaults; gradxform's own after,
    keyword-only."""
    theirs = list(inspect.signature(getattr(optax, name)).parameters.values())
    ours = list(inspect.signature(getattr(gx, name)).parameters.values())
    assert [p.name for p in ours[: len(theirs)]] == [p.name for p in theirs]
    for a, b in zip(ours, theirs, strict=False):
        assert a.kind == b.kind, a.name
        assert a.default == b.default, a.name
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in ours[len(theirs) :])


STATES = [
    ("scale_by_adam", {}),
    ("scale_by_amsgrad", {}),
    ("scale_by_adamax", {}),
    ("scale_by_radam", {}),
    ("scale_by_belief", {}),
    ("scale_by_yogi", {}),
    ("scale_by_lion", {}),
    ("scale_by_adadelta", {}),
    ("scale_by_rms", {}),
    ("scale_by_rms", dict(bias_correction=True)),
    ("scale_by_stddev", {}),
    ("scale_by_stddev", dict(bias_correction=True)),
    ("trace", dict(decay=0.9)),
    ("ema", dict(decay=0.9)),
]


@pytest.mark.parametrize("name,kwargs", STATES, ids=[f"{n}-{k}" for n, k in STATES])
def test_state_class_and_fields_are_optax(name, kwargs):
    params = {"w": jnp.zeros(3)}
    ours = getattr(gx, name)(**kwargs).init(params)
    theirs = getattr(optax, name)(**kwargs).init(params)
    assert type(ours).__name__.lower() == type(theirs).__name__.lower()
    assert ours._fields == theirs._fields
    assert getattr(gx, type(ours).__name__) is type(ours)  # exported under its name


# ----------------------------------------------------------------------- Lion's modes


def ref_lion(b1=0.9, b2=0.99, mode="hard", smooth_beta=1.0):
    def run_leaf(gs):
        m, out = 0.0, []
        for g in gs:
            c = b1 * m + (1 - b1) * g
            if mode == "smooth":
                out.append(np.tanh(smooth_beta * c))
            elif mode == "refined":
                out.append(np.where(np.abs(c) < 1, c, np.sign(c)))
            else:
                out.append(np.sign(c))
            m = b2 * m + (1 - b2) * g
        return out

    return run_leaf


LION = [
    dict(),
    dict(b1=0.5, b2=0.9, mode="smooth", smooth_beta=2.0),
    dict(mode="smooth"),
    dict(b1=0.5, b2=0.9, mode="refined"),
    dict(mode="hard", smooth_beta=2.0),  # as optax's test: smooth_beta is unused here
]


@pytest.mark.parametrize("kwargs", LION, ids=[str(k) for k in LION])
def test_lion_modes_match_numpy_reference_and_optax(kwargs):
    rng = np.random.default_rng(0)
    params = {"a": jnp.zeros(5), "b": jnp.zeros((2, 3))}
    # Gradients of size about 1, so that "refined" takes both of its branches.
    grads = [
        jax.tree.map(lambda p: jnp.asarray(2 * rng.normal(size=p.shape), p.dtype), params)
        for _ in range(STEPS)
    ]
    ours, state = run(gx.scale_by_lion(**kwargs), params, grads)
    assert int(state.count) == STEPS
    leaves = [jax.tree.leaves(g) for g in grads]
    for i in range(len(leaves[0])):
        want = ref_lion(**kwargs)([np.asarray(step[i], np.float64) for step in leaves])
        for t in range(STEPS):
            np.testing.assert_allclose(
                jax.tree.leaves(ours[t])[i],
                want[t],
                rtol=RTOL,
                atol=ATOL,
                err_msg=f"leaf {i}, step {t + 1}",
            )
    with jax.numpy_dtype_promotion("standard"):
        theirs, their_state = run(
            optax.scale_by_lion(**kwargs), params, grads, apply=optax.apply_updates
        )
    chex.assert_trees_all_close(ours, theirs, rtol=RTOL, atol=ATOL)
    chex.assert_trees_all_close(tuple(state), tuple(their_state), rtol=RTOL, atol=ATOL)


def test_lion_refined_is_linear_below_one():
    tx = gx.scale_by_lion(b1=0.0, mode="refined")
    g = jnp.array([0.25, -0.5, 3.0, -1.0])
    np.testing.assert_allclose(tx.update(g, tx.init(g))[0], [0.25, -0.5, 1.0, -1.0])


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(mode="invalid_mode"), ValueError, r"mode='invalid_mode' must be one of"),
        (dict(mode="smooth", smooth_beta=0.0), ValueError, r"smooth_beta=0.0 must be > 0"),
        (dict(mode="smooth", smooth_beta=-1.0), ValueError, r"smooth_beta=-1.0"),
    ],
)
def test_lion_bad_modes_are_refused_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        gx.scale_by_lion(**kwargs)


def test_amsgrad_raw_maximum_needs_the_nu_correction():
    with pytest.raises(ValueError, match=r"amsgrad_max='raw' has no effect"):
        gx.scale_by_amsgrad(bias_correction_nu=False, amsgrad_max="raw")
    with pytest.raises(ValueError, match=r"eps_uncorrected=True has no effect"):
        gx.scale_by_amsgrad(bias_correction_nu=False, eps_uncorrected=True)
