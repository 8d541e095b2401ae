"""L-BFGS and its line searches against optax, scipy and a NumPy reference (docs/parity.md).

Every run is one compiled function: ``jax.jit`` of a ``lax.scan`` over the steps that
returns all iterates, built once per configuration and cached for the whole module
(``_trajectory``). Hyperparameters that are floats are traced arguments, so one
compilation runs several settings at once under ``vmap`` (the sweeps below).

* optax.lbfgs (zoom line search by default) and its backtracking search: the same
  float32 computation, iterate for iterate, rtol 1e-5 (float64: 1e-10).
* scipy.optimize.minimize(method="L-BFGS-B"): the same minimizer of Rosenbrock's function
  in a comparable number of iterations.
* NumPy (tests/references_lbfgs.py): the two-loop recursion (N&W Alg. 7.4) checked
  against the dense inverse-Hessian update, the L-BFGS iteration without line search, and
  the strong Wolfe conditions at every step the zoom search accepts.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests import references_lbfgs as ref
from tests._require import require

optax = require("optax", why="optax.lbfgs parity")
scipy_optimize = require("scipy.optimize", why="L-BFGS-B endpoint")

LIBS = {"gx": gx, "optax": optax}
W0 = np.array([-1.2, 1.0, -0.5, 0.3])
_A = np.array(
    [[10.0, 2.0, 0.0, 1.0], [2.0, 5.0, 1.0, 0.0], [0.0, 1.0, 2.0, 0.5], [1.0, 0.0, 0.5, 0.3]]
)
_B = np.array([1.0, -2.0, 0.5, 1.5])


def rosenbrock(w):
    return jnp.sum(100.0 * (w[1:] - w[:-1] ** 2) ** 2 + (1.0 - w[:-1]) ** 2)


def shifted_rosenbrock(w, shift):
    """Rosenbrock's function moved by ``shift``: a ``value_fn`` that takes data by keyword."""
    return rosenbrock(w - shift)


def quadratic(w):
    a, b = jnp.asarray(_A, w.dtype), jnp.asarray(_B, w.dtype)
    return 0.5 * w @ a @ w - b @ w


PROBLEMS = {"rosenbrock": rosenbrock, "quadratic": quadratic, "shifted": shifted_rosenbrock}
SHIFT = np.array([0.1, -0.2, 0.0, 0.3])


def _zoom(lib, **kw):
    return lib.scale_by_zoom_linesearch(**kw)


# name -> (make(lib, hp), static description); hp: dict of traced float hyperparameters.
CONFIGS: dict[str, Any] = {
    "default": lambda lib, hp: lib.lbfgs(),
    # Non-default static settings; the float ones come from hp (two rows each, vmapped).
    "zoom": lambda lib, hp: lib.lbfgs(
        learning_rate=hp["learning_rate"],
        memory_size=3,
        scale_init_precond=False,
        linesearch=_zoom(
            lib,
            max_linesearch_steps=12,
            max_learning_rate=hp["max_learning_rate"],
            tol=hp["tol"],
            increase_factor=hp["increase_factor"],
            slope_rtol=hp["slope_rtol"],
            curv_rtol=hp["curv_rtol"],
            approx_dec_rtol=hp["approx_dec_rtol"],
            stepsize_precision=hp["stepsize_precision"],
            initial_guess_strategy="keep",
        ),
    ),
    "backtracking": lambda lib, hp: lib.lbfgs(
        learning_rate=hp["learning_rate"],
        memory_size=4,
        linesearch=lib.scale_by_backtracking_linesearch(
            max_backtracking_steps=10,
            slope_rtol=hp["slope_rtol"],
            decrease_factor=hp["decrease_factor"],
            increase_factor=hp["increase_factor"],
            max_learning_rate=hp["max_learning_rate"],
            atol=hp["atol"],
            rtol=hp["rtol"],
            store_grad=True,
        ),
    ),
    # The second non-default value of the static settings (extended).
    "zoom-static": lambda lib, hp: lib.lbfgs(
        memory_size=5,
        linesearch=_zoom(
            lib,
            max_linesearch_steps=8,
            max_learning_rate=None,
            curv_rtol=math.inf,
            approx_dec_rtol=None,
            initial_guess_strategy="one",
        ),
    ),
    "backtracking-static": lambda lib, hp: lib.lbfgs(
        memory_size=1,
        linesearch=lib.scale_by_backtracking_linesearch(
            max_backtracking_steps=3, increase_factor=math.inf
        ),
    ),
}
NO_STORED_GRAD = {"backtracking-static"}  # value_and_grad_from_state cannot be used
# Two non-default values of every float hyperparameter (one row each).
SWEEPS = {
    "zoom": dict(
        learning_rate=[0.8, 1.2],
        max_learning_rate=[4.0, 1.5],
        tol=[1e-7, 1e-6],
        increase_factor=[3.0, 1.5],
        slope_rtol=[1e-3, 1e-2],
        curv_rtol=[0.5, 0.95],
        approx_dec_rtol=[1e-5, 1e-4],
        stepsize_precision=[1e-6, 1e-4],
    ),
    "backtracking": dict(
        learning_rate=[0.9, 1.1],
        slope_rtol=[1e-3, 1e-2],
        decrease_factor=[0.5, 0.7],
        increase_factor=[2.0, 1.2],
        max_learning_rate=[2.0, 1.5],
        atol=[1e-7, 1e-6],
        rtol=[1e-6, 1e-5],
    ),
}


def _value_and_grad(f, w, state, **data):
    del state
    return jax.value_and_grad(f)(w, **data)


@functools.cache
def _trajectory(lib_name: str, config: str, problem: str, steps: int, x64: bool = False):
    """The compiled run: ``hp -> (iterates, values, line-search steps)``, one per config."""
    lib, make, f = LIBS[lib_name], CONFIGS[config], PROBLEMS[problem]
    data = {"shift": jnp.asarray(SHIFT)} if problem == "shifted" else {}
    dtype = jnp.float64 if x64 else jnp.float32

    def run(hp):
        opt = make(lib, hp)
        w0 = jnp.asarray(W0, dtype)
        if config in NO_STORED_GRAD:
            value_and_grad = functools.partial(_value_and_grad, f)
        else:
            value_and_grad = lib.value_and_grad_from_state(f)

        def body(carry, _):
            w, state = carry
            value, grad = value_and_grad(w, state=state, **data)
            updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=f, **data)
            w = lib.apply_updates(w, updates)
            return (w, state), (w, value, state[-1].info.num_linesearch_steps)

        return jax.lax.scan(body, (w0, opt.init(w0)), None, length=steps)[1]

    if config in SWEEPS:
        return jax.jit(jax.vmap(run))
    return jax.jit(run)


def trajectory(lib_name, config, problem, steps, x64=False):
    """The run's outputs as NumPy arrays (for a sweep, a leading axis of rows)."""
    # optax's L-BFGS mixes int32 and int64 indices under x64: standard promotion for it.
    promotion = "standard" if lib_name == "optax" else "strict"
    with jax.enable_x64(x64), jax.numpy_dtype_promotion(promotion):
        hp = {
            k: jnp.asarray(v, jnp.float64 if x64 else jnp.float32)
            for k, v in SWEEPS.get(config, {}).items()
        }
        out = _trajectory(lib_name, config, problem, steps, x64)(hp)
        return tuple(np.asarray(x) for x in out)


def assert_same_iterates(config, problem, steps, rtol, x64=False):
    ours = trajectory("gx", config, problem, steps, x64)
    theirs = trajectory("optax", config, problem, steps, x64)
    np.testing.assert_array_equal(ours[2], theirs[2])  # line-search evaluations per step
    np.testing.assert_allclose(ours[0], theirs[0], rtol=rtol, atol=rtol * 1e-2)
    return ours


# ------------------------------------------------------------------ optax, iterate for iterate


@pytest.mark.parametrize(("problem", "steps"), [("rosenbrock", 40), ("quadratic", 12)])
def test_default_lbfgs_matches_optax_float32(problem, steps):
    ours = assert_same_iterates("default", problem, steps, rtol=1e-5)
    if problem == "rosenbrock":
        assert ours[2].max() > 3  # the zoom search bracketed and zoomed


def test_default_lbfgs_matches_optax_float64():
    assert_same_iterates("default", "quadratic", 12, rtol=1e-10, x64=True)


@pytest.mark.parametrize("config", ["zoom", "backtracking"])
def test_non_default_hyperparameters_match_optax(config):
    """Two rows of non-default float hyperparameters (vmapped), non-default memory, scaling,
    guess strategy, step limits and store_grad, and data passed to value_fn by keyword."""
    ours = assert_same_iterates(config, "shifted", 20, rtol=1e-5)
    assert not np.allclose(ours[0][0], ours[0][1])  # the two rows differ


@pytest.mark.extended
@pytest.mark.parametrize("config", ["zoom", "backtracking"])
@pytest.mark.parametrize("problem", ["rosenbrock", "quadratic"])
def test_non_default_hyperparameters_match_optax_float64(config, problem):
    assert_same_iterates(config, problem, 30, rtol=1e-10, x64=True)


@pytest.mark.extended
@pytest.mark.parametrize("config", ["zoom-static", "backtracking-static"])
def test_second_static_settings_match_optax(config):
    """memory 5 and 1, 8 zoom steps, no largest step, no curvature test, Armijo's test
    alone, initial guess 1; 3 backtracking steps from the largest step, no stored grad."""
    assert_same_iterates(config, "rosenbrock", 30, rtol=1e-5)


@pytest.mark.extended
def test_default_rosenbrock_matches_optax_float64():
    assert_same_iterates("default", "rosenbrock", 40, rtol=1e-10, x64=True)


def _complex_objective(z):
    m = jnp.asarray([[1.0, -2.0], [3.0 + 1.0j, 4.0], [-1.0 + 2.0j, 0.5 - 1.0j]], z.dtype)
    return jnp.sum(jnp.abs(m @ z - 1.0) ** 2) + 0.1 * jnp.sum(jnp.abs(z) ** 4)


@pytest.mark.parametrize(
    "linesearch", ["zoom", pytest.param("backtracking", marks=pytest.mark.extended)]
)
def test_complex_params_match_optax(linesearch):
    """Complex params, the gradient given conjugated (optax's convention: the real gradient
    of the real and imaginary parts), 10 steps: the same iterates as optax."""

    def run(lib):
        search = (
            lib.scale_by_zoom_linesearch(20, initial_guess_strategy="one")
            if linesearch == "zoom"
            else lib.scale_by_backtracking_linesearch(20)
        )
        opt = lib.lbfgs(memory_size=4, linesearch=search)

        def body(carry, _):
            z, state = carry
            value, grad = jax.value_and_grad(_complex_objective)(z)
            grad = jnp.conj(grad)
            updates, state = opt.update(
                grad, state, z, value=value, grad=grad, value_fn=_complex_objective
            )
            z = lib.apply_updates(z, updates)
            return (z, state), z

        z0 = jnp.asarray([1.0 - 1.0j, 1.0j], jnp.complex64)
        with jax.numpy_dtype_promotion("standard" if lib is optax else "strict"):
            return np.asarray(
                jax.jit(lambda z: jax.lax.scan(body, (z, opt.init(z)), None, 10)[1])(z0)
            )

    ours, theirs = run(gx), run(optax)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert np.abs(ours[-1] - ours[-2]).max() < 1e-3  # it settled


# ------------------------------------------------------------------ scipy


def test_rosenbrock_endpoint_and_iterations_match_scipy():
    """scipy's L-BFGS-B (memory 10, Wolfe line search) from the same start reaches (1, ..., 1)
    in 42 iterations; gradxform's lbfgs (float32) in a comparable number."""
    result = scipy_optimize.minimize(
        ref.rosenbrock, W0, jac=ref.rosenbrock_grad, method="L-BFGS-B", options={"maxcor": 10}
    )
    assert result.success
    iterates = trajectory("gx", "default", "rosenbrock", 40)[0]
    np.testing.assert_allclose(iterates[-1], result.x, atol=2e-3)
    ours = int(np.argmax(np.all(np.abs(iterates - result.x) < 2e-3, axis=1))) + 1
    assert 0.5 * result.nit <= ours <= 1.5 * result.nit, (ours, result.nit)


# ------------------------------------------------------------------ NumPy references


def test_two_loop_reference_is_the_dense_bfgs_inverse():
    rng = np.random.default_rng(0)
    n, pairs = 5, []
    for _ in range(4):
        s = rng.normal(size=n)
        y = s + 0.1 * rng.normal(size=n)  # s.y > 0
        pairs.append((s, y, 1.0 / (s @ y)))
    q = rng.normal(size=n)
    np.testing.assert_allclose(
        ref.two_loop(q, pairs, 0.7), ref.dense_inverse_hessian(pairs, 0.7, n) @ q, rtol=1e-12
    )


@functools.cache
def _direction_run(memory_size, scale):
    tx = gx.lbfgs(
        learning_rate=0.5, memory_size=memory_size, scale_init_precond=scale, linesearch=None
    )

    def run(w0):
        def body(carry, _):
            w, state = carry
            updates, state = tx.update(jax.grad(quadratic)(w), state, w)
            return (gx.apply_updates(w, updates), state), updates

        return jax.lax.scan(body, (w0, tx.init(w0)), None, length=10)[1]

    return jax.jit(run)


@pytest.mark.parametrize(("memory_size", "scale"), [(3, True), (2, False)])
def test_direction_matches_numpy_two_loop(memory_size, scale):
    """Without a line search, on the quadratic: the updates of the NumPy L-BFGS iteration
    fed the same (float32) iterates."""
    w0 = W0
    ours = np.asarray(_direction_run(memory_size, scale)(jnp.asarray(w0, jnp.float32)))
    reference = ref.LBFGS(learning_rate=0.5, memory_size=memory_size, scale_init_precond=scale)
    state, w = reference.init(w0), np.asarray(w0, np.float32).astype(np.float64)
    for k in range(10):
        expected, state = reference.step(_A @ w - _B, state, w)
        np.testing.assert_allclose(ours[k], expected, rtol=1e-4, atol=1e-6, err_msg=f"step {k}")
        w = (np.float32(w) + ours[k]).astype(np.float64)  # the float32 iterate gradxform saw


def test_zoom_steps_satisfy_strong_wolfe():
    """Each step the default search takes on Rosenbrock meets N&W eq. 3.7 (c1 1e-4, c2 0.9),
    checked in float64 on the float32 iterates, until the iterates settle."""
    iterates = trajectory("gx", "default", "rosenbrock", 40)[0].astype(np.float64)
    path = [W0.astype(np.float32).astype(np.float64), *iterates]
    for k in range(25):
        decrease, curvature = ref.wolfe_errors(
            ref.rosenbrock, ref.rosenbrock_grad, path[k], path[k + 1], 1e-4, 0.9
        )
        scale = abs(ref.rosenbrock_grad(path[k]) @ (path[k + 1] - path[k]))
        assert decrease <= 1e-5 * max(ref.rosenbrock(path[k]), 1e-3), k
        assert curvature <= 1e-3 * scale, k
