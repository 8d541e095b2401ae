"""One battery of checks run over every registered optimizer (tests/registry.py)."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

import gradxform as gx
from tests import references as ref
from tests._util import grad_sequence, make_params, run, scan_run
from tests.registry import REGISTRY, Entry

IDS = [e.id for e in REGISTRY]


# ---------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_matches_numpy_reference(entry: Entry):
    params = make_params()
    grads = grad_sequence(params)
    updates, _, _ = run(entry.make(), params, grads)

    reference = entry.make_reference()
    leaves, treedef = jax.tree.flatten(params)
    ref_params = [np.asarray(p, np.float64) for p in leaves]
    # A leaf reference steps each leaf alone; a TreeReference (a statistic of the whole
    # tree, such as DoG's norms) steps the list of leaves at once.
    whole = isinstance(reference, ref.TreeReference)
    ref_states = reference.init(ref_params) if whole else [reference.init(p) for p in ref_params]
    for t, g in enumerate(grads):
        gs = [np.asarray(gi, np.float64) for gi in jax.tree.leaves(g)]
        if whole:
            ref_u, ref_states = reference.step(gs, ref_states, ref_params)
        else:
            steps = [
                reference.step(gi, s, p)
                for gi, s, p in zip(gs, ref_states, ref_params, strict=True)
            ]
            ref_u = [u for u, _ in steps]
            ref_states = [s for _, s in steps]
        chex.assert_trees_all_close(
            updates[t],
            jax.tree.unflatten(treedef, ref_u),
            rtol=1e-5,
            atol=entry.atol or 1e-7,
            custom_message=f"step {t + 1}",
        )
        ref_params = [p + u for p, u in zip(ref_params, ref_u, strict=True)]


@pytest.mark.parametrize("entry", [e for e in REGISTRY if e.optax_factory], ids=lambda e: e.id)
def test_matches_optax(entry: Entry):
    params = make_params()
    grads = grad_sequence(params)
    ours, _, _ = run(entry.make(), params, grads)
    with jax.numpy_dtype_promotion("standard"):  # optax relies on implicit promotion
        theirs, _, _ = run(entry.make_optax(), params, grads)
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        chex.assert_trees_all_close(
            a, b, rtol=1e-5, atol=entry.atol or 1e-7, custom_message=f"step {t + 1}"
        )


# -------------------------------------------------------------------------- jit


class JitVariantsTest(chex.TestCase):
    """The same trajectory with and without jit (chex.variants)."""

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(e.id, e) for e in REGISTRY])
    def test_jit_equals_eager(self, entry: Entry):
        params = make_params()
        grads = grad_sequence(params, steps=4)
        tx = entry.make()
        eager, _, _ = run(tx, params, grads)
        variant, _, _ = run(tx, params, grads, update=self.variant(tx.update))
        chex.assert_trees_all_close(variant, eager, rtol=1e-6, atol=entry.atol or 1e-8)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_second_step_does_not_recompile_with_donated_buffers(entry: Entry):
    """The training loop the README teaches: one trace for every step, with the params and
    the state donated (so no two state leaves, or a state leaf and a parameter, may be one
    buffer)."""
    tx = entry.make()
    traces = []

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, state, grads):
        traces.append(1)
        updates, state = tx.update(grads, state, params)
        return gx.apply_updates(params, updates), state

    params = make_params()
    state = tx.init(params)
    for g in grad_sequence(params, steps=3):
        params, state = step(params, state, g)
    assert len(traces) == 1, f"{entry.id} retraced: {len(traces)} traces for 3 steps"


# ------------------------------------------------------------------------- dtypes

DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16, jnp.float64]


def _maybe_x64(dtype):
    return jax.enable_x64(dtype == jnp.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_dtypes_preserved(entry: Entry, dtype):
    with _maybe_x64(dtype):
        params = make_params(dtype)
        tx = entry.make()
        state = tx.init(params)
        for leaf in jax.tree.leaves(state):
            if jnp.issubdtype(leaf.dtype, jnp.floating):
                assert leaf.dtype == jnp.dtype(dtype), f"state leaf {leaf.dtype} for {dtype}"
            else:  # step counters, flags (DoG's is_init_step), PRNG key data
                assert leaf.dtype in (jnp.int32, jnp.bool_, jnp.uint32), leaf.dtype
        step = jax.jit(tx.update)
        for g in grad_sequence(params, steps=2):
            updates, state = step(g, state, params)
            chex.assert_trees_all_equal_dtypes(updates, g)
            chex.assert_tree_all_finite(updates)
            params = gx.apply_updates(params, updates)
        chex.assert_trees_all_equal_dtypes(params, make_params(dtype))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_zero_gradients_low_precision(entry: Entry, dtype):
    params = make_params(dtype)
    tx = entry.make(**entry.converge_kwargs)
    state = tx.init(params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    for _ in range(2):
        updates, state = tx.update(zeros, state, params)
        chex.assert_tree_all_finite(updates)
        chex.assert_tree_all_finite(state)
        chex.assert_trees_all_equal(updates, zeros)


def test_zero_gradients_low_precision_catches_underflow():
    """The check above can fail: eps underflowing in float16 gives 0/0."""
    g = jnp.zeros(2, jnp.float16)
    eps = jnp.float16(1e-8)  # underflows to 0 in float16
    naive = g / (jnp.sqrt(g * g) + eps)
    assert not bool(jnp.all(jnp.isfinite(naive)))


# ----------------------------------------------------------------- init and state


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_init_from_shape_dtype_structs_and_deterministic(entry: Entry):
    params = make_params()
    tx = entry.make()
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    state = tx.init(params)
    chex.assert_trees_all_equal(tx.init(params), state)
    chex.assert_trees_all_equal_shapes_and_dtypes(tx.init(abstract), state)
    chex.assert_trees_all_equal_shapes_and_dtypes(jax.eval_shape(tx.init, abstract), state)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_state_stable_through_scan_and_cond(entry: Entry):
    params = make_params()
    tx = entry.make()
    state = tx.init(params)
    grads = grad_sequence(params, steps=3)
    p_scan, s_scan = scan_run(tx, params, grads)
    chex.assert_trees_all_equal_structs(s_scan, state)
    chex.assert_trees_all_equal_shapes_and_dtypes(s_scan, state)
    _, p_loop, _s_loop = run(tx, params, grads)
    chex.assert_trees_all_close(p_scan, p_loop, rtol=1e-6, atol=1e-7)

    def branch(flag, s):
        _u, s2 = tx.update(grads[0], s, params)
        return jax.lax.cond(flag, lambda: s2, lambda: s)

    s_cond = jax.jit(branch)(True, state)
    chex.assert_trees_all_equal_shapes_and_dtypes(s_cond, state)


# ----------------------------------------------------------------- convergence


def quadratic(x):
    """Ill-conditioned valley: condition number 100, minimum at 0."""
    return 0.5 * (x[0] ** 2 + 100.0 * x[1] ** 2)


def rosenbrock(x):
    """Rosenbrock's banana, minimum at (1, 1)."""
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def minimize(tx, fn, x0, steps):
    def body(carry, _):
        x, s = carry
        u, s = tx.update(jax.grad(fn)(x), s, x)
        return (gx.apply_updates(x, u), s), None

    (x, _), _ = jax.jit(lambda c: jax.lax.scan(body, c, None, length=steps))((x0, tx.init(x0)))
    return x


def quadratic_grad(x):
    return np.array([x[0], 100.0 * x[1]])


def rosenbrock_grad(x):
    inner = x[1] - x[0] ** 2
    return np.array([-2.0 * (1.0 - x[0]) - 400.0 * x[0] * inner, 200.0 * inner])


GRADIENTS = {quadratic: quadratic_grad, rosenbrock: rosenbrock_grad}


def reference_distance(entry: Entry, fn, x0, optimum, learning_rate, steps) -> float:
    """How near the NumPy reference (float64) gets to ``optimum`` in ``steps`` steps."""
    kwargs = {**entry.kwargs, **entry.converge_kwargs, "learning_rate": learning_rate}
    reference = entry.reference(**kwargs, **entry.objective(fn))
    x = np.asarray(x0, np.float64)
    state = reference.init(x)
    for _ in range(steps):
        u, state = reference.step(GRADIENTS[fn](x), state, x)
        x = x + u
    return float(np.max(np.abs(x - optimum)))


# The distance a float32 run may keep from the optimum whatever its reference reaches
# (float32 steps near a flat minimum, sign methods that move by +-lr), and at most.
QUADRATIC_FLOOR, QUADRATIC_CAP = 2e-3, 1e-2
ROSENBROCK_FLOOR, ROSENBROCK_CAP = 5e-3, 5e-2


def assert_converges(entry: Entry, fn, x0, optimum, problem, floor, cap):
    """gradxform gets as near the optimum as the reference does: within ten times the
    reference's distance (at least ``floor``, at most ``cap``), and the reference itself
    gets within ``cap``: a configuration that does not converge tests nothing."""
    learning_rate, steps = problem
    kwargs = {**entry.converge_kwargs, "learning_rate": learning_rate, **entry.objective(fn)}
    tx = entry.make(**kwargs)
    x = np.asarray(minimize(tx, fn, jnp.asarray(x0), steps), np.float64)
    want = reference_distance(entry, fn, x0, optimum, learning_rate, steps)
    assert want <= cap, f"the reference ends {want:.2e} from the optimum: pick another rate"
    tolerance = min(cap, max(10 * want, floor))
    got = float(np.max(np.abs(x - optimum)))
    assert got <= tolerance, f"{got:.2e} from the optimum, the reference {want:.2e}"


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_converges_on_ill_conditioned_quadratic(entry: Entry):
    args = ([1.0, 1.0], np.zeros(2), entry.quadratic, QUADRATIC_FLOOR, QUADRATIC_CAP)
    assert_converges(entry, quadratic, *args)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_converges_on_rosenbrock(entry: Entry):
    args = ([-1.2, 1.0], np.ones(2), entry.rosenbrock, ROSENBROCK_FLOOR, ROSENBROCK_CAP)
    assert_converges(entry, rosenbrock, *args)


# --------------------------------------------------------------- bad input, ints


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_integer_leaves_pass_through(entry: Entry):
    params = {"w": jnp.ones(3), "step": jnp.array([7, 8], jnp.int32)}
    tx = entry.make()
    state = tx.init(params)
    loss = lambda p: jnp.sum(p["w"] ** 2) + jnp.sum(p["step"].astype(jnp.float32))
    grads = jax.grad(loss, allow_int=True)(params)
    for _ in range(2):
        updates, state = jax.jit(tx.update)(grads, state, params)
        params = gx.apply_updates(params, updates)
    np.testing.assert_array_equal(params["step"], np.array([7, 8], np.int32))
    assert params["step"].dtype == jnp.int32
    assert float(jnp.max(jnp.abs(params["w"] - 1.0))) > 0


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_shape_mismatch_names_key_path(entry: Entry):
    params = {"a": jnp.ones(2), "b": {"c": jnp.ones(3)}}
    tx = entry.make()
    state = tx.init(params)
    bad = {"a": jnp.ones(2), "b": {"c": jnp.ones(1)}}
    with pytest.raises(ValueError, match=r"b/c.*\(1,\).*\(3,\)"):
        updates, _ = tx.update(bad, state, params)
        gx.apply_updates(params, updates)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_structure_mismatch_names_key_path(entry: Entry):
    params = {"a": jnp.ones(2), "b": {"c": jnp.ones(3)}}
    tx = entry.make()
    state = tx.init(params)
    bad = {"a": jnp.ones(2), "b": {"d": jnp.ones(3)}}
    with pytest.raises(ValueError, match="b/d"):
        updates, _ = tx.update(bad, state, params)
        gx.apply_updates(params, updates)
