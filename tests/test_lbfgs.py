"""The battery's checks for L-BFGS and the line searches, which the registry cannot run.

The registry's battery calls ``update(grads, state, params)`` (plus ``value=`` for the
optimizers that read the loss); a line search also needs ``grad=`` and ``value_fn=``, the
objective itself, so :func:`gradxform.lbfgs` and the line searches are not registry
entries. Their battery checks are here instead, each compiled once: jit == eager and no
recompilation, dtypes (bfloat16 params, float16 zero gradients), ``ShapeDtypeStruct``
init, the state's structure through ``update`` and ``lax.scan`` (the parity runs of
``test_parity_lbfgs.py`` scan every configuration), key-path errors and argument errors.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests.test_parity_lbfgs import W0, rosenbrock


def _step(tx, f):
    def step(w, state):
        value, grad = gx.value_and_grad_from_state(f)(w, state=state)
        updates, state = tx.update(grad, state, w, value=value, grad=grad, value_fn=f)
        return gx.apply_updates(w, updates), state

    return step


def test_jit_equals_eager_and_compiles_once():
    tx = gx.lbfgs()
    step = _step(tx, rosenbrock)
    jitted = jax.jit(step)
    w_eager = w_jit = jnp.asarray(W0, jnp.float32)
    s_eager = s_jit = tx.init(w_eager)
    for _ in range(3):
        with jax.disable_jit():  # op by op: the loops run in Python
            w_eager, s_eager = step(w_eager, s_eager)
        w_jit, s_jit = jitted(w_jit, s_jit)
        np.testing.assert_allclose(w_eager, w_jit, rtol=1e-6, atol=1e-7)
    assert jitted._cache_size() == 1
    assert jax.tree.structure(s_jit) == jax.tree.structure(tx.init(w_jit))


def _low_precision_runs():
    """bfloat16 params on a shifted quadratic (2 steps, zoom) and float16 params with a
    zero gradient (backtracking, store_grad): one compiled function."""
    zoom = gx.lbfgs(memory_size=3)
    backtrack = gx.lbfgs(
        linesearch=gx.scale_by_backtracking_linesearch(max_backtracking_steps=5, store_grad=True)
    )

    def quad(w):
        return jnp.sum((w["a"].astype(jnp.float32) - 1.0) ** 2)

    def flat(w):
        return jnp.sum(w["a"].astype(jnp.float32)) * 0.0

    def run(w16, wb):
        out = []
        for tx, f, w in ((zoom, quad, wb), (backtrack, flat, w16)):

            def body(carry, _, tx=tx, f=f):
                w, state = carry
                value, grad = jax.value_and_grad(f)(w)
                updates, state = tx.update(grad, state, w, value=value, grad=grad, value_fn=f)
                return (gx.apply_updates(w, updates), state), updates

            (w, state), updates = jax.lax.scan(body, (w, tx.init(w)), None, length=2)
            out.append((jax.tree.map(lambda u: u[-1], updates), state, w))
        return out

    w16 = {"a": jnp.ones((2, 3), jnp.float16)}
    wb = {"a": jnp.zeros((2, 3), jnp.bfloat16)}
    return jax.jit(run)(w16, wb)


@functools.cache
def low_precision_runs():
    return _low_precision_runs()


def test_low_precision_dtypes_and_finite():
    (ub, sb, wb), (u16, s16, _) = low_precision_runs()
    assert ub["a"].dtype == jnp.bfloat16 and u16["a"].dtype == jnp.float16
    np.testing.assert_allclose(np.asarray(wb["a"], np.float32), 1.0, atol=1e-2)  # converged
    for tree in (ub, sb, u16, s16):
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))
    lb, _, search = sb
    # preconditioner memory and every scalar in float32; params, updates, grads as the params
    assert lb.diff_params_memory["a"].dtype == jnp.float32
    assert lb.weights_memory.dtype == jnp.float32 and lb.count.dtype == jnp.int32
    assert lb.params["a"].dtype == jnp.bfloat16 and lb.updates["a"].dtype == jnp.bfloat16
    assert search.learning_rate.dtype == jnp.float32 and search.value.dtype == jnp.float32
    assert search.grad["a"].dtype == jnp.bfloat16
    assert search.info.num_linesearch_steps.dtype == jnp.int32
    assert s16[2].grad["a"].dtype == jnp.float16
    np.testing.assert_array_equal(np.asarray(u16["a"]), 0.0)  # a zero gradient: no step


TRANSFORMS = {
    "lbfgs": lambda: gx.lbfgs(),
    "lbfgs-backtracking": lambda: gx.lbfgs(
        learning_rate=0.5,
        linesearch=gx.scale_by_backtracking_linesearch(max_backtracking_steps=4, store_grad=True),
    ),
    "lbfgs-no-linesearch": lambda: gx.lbfgs(memory_size=2, linesearch=None),
    "scale_by_lbfgs": lambda: gx.scale_by_lbfgs(),
    "zoom": lambda: gx.scale_by_zoom_linesearch(10),
    "backtracking": lambda: gx.scale_by_backtracking_linesearch(10),
}
PARAMS = {"layer": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3, jnp.bfloat16)}}


def _objective(p):
    return sum(jnp.sum(x.astype(jnp.float32) ** 2) for x in jax.tree.leaves(p))


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_shape_dtype_struct_init_and_state_through_update(name):
    tx = TRANSFORMS[name]()
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), PARAMS)
    expected = tx.init(PARAMS)
    got = tx.init(abstract)
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        assert (a.shape, a.dtype) == (b.shape, b.dtype)
    grads = jax.grad(_objective)(PARAMS)
    value = _objective(PARAMS)
    _, after = jax.eval_shape(
        functools.partial(tx.update, value=value, grad=grads, value_fn=_objective),
        grads,
        expected,
        PARAMS,
    )
    assert jax.tree.structure(after) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(expected), strict=True):
        assert (a.shape, a.dtype) == (b.shape, b.dtype)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@pytest.mark.parametrize("bad", ["shape", "complex"])
def test_a_bad_gradient_is_refused_by_key_path(name, bad):
    tx = TRANSFORMS[name]()
    state = tx.init(PARAMS)
    grads = jax.grad(_objective)(PARAMS)
    kernel = jnp.ones((3, 2)) if bad == "shape" else jnp.ones((2, 3), jnp.complex64)
    wrong = {"layer": {"kernel": kernel, "bias": grads["layer"]["bias"]}}
    with pytest.raises((TypeError, ValueError), match="layer/kernel"):
        tx.update(wrong, state, PARAMS, value=_objective(PARAMS), grad=wrong, value_fn=_objective)


@pytest.mark.parametrize("name", ["zoom", "backtracking", "lbfgs"])
def test_a_line_search_needs_the_objective(name):
    tx = TRANSFORMS[name]()
    state, grads = tx.init(PARAMS), jax.grad(_objective)(PARAMS)
    value = _objective(PARAMS)

    def update(**kw):  # traced only: the errors are raised while tracing
        return jax.eval_shape(functools.partial(tx.update, **kw), grads, state, PARAMS)

    with pytest.raises(TypeError, match="value_fn="):
        update(value=value, grad=grads)
    with pytest.raises(TypeError, match="value="):
        update(grad=grads, value_fn=_objective)
    with pytest.raises(
        TypeError, match=r"Unexpected keyword arguments.*\['batch'\]"
    ):  # not an argument of value_fn
        update(value=value, grad=grads, value_fn=_objective, batch=1)


def test_value_and_grad_from_state_needs_one_value_and_grad():
    f = gx.value_and_grad_from_state(_objective)
    no_grad = gx.lbfgs(linesearch=gx.scale_by_backtracking_linesearch(5))
    for state in (gx.adam(0.1).init(PARAMS), no_grad.init(PARAMS)):
        with pytest.raises(ValueError, match="one `value` and one `grad`"):
            f(PARAMS, state=state)
    two = gx.chain(gx.scale_by_zoom_linesearch(5), gx.scale_by_zoom_linesearch(5))
    with pytest.raises(KeyError, match="2 `value` and 2 `grad`"):
        f(PARAMS, state=two.init(PARAMS))
    # a fresh state holds value=inf: the objective is evaluated
    value, _ = f(PARAMS, state=gx.lbfgs().init(PARAMS))
    np.testing.assert_allclose(value, _objective(PARAMS))
    with pytest.raises(TypeError, match="value_fn="):
        gx.value_and_grad_from_state(3.0)


INVALID = [
    (gx.scale_by_lbfgs, {"memory_size": 0}),
    (gx.scale_by_lbfgs, {"memory_size": 2.0}),
    (gx.scale_by_lbfgs, {"scale_init_precond": 1}),
    (gx.lbfgs, {"linesearch": "zoom"}),
    (gx.scale_by_zoom_linesearch, {"max_linesearch_steps": 0}),
    (gx.scale_by_zoom_linesearch, {"max_linesearch_steps": 2.5}),
    (gx.scale_by_zoom_linesearch, {"max_learning_rate": 0.0}),
    (gx.scale_by_zoom_linesearch, {"tol": -1.0}),
    (gx.scale_by_zoom_linesearch, {"increase_factor": 1.0}),
    (gx.scale_by_zoom_linesearch, {"slope_rtol": 1.0}),
    (gx.scale_by_zoom_linesearch, {"curv_rtol": 0.0}),
    (gx.scale_by_zoom_linesearch, {"approx_dec_rtol": -1e-6}),
    (gx.scale_by_zoom_linesearch, {"stepsize_precision": math.nan}),
    (gx.scale_by_zoom_linesearch, {"initial_guess_strategy": "two"}),
    (gx.scale_by_zoom_linesearch, {"verbose": "yes"}),
    (gx.scale_by_backtracking_linesearch, {"max_backtracking_steps": -1}),
    (gx.scale_by_backtracking_linesearch, {"slope_rtol": -0.1}),
    (gx.scale_by_backtracking_linesearch, {"decrease_factor": 1.0}),
    (gx.scale_by_backtracking_linesearch, {"decrease_factor": 0.0}),
    (gx.scale_by_backtracking_linesearch, {"increase_factor": 0.5}),
    (gx.scale_by_backtracking_linesearch, {"max_learning_rate": -1.0}),
    (gx.scale_by_backtracking_linesearch, {"atol": -1.0}),
    (gx.scale_by_backtracking_linesearch, {"rtol": math.nan}),
    (gx.scale_by_backtracking_linesearch, {"store_grad": None}),
]
STEPS = {
    gx.scale_by_zoom_linesearch: "max_linesearch_steps",
    gx.scale_by_backtracking_linesearch: "max_backtracking_steps",
}


@pytest.mark.parametrize(
    ("factory", "kwargs"),
    [
        pytest.param(f, kw, id=f"{f.__name__}-{next(iter(kw))}={next(iter(kw.values()))}")
        for f, kw in INVALID
    ],
)
def test_invalid_argument_is_named(factory, kwargs):
    ((name, _),) = kwargs.items()
    required = {STEPS[factory]: 5} if factory in STEPS and name != STEPS[factory] else {}
    with pytest.raises((TypeError, ValueError)) as info:
        factory(**required, **kwargs)
    assert f"{name}=" in str(info.value), str(info.value)


_SHARDED_RUN = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
import gradxform as gx
mesh = jax.make_mesh((8,), ("x",), axis_types=(AxisType.Explicit,))
f = lambda w: jnp.sum((w - 1.0) ** 2) + jnp.sum(w ** 4)
def go(w, tx):
    def run(w):
        state, vg = tx.init(w), gx.value_and_grad_from_state(f)
        for _ in range(3):
            v, g = vg(w, state=state)
            u, state = tx.update(g, state, w, value=v, grad=g, value_fn=f)
            w = gx.apply_updates(w, u)
        return w, state
    return jax.jit(run)(w)
w0 = jnp.arange(16.0).reshape(8, 2) / 16
backtracking = gx.scale_by_backtracking_linesearch(10, store_grad=True)
for tx in (gx.lbfgs(memory_size=3), gx.lbfgs(linesearch=backtracking)):
    expected, _ = go(w0, tx)
    with jax.set_mesh(mesh):
        w, state = go(jax.device_put(w0, NamedSharding(mesh, P("x", None))), tx)
        assert str(jax.typeof(state[0].diff_params_memory).sharding.spec) == str(P(None, "x", None))
        assert jax.typeof(state[2].grad).sharding.spec == P("x", None)
    np.testing.assert_allclose(np.asarray(w), np.asarray(expected), rtol=1e-6)
print("ok")
"""


@pytest.mark.extended
def test_explicit_sharding_keeps_the_params_sharding():
    """On 8 simulated devices (a subprocess): the memory and the line search's gradient are
    sharded like the params, and the iterates are those of one device."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    out = subprocess.run(
        [sys.executable, "-c", _SHARDED_RUN], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_verbose_reports_a_failed_search(capfd):
    """Along an ascent direction no step decreases the objective: with ``verbose=True``
    both searches say so, silently without (and take their last, unsafe, step as optax)."""

    def f(w):
        return jnp.sum(w**2)

    w = jnp.ones(2)

    def run(verbose):
        zoom = gx.scale_by_zoom_linesearch(3, verbose=verbose)
        back = gx.scale_by_backtracking_linesearch(3, verbose=verbose)
        up = 2.0 * w  # the gradient itself: an ascent direction
        out = []
        for tx in (zoom, back):
            u, _ = tx.update(up, tx.init(w), w, value=f(w), grad=up, value_fn=f)
            out.append(u)
        return out

    for verbose in (False, True):
        updates = jax.jit(functools.partial(run, verbose))()
        jax.effects_barrier()
        printed = capfd.readouterr().out
        assert ("no step with sufficient decrease" in printed) == verbose, printed
        assert ("scale_by_backtracking_linesearch: no step" in printed) == verbose, printed
        assert all(float(f(w + u)) > float(f(w)) for u in updates)
