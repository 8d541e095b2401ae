"""inject_hyperparams: unwrapped optimizers' updates, hyperparameters changed without retracing."""

from __future__ import annotations

import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import (
    InjectStatefulHyperparamsState,
    WrappedSchedule,
    constant_schedule,
    inject_hyperparams,
    linear_schedule,
    one_cycle_momentum_schedule,
    one_cycle_schedule,
    reduce_on_plateau,
    set_hyperparams,
)
from tests._require import require
from tests._util import grad_sequence, make_params, run
from tests.registry import REGISTRY, Entry

IDS = [e.id for e in REGISTRY]


# ------------------------------------------------------------- same updates


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_wrapped_equals_unwrapped(entry: Entry):
    params = make_params()
    grads = grad_sequence(params, steps=2)
    plain, wrapped = entry.make(), inject_hyperparams(entry.factory)(**entry.kwargs)
    # Eagerly both run the same operations on the same values: bitwise equal.
    ours, _, state = run(wrapped, params, grads, jit=False)
    chex.assert_trees_all_equal(ours, run(plain, params, grads, jit=False)[0])
    assert isinstance(state, InjectStatefulHyperparamsState)
    assert state.hyperparams["learning_rate"] == np.float32(entry.kwargs["learning_rate"])
    assert int(state.count) == len(grads)

    # Under jit XLA may fold the unwrapped optimizer's Python-float constants
    # (a division becomes a multiplication by the reciprocal): the parameters
    # agree to float32 rounding.
    def final_params(tx):
        updates, _, _ = run(tx, params, grads, jit=True)
        return jax.tree.map(lambda p, *us: p + sum(us), params, *updates)

    chex.assert_trees_all_close(final_params(wrapped), final_params(plain), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_every_numeric_hyperparameter_is_kept_in_the_state(entry: Entry):
    """No registered optimizer needs a float hyperparameter as a Python number (``float(b2)``);
    ints are kept as integers, except the counts a factory checks are Python ints."""
    signature = inspect.signature(entry.factory)
    bound = signature.bind(**entry.kwargs)
    bound.apply_defaults()
    floats = {n for n, v in bound.arguments.items() if isinstance(v, float)}
    ints = {n for n, v in bound.arguments.items() if isinstance(v, int) and not isinstance(v, bool)}
    state = inject_hyperparams(entry.factory)(**entry.kwargs).init(make_params())
    assert floats <= set(state.hyperparams) <= floats | ints
    for name in set(state.hyperparams) & ints:
        assert jnp.issubdtype(state.hyperparams[name].dtype, jnp.integer), name
    for name in ints - set(state.hyperparams):  # passed through: the factory needs an int
        traced = jax.ShapeDtypeStruct((), jnp.int32)
        with pytest.raises(TypeError, match=name):
            jax.eval_shape(
                lambda v, name=name: (entry.factory(**{**bound.arguments, name: v}), 0)[1], traced
            )


# learning_rate is no rate a schedule could give: Rprop's is the initial step size of every
# coordinate (kept in the state), optimistic_adam's weighs the direction inside the
# optimistic step (optax refuses a schedule there too; optimistic_adam_v2 takes one).
# Their battery learning rate is a bound or a step size that optax takes as a number only
# (Rprop's initial step, Polyak's step cap).
NOT_SCHEDULABLE = {"rprop", "rprop-immediate", "optimistic-adam", "polyak-sgd", "polyak-sgd-plus"}


@pytest.mark.parametrize(
    "entry", [e for e in REGISTRY if e.id in NOT_SCHEDULABLE], ids=lambda e: e.id
)
def test_learning_rate_that_is_not_a_rate_refuses_a_schedule(entry: Entry):
    with pytest.raises((TypeError, ValueError), match="learning_rate"):
        entry.make(learning_rate=constant_schedule(entry.kwargs["learning_rate"]))


@pytest.mark.parametrize(
    "entry", [e for e in REGISTRY if e.id not in NOT_SCHEDULABLE], ids=lambda e: e.id
)
def test_constant_schedule_gives_exactly_the_scalar_result(entry: Entry):
    params = make_params()
    grads = grad_sequence(params, steps=2)
    scalar, _, _ = run(entry.make(), params, grads, jit=False)
    lr = entry.kwargs["learning_rate"]
    schedule = constant_schedule(lr)
    scheduled, _, _ = run(entry.make(learning_rate=schedule), params, grads, jit=False)
    chex.assert_trees_all_equal(scheduled, scalar)
    # Under jit too: the schedule's value is as much a constant as the float.
    chex.assert_trees_all_equal(
        run(entry.make(learning_rate=schedule), params, grads[:1], jit=True)[0],
        run(entry.make(), params, grads[:1], jit=True)[0],
    )


@pytest.mark.parametrize("factory", [gx.adam, gx.sgd])
def test_wrapped_equals_unwrapped_in_float64(factory):
    with jax.enable_x64(True):
        params = make_params(jnp.float64)
        grads = grad_sequence(params, steps=4)
        plain, _, _ = run(factory(0.01, 0.5), params, grads, jit=True)
        wrapped, _, state = run(inject_hyperparams(factory)(0.01, 0.5), params, grads, jit=True)
        assert state.hyperparams["learning_rate"].dtype == jnp.float64
        chex.assert_trees_all_close(wrapped, plain, rtol=1e-14, atol=0)


@pytest.mark.parametrize(
    "mu_dtype",
    [jnp.bfloat16, jnp.dtype(jnp.bfloat16), "bfloat16"],
    ids=["scalar-type", "np-dtype", "string"],
)
def test_dtype_arguments_do_not_break_wrapping(mu_dtype):
    params = make_params()
    grads = grad_sequence(params, steps=4)
    plain, _, _ = run(gx.adam(0.1, mu_dtype=mu_dtype), params, grads, jit=True)
    wrapped, _, state = run(
        inject_hyperparams(gx.adam)(0.1, mu_dtype=mu_dtype), params, grads, jit=True
    )
    chex.assert_trees_all_equal(wrapped, plain)
    assert "mu_dtype" not in state.hyperparams
    mu = state.inner_state[0].mu
    assert all(leaf.dtype == jnp.bfloat16 for leaf in jax.tree.leaves(mu))


# ------------------------------------------------------ schedules and step 0


def test_first_update_uses_schedule_step_zero():
    schedule = linear_schedule(0.1, 1.1, transition_steps=10)  # 0.1, 0.2, 0.3, ...
    tx = inject_hyperparams(gx.sgd)(learning_rate=schedule)
    params = jnp.zeros(2)
    state = tx.init(params)
    assert state.hyperparams["learning_rate"] == np.float32(0.1)
    g = jnp.ones(2)
    seen = []
    for _ in range(3):
        updates, state = tx.update(g, state, params)
        seen.append((float(updates[0]), float(state.hyperparams["learning_rate"])))
    np.testing.assert_allclose(seen, [(-0.1, 0.1), (-0.2, 0.2), (-0.3, 0.3)], rtol=1e-6)
    # The unwrapped optimizer agrees (scale_by_schedule also starts at step 0).
    plain = gx.sgd(schedule)
    plain_state = plain.init(params)
    first, _ = plain.update(g, plain_state, params)
    np.testing.assert_allclose(first, [-0.1, -0.1], rtol=1e-6)


def test_scheduled_hyperparams_follow_the_schedule_through_scan():
    schedule = linear_schedule(1.0, 0.0, transition_steps=8)
    tx = inject_hyperparams(gx.sgd)(learning_rate=schedule, momentum=0.5)
    params = jnp.ones(3)
    state = tx.init(params)

    def body(carry, _):
        p, s = carry
        u, s = tx.update(2.0 * p, s, p)
        return (gx.apply_updates(p, u), s), s.hyperparams["learning_rate"]

    (_, final), lrs = jax.lax.scan(body, (params, state), None, length=10)
    chex.assert_trees_all_equal_structs(final, state)
    chex.assert_trees_all_equal_shapes_and_dtypes(final, state)
    chex.assert_trees_all_close(lrs, jax.vmap(schedule)(jnp.arange(10)))


# ---------------------------------------------------------- no recompilation


def test_changing_hyperparams_between_jitted_steps_does_not_retrace():
    tx = inject_hyperparams(gx.sgd)(learning_rate=0.1, momentum=0.9)
    traces = []

    @jax.jit
    def train_step(params, state, grads):
        traces.append(1)
        updates, state = tx.update(grads, state, params)
        return gx.apply_updates(params, updates), state, updates

    params = jnp.zeros(2)
    state = tx.init(params)
    g = jnp.ones(2)
    for lr in [0.1, 0.05, 0.3, 1e-3]:
        state = set_hyperparams(state, learning_rate=lr, momentum=0.0)
        params, state, updates = train_step(params, state, g)
        np.testing.assert_allclose(updates, [-lr, -lr], rtol=1e-6)
        assert state.hyperparams["learning_rate"] == np.float32(lr)
    # Writing an array of the stored dtype straight into the dict works too.
    state.hyperparams["learning_rate"] = jnp.float32(2.0)
    _, _, updates = train_step(params, state, g)
    np.testing.assert_allclose(updates, [-2.0, -2.0])
    assert len(traces) == 1, f"{len(traces)} traces"


def test_set_hyperparams_works_inside_jit():
    tx = inject_hyperparams(gx.adam)(1e-3)
    traces = []

    @jax.jit
    def train_step(params, state, grads, lr):
        traces.append(1)
        state = set_hyperparams(state, learning_rate=lr)
        updates, state = tx.update(grads, state, params)
        return gx.apply_updates(params, updates), state

    params = jnp.ones(2)
    state = tx.init(params)
    for lr in [1e-3, 1e-2, 0.1]:
        params, state = train_step(params, state, jnp.ones(2), lr)
        assert state.hyperparams["learning_rate"] == np.float32(lr)
    assert len(traces) == 1


# ------------------------------------------------------- 1cycle end to end


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_one_cycle_with_momentum_matches_torch(optimizer):
    torch = require("torch")
    steps, peak = 40, 0.05
    a = np.array([1.0, 3.0, 0.5], np.float32)
    w0 = np.array([1.0, -2.0, 0.5], np.float32)

    p = torch.tensor(w0, requires_grad=True)
    if optimizer == "sgd":
        opt = torch.optim.SGD([p], lr=peak, momentum=0.9)
    else:
        opt = torch.optim.Adam([p], lr=peak)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, peak, total_steps=steps, pct_start=0.25, base_momentum=0.8, max_momentum=0.93
    )
    expected = []
    for _ in range(steps):
        opt.zero_grad()
        (torch.tensor(a) * p**2).sum().backward()
        opt.step()
        sched.step()
        expected.append(p.detach().numpy().copy())

    lr = one_cycle_schedule(steps, peak, pct_start=0.25)
    momentum = one_cycle_momentum_schedule(steps, 0.8, 0.93, pct_start=0.25)
    if optimizer == "sgd":
        tx = inject_hyperparams(gx.sgd)(learning_rate=lr, momentum=momentum)
    else:
        tx = inject_hyperparams(gx.adam)(learning_rate=lr, b1=momentum)
    w = jnp.asarray(w0)
    state = tx.init(w)
    step = jax.jit(lambda w, s: tx.update(2.0 * a * w, s, w))
    ours = []
    for _ in range(steps):
        u, state = step(w, state)
        w = gx.apply_updates(w, u)
        ours.append(np.asarray(w))
    np.testing.assert_allclose(np.array(ours), np.array(expected), rtol=2e-5, atol=1e-6)


# ---------------------------------------------------------- other arguments


def test_callable_that_is_not_a_schedule_needs_static_args():
    def mask(params):
        return jax.tree.map(lambda p: p.ndim > 1, params)

    with pytest.raises(TypeError, match="static_args"):
        inject_hyperparams(gx.adamw)(0.1, mask=mask)
    params = make_params()
    grads = grad_sequence(params, steps=4)
    tx = inject_hyperparams(gx.adamw, static_args="mask")(0.1, weight_decay=0.5, mask=mask)
    wrapped, _, state = run(tx, params, grads, jit=True)
    plain, _, _ = run(gx.adamw(0.1, weight_decay=0.5, mask=mask), params, grads, jit=True)
    chex.assert_trees_all_equal(wrapped, plain)
    assert sorted(state.hyperparams) == [
        "b1",
        "b2",
        "eps",
        "eps_root",
        "learning_rate",
        "weight_decay",
    ]


def test_hyperparams_needed_as_python_numbers_are_passed_through():
    def sgd_with_float_momentum(learning_rate, momentum=0.9):
        return gx.sgd(learning_rate, momentum=float(momentum))

    tx = inject_hyperparams(sgd_with_float_momentum)(0.1, 0.5)
    state = tx.init(jnp.zeros(2))
    assert sorted(state.hyperparams) == ["learning_rate"]
    wrapped, _, _ = run(tx, jnp.zeros(2), [jnp.ones(2)] * 3, jit=True)
    plain, _, _ = run(gx.sgd(0.1, momentum=0.5), jnp.zeros(2), [jnp.ones(2)] * 3, jit=True)
    chex.assert_trees_all_equal(wrapped, plain)
    with pytest.raises(TypeError, match=r"momentum=.*cannot be a schedule"):
        inject_hyperparams(sgd_with_float_momentum)(0.1, lambda t: jnp.float32(0.5))

    def scale_in_update(learning_rate, factor=2.0):
        def update_fn(updates, state, params=None, **extra_args):
            return jax.tree.map(lambda u: u * float(factor), updates), state

        return gx.chain(
            gx.GradientTransformation(lambda p: gx.EmptyState(), update_fn), gx.sgd(learning_rate)
        )

    tx = inject_hyperparams(scale_in_update)(0.1, 3.0)
    assert sorted(tx.init(jnp.zeros(2)).hyperparams) == ["learning_rate"]
    wrapped, _, _ = run(tx, jnp.zeros(2), [jnp.ones(2)], jit=True)
    chex.assert_trees_all_close(wrapped, [jnp.full(2, -0.3)])


def test_counts_stay_static_and_extra_args_reach_the_inner_transformation():
    tx = inject_hyperparams(reduce_on_plateau)(factor=0.5, patience=1)
    state = tx.init(jnp.zeros(1))
    assert sorted(state.hyperparams) == ["atol", "factor", "min_scale", "rtol"]
    for loss in [1.0, 2.0]:
        updates, state = jax.jit(tx.update)(jnp.ones(1), state, value=loss)
    chex.assert_trees_all_close(updates, jnp.array([0.5]))
    state = set_hyperparams(state, factor=0.1)
    updates, state = tx.update(jnp.ones(1), state, value=3.0)
    chex.assert_trees_all_close(updates, jnp.array([0.05]))


def _seeded_noise(learning_rate, seed=None, scale=1.0):
    """A factory whose seed must stay an integer: a float seed makes PRNGKey fail."""

    def init(params):
        return jax.random.PRNGKey(seed)

    def update(updates, key, params=None):
        key, sub = jax.random.split(key)
        noise = jax.random.normal(sub, jnp.shape(updates))
        return -learning_rate * (updates + scale * noise), key

    return gx.GradientTransformation(init, update)


def test_integer_hyperparameters_stay_integers_as_in_optax():
    """optax's rule: an int stays an int (a seed too); only floats take the float dtype."""
    optax = require("optax")
    params = jnp.zeros(3)
    ours = inject_hyperparams(_seeded_noise)(0.1, seed=3)
    with jax.numpy_dtype_promotion("standard"):
        theirs = optax.inject_hyperparams(_seeded_noise)(0.1, seed=3)
        u_theirs, s_theirs = jax.jit(theirs.update)(jnp.ones(3), theirs.init(params), params)
    u_ours, s_ours = jax.jit(ours.update)(jnp.ones(3), ours.init(params), params)
    assert s_ours.hyperparams["seed"].dtype == s_theirs.hyperparams["seed"].dtype == jnp.int32
    chex.assert_trees_all_equal(u_ours, u_theirs)
    assert s_ours.hyperparams["learning_rate"].dtype == jnp.float32
    tx = inject_hyperparams(gx.sgd)(learning_rate=0.1, momentum=0)
    state = tx.init(jnp.zeros(1))
    assert state.hyperparams["momentum"].dtype == jnp.int32
    with pytest.raises(TypeError, match="truncated"):
        set_hyperparams(state, momentum=0.5)


@pytest.mark.parametrize("param_dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize(
    "hyperparam_dtype", [None, jnp.float32, jnp.bfloat16], ids=["default", "f32", "bf16"]
)
def test_hyperparam_dtypes_follow_optax(param_dtype, hyperparam_dtype):
    """Floats take ``hyperparam_dtype``, else the params' highest float dtype; a JAX array
    of a dtype of its own keeps it; a weakly typed one does not."""
    optax = require("optax")
    params = {"a": jnp.ones(2, param_dtype), "b": jnp.ones((1, 2), param_dtype)}
    kwargs = dict(b1=0.9, b2=jnp.asarray(0.95), eps=jnp.asarray(1e-8, jnp.float32))
    ours = inject_hyperparams(gx.scale_by_adam, hyperparam_dtype=hyperparam_dtype)(**kwargs)
    with jax.numpy_dtype_promotion("standard"):
        theirs = optax.inject_hyperparams(optax.scale_by_adam, hyperparam_dtype=hyperparam_dtype)(
            **kwargs
        )
        s_theirs = theirs.init(params)
    s_ours = ours.init(params)
    expected = param_dtype if hyperparam_dtype is None else hyperparam_dtype
    for name in ("b1", "b2"):
        assert s_ours.hyperparams[name].dtype == expected
    assert s_ours.hyperparams["eps"].dtype == jnp.float32
    for name, value in s_theirs.hyperparams.items():
        assert s_ours.hyperparams[name].dtype == value.dtype, name
    grads = jax.tree.map(jnp.ones_like, params)
    _, s_ours = jax.jit(ours.update)(grads, s_ours, params)
    for name in ("b1", "b2"):
        assert s_ours.hyperparams[name].dtype == expected


class _Accumulating:
    """A stateful schedule: the sum of the ``addendum`` extra arguments seen so far."""

    def init(self):
        return jnp.zeros([], jnp.float32)

    def update(self, state, **extra_args):
        return state + extra_args["addendum"]

    def __call__(self, state, **extra_args):
        return state


def test_stateful_schedules_and_state_layout_match_optax():
    optax = require("optax")
    params = (jnp.ones(3), jnp.ones(2))
    ours = inject_hyperparams(gx.scale)(step_size=_Accumulating())
    theirs = optax.inject_hyperparams(optax.scale)(step_size=_Accumulating())
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for _ in range(3):
        u_ours, s_ours = jax.jit(ours.update)(params, s_ours, params, addendum=jnp.float32(0.5))
        u_theirs, s_theirs = jax.jit(theirs.update)(
            params, s_theirs, params, addendum=jnp.float32(0.5)
        )
    # The value used by an update is computed before the state advances: 0, 0.5, 1.0.
    chex.assert_trees_all_close(u_ours, jax.tree.map(lambda p: 1.0 * p, params))
    assert float(s_ours.hyperparams_states["step_size"]) == 1.5
    chex.assert_trees_all_equal(u_ours, u_theirs)
    assert type(s_ours).__name__ == type(s_theirs).__name__
    assert s_ours._fields == s_theirs._fields
    chex.assert_trees_all_equal(tuple(s_ours[:3]), tuple(s_theirs[:3]))
    # A plain schedule is a WrappedSchedule: its state is the step count.
    tx = inject_hyperparams(gx.sgd)(learning_rate=linear_schedule(1.0, 0.0, 4))
    state = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[1]
    assert int(state.hyperparams_states["learning_rate"].count) == 1
    wrapped = WrappedSchedule(linear_schedule(1.0, 0.0, 4))
    s = wrapped.update(wrapped.update(wrapped.init(), loss=1.0))
    assert float(wrapped(s)) == 0.5 and isinstance(wrapped, gx.StatefulSchedule)


def test_inject_stateful_hyperparams_is_the_deprecated_name():
    with pytest.warns(DeprecationWarning, match="inject_hyperparams"):
        tx = gx.inject_stateful_hyperparams(gx.sgd)(0.1)
    state = tx.init(jnp.zeros(1))
    assert isinstance(state, InjectStatefulHyperparamsState)


@pytest.mark.parametrize(
    "kwargs,match,error",
    [
        (dict(learning_rate=-1.0), "learning_rate=", ValueError),
        (dict(learning_rate=0.1, b1=1.5), "b1=", ValueError),
        (dict(learning_rate=lambda t: jnp.float32(-1.0)), "learning_rate=", ValueError),
        (dict(learning_rate=lambda t: "fast"), "static_args", TypeError),
    ],
)
def test_bad_hyperparameters_raise_at_construction(kwargs, match, error):
    with pytest.raises(error, match=match):
        inject_hyperparams(gx.adam)(**kwargs)


def test_bad_static_args_and_set_hyperparams_calls_raise():
    with pytest.raises(ValueError, match="static_args="):
        inject_hyperparams(gx.adam, static_args=("learning_rat",))
    state = inject_hyperparams(gx.adam)(0.1).init(jnp.zeros(1))
    with pytest.raises(ValueError, match="learning_rat="):
        set_hyperparams(state, learning_rat=0.2)
    with pytest.raises(ValueError, match="shape"):
        set_hyperparams(state, learning_rate=jnp.ones(2))
    with pytest.raises(TypeError, match="InjectHyperparamsState"):
        set_hyperparams(state.inner_state, learning_rate=0.2)
    int_state = inject_hyperparams(gx.sgd)(0.1, momentum=jnp.int32(0)).init(jnp.zeros(1))
    with pytest.raises(TypeError, match="truncated"):
        set_hyperparams(int_state, momentum=0.9)
    tx = inject_hyperparams(gx.adam)(0.1)
    state = tx.init(jnp.zeros(1))
    state.hyperparams["lr"] = jnp.float32(0.1)
    with pytest.raises(ValueError, match="lr"):
        tx.update(jnp.ones(1), state)
