"""Properties of the optimizer zoo that the shared battery does not check."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from gradxform import (
    FactoredState,
    adabelief,
    adadelta,
    adafactor,
    adamax,
    adamaxw,
    amsgrad,
    ftrl,
    lamb,
    lars,
    lion,
    nadam,
    nadamw,
    nesterov_lookahead_point,
    radam,
    scale_by_adamax,
    scale_by_factored_rms,
    scale_by_ftrl,
    scale_by_lion,
    scale_by_param_block_rms,
    scale_by_radam,
    scale_by_trust_ratio,
    sgd_nesterov_lookahead,
    sign_sgd,
    signum,
    yogi,
)
from tests import references as ref

# ------------------------------------------------------------------- Nesterov, two forms


def rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


@pytest.mark.parametrize("momentum", [0.5, 0.9])
def test_nesterov_forms_give_the_same_iterates_under_the_change_of_variable(momentum):
    """Look-ahead form (gradient at theta + mu v) vs the reformulated form of sgd(nesterov=True):
    phi_t = theta_t + mu * v_t of the first are the iterates of the second."""
    lr, x0 = 5e-4, jnp.array([-1.2, 1.0])
    look = sgd_nesterov_lookahead(lr, momentum)
    theta, s_look = x0, look.init(x0)
    reform = gx.sgd(lr, momentum=momentum, nesterov=True)
    phi, s_reform = x0, reform.init(x0)
    for t in range(60):
        g = jax.grad(rosenbrock)(nesterov_lookahead_point(theta, s_look, momentum))
        v, s_look = look.update(g, s_look, theta)
        theta = gx.apply_updates(theta, v)
        u, s_reform = reform.update(jax.grad(rosenbrock)(phi), s_reform, phi)
        phi = gx.apply_updates(phi, u)
        chex.assert_trees_all_close(
            nesterov_lookahead_point(theta, s_look, momentum),
            phi,
            rtol=1e-5,
            atol=1e-6,
            custom_message=f"step {t + 1}",
        )
    assert float(jnp.max(jnp.abs(theta - x0))) > 1e-2  # it moved


def test_nesterov_lookahead_point_checks_its_state():
    with pytest.raises(TypeError, match="sgd_nesterov_lookahead"):
        nesterov_lookahead_point(jnp.zeros(2), gx.sgd(0.1).init(jnp.zeros(2)), 0.9)
    with pytest.raises(ValueError, match="momentum"):
        tx = sgd_nesterov_lookahead(0.1)
        nesterov_lookahead_point(jnp.zeros(2), tx.init(jnp.zeros(2)), 1.5)


# --------------------------------------------------------------------------------- FTRL


def run_leafwise(tx, reference, params, grads):
    """Iterates of ``tx`` and of a NumPy reference (float64) from the same start."""
    state = tx.init(params)
    ref_p = np.asarray(params, np.float64)
    ref_s = reference.init(ref_p)
    ours, theirs = [], []
    for g in grads:
        u, state = tx.update(g, state, params)
        params = gx.apply_updates(params, u)
        du, ref_s = reference.step(np.asarray(g, np.float64), ref_s, ref_p)
        ref_p = ref_p + du
        ours.append(np.asarray(params))
        theirs.append(ref_p)
    return ours, theirs


def ftrl_problem(steps=30, scale=0.05):
    rng = np.random.default_rng(3)
    params = jnp.asarray(scale * rng.normal(size=(64,)), jnp.float32)
    # a few strong coordinates and many weak ones, so that l1 zeroes some of them
    strength = np.where(np.arange(64) < 16, 1.0, 0.05)
    grads = [jnp.asarray(strength * rng.normal(size=(64,)), jnp.float32) for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(learning_rate=0.1),
        dict(learning_rate=0.1, l1=0.05, l2=0.01, l2_shrinkage=0.02, beta=0.3),
        dict(learning_rate=0.3, learning_rate_power=-0.7, initial_accumulator_value=0.5, l1=0.02),
        dict(learning_rate=0.1, l1=0.05, proximal_center="params"),
    ],
    ids=["plain", "regularised", "power", "params-center"],
)
def test_ftrl_matches_reference(kwargs):
    params, grads = ftrl_problem()
    ours, theirs = run_leafwise(ftrl(**kwargs), ref.FTRL(**kwargs), params, grads)
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"step {t + 1}")


def test_ftrl_with_a_schedule_matches_reference():
    def schedule(t):
        return 0.2 / (1.0 + 0.1 * jnp.asarray(t).astype(jnp.float32))

    params, grads = ftrl_problem()
    kwargs = dict(l1=0.05, l2=0.01, beta=0.3)
    ours, theirs = run_leafwise(
        ftrl(schedule, **kwargs), ref.FTRL(lambda t: 0.2 / (1.0 + 0.1 * t), **kwargs), params, grads
    )
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"step {t + 1}")


def test_ftrl_l1_gives_exact_zeros_where_the_accumulated_gradient_stays_under_l1():
    params, grads = ftrl_problem()
    l1 = 0.3
    ours, theirs = run_leafwise(ftrl(0.1, l1=l1), ref.FTRL(0.1, l1=l1), params, grads)
    final, expected = ours[-1], theirs[-1]
    zeros = expected == 0.0  # the reference's |z| <= l1 test
    assert 10 < int(zeros.sum()) < 64
    np.testing.assert_array_equal(final == 0.0, zeros)
    assert np.all(final[zeros] == 0.0)  # exactly 0.0, not 1e-9
    assert not np.any(np.signbit(final[zeros]))  # and +0.0


def test_ftrl_params_center_keeps_weights_under_zero_gradients_and_origin_does_not():
    w = jnp.array([0.5, -2.0, 3.0])
    zero = jnp.zeros(3)
    kept = ftrl(0.1, proximal_center="params")
    u, _ = kept.update(zero, kept.init(w), w)
    chex.assert_trees_all_equal(u, zero)
    pulled = ftrl(0.1)
    u, _ = pulled.update(zero, pulled.init(w), w)
    chex.assert_trees_all_equal(gx.apply_updates(w, u), zero)  # the origin's proximal term


# ---------------------------------------------------------------------- NAdam, RAdam


@pytest.mark.parametrize(
    ("b1", "momentum_decay"), [(0.9, 4e-3), (0.9, 1.0), (0.99, 4e-3), (0.5, 0.3), (0.0, 4e-3)]
)
def test_dozat_schedule_matches_the_running_product(b1, momentum_decay):
    # With b2 = 0 and a unit gradient v^_t = 1, and from m_{t-1} = 0 NAdam's step is
    # mu_{t+1} (1 - b1) / (1 - P_{t+1}) + (1 - mu_t) / (1 - P_t): its closed-form product
    # must match the running product mu_1 ... mu_t at every step.
    tx = gx.scale_by_adam(
        b1=b1,
        b2=0.0,
        eps=0.0,
        nesterov=True,
        momentum_schedule="dozat",
        momentum_decay=momentum_decay,
    )
    fresh = tx.init(jnp.zeros(1))
    b1_32 = float(np.float32(b1))
    product = 1.0
    for t in range(1, 400):
        mu = b1_32 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1_32 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        product *= mu
        expected = mu_next * (1 - b1_32) / (1 - product * mu_next) + (1 - mu) / (1 - product)
        state = fresh._replace(count=jnp.int32(t - 1))
        got = float(tx.update(jnp.ones(1), state)[0][0])
        np.testing.assert_allclose(got, expected, rtol=2e-6, err_msg=f"t={t}")


@pytest.mark.parametrize("b2", [0.0, 0.5, 0.9, 0.99, 0.999, 0.9999])
def test_radam_rectification_is_accurate_in_float32(b2):
    # From m = v = 0 with b1 = 0 and a unit gradient: m^_t = 1, v^_t = (1 - b2) / (1 - b2**t),
    # so the step is r_t / sqrt(v^_t) once rho_t > 5 and 1 before. A direct float32 rho_t
    # loses about four digits to cancellation for b2 near 1; the step must not.
    tx = gx.scale_by_radam(b1=0.0, b2=b2, eps=0.0)
    fresh = tx.init(jnp.zeros(1))
    b2 = float(np.float32(b2))  # b2 as RAdam sees it
    for t in [*range(1, 2000, 7), 10**4, 10**5, 10**7, 2**31 - 1]:
        rho_inf = 2 / (1 - b2) - 1
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t) if b2 > 0 else 1.0
        if rho > 5:
            r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            expected = r / np.sqrt((1 - b2) / (1 - b2**t))
        else:
            expected = 1.0
        got = float(tx.update(jnp.ones(1), fresh._replace(count=jnp.int32(t - 1)))[0][0])
        np.testing.assert_allclose(got, expected, rtol=3e-6, err_msg=f"t={t}")


def test_radam_rectifies_only_past_the_threshold():
    tx = scale_by_radam(b1=0.0, b2=0.999, eps=0.0)
    state = tx.init(jnp.zeros(1))
    for t in range(1, 9):
        u, state = tx.update(jnp.array([2.0]), state)
        if t <= 5:  # rho_t <= 5: the plain (bias-corrected) momentum, here g
            np.testing.assert_allclose(u, [2.0], rtol=1e-6)
        else:  # rectified: r_t * m^ / sqrt(v^) = r_t * sign(g)
            assert 0 < float(u[0]) < 1.0


# --------------------------------------------------------------------------- AMSGrad


def test_amsgrad_has_its_own_state_with_optax_fields():
    p = jnp.zeros(3)
    assert gx.ScaleByAdamState._fields == ("count", "mu", "nu")
    state = gx.scale_by_amsgrad().init(p)
    assert isinstance(state, gx.ScaleByAmsgradState)
    assert gx.ScaleByAmsgradState._fields == ("count", "mu", "nu", "nu_max")
    chex.assert_trees_all_equal(state.nu_max, jnp.zeros(3))


@pytest.mark.parametrize("amsgrad_max", ["raw", "corrected"])
def test_amsgrad_never_takes_a_larger_denominator_step_back(amsgrad_max):
    """The running maximum never decreases, whatever the gradients do."""
    tx = gx.scale_by_amsgrad(amsgrad_max=amsgrad_max)
    state = tx.init(jnp.zeros(2))
    previous = state.nu_max
    for g in [10.0, 0.1, 0.1, 5.0, 0.0, 0.0]:
        _, state = tx.update(jnp.full(2, g), state)
        assert bool(jnp.all(state.nu_max >= previous))
        previous = state.nu_max


# ------------------------------------------------------------------------- Adafactor


def test_factored_state_is_sublinear_in_optax_layout():
    params = {
        "matrix": jnp.zeros((6, 5)),
        "tensor": jnp.zeros((2, 6, 5)),
        "wide": jnp.zeros((5, 7)),
        "vector": jnp.zeros(5),
        "small": jnp.zeros((2, 3)),
    }
    state = scale_by_factored_rms(min_dim_size_to_factor=4).init(params)
    assert isinstance(state, FactoredState)
    assert FactoredState._fields == ("count", "v_row", "v_col", "v")
    # Factored over the two longest axes d1, d0: v_row drops d0, v_col drops d1.
    chex.assert_shape(
        [state.v_row["matrix"], state.v_col["matrix"], state.v["matrix"]], [(5,), (6,), (1,)]
    )
    chex.assert_shape([state.v_row["tensor"], state.v_col["tensor"]], [(2, 5), (2, 6)])
    chex.assert_shape([state.v_row["wide"], state.v_col["wide"]], [(5,), (7,)])
    chex.assert_shape(
        [state.v["vector"], state.v["small"], state.v_row["small"]], [(5,), (2, 3), (1,)]
    )


def test_factored_state_matches_optax_layout_and_values():
    rng = np.random.default_rng(0)
    params = {"m": jnp.zeros((6, 5)), "t": jnp.zeros((3, 2, 7)), "v": jnp.zeros(4)}
    grads = [
        jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
        for _ in range(4)
    ]
    ours, theirs = (
        f(min_dim_size_to_factor=2, decay_rate=0.7, step_offset=1)
        for f in (scale_by_factored_rms, optax.scale_by_factored_rms)
    )
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    chex.assert_trees_all_equal_shapes_and_dtypes(tuple(s_ours), tuple(s_theirs))
    for g in grads:
        u_ours, s_ours = ours.update(g, s_ours, params)
        u_theirs, s_theirs = theirs.update(g, s_theirs, params)
        chex.assert_trees_all_close(u_ours, u_theirs, rtol=2e-5)
        chex.assert_trees_all_close(tuple(s_ours), tuple(s_theirs), rtol=2e-5)


def test_factoring_acts_on_the_two_longest_axes_independently_per_slice():
    rng = np.random.default_rng(0)
    tx = scale_by_factored_rms(min_dim_size_to_factor=1)
    grads = [jnp.asarray(rng.normal(size=(2, 3, 4)), jnp.float32) for _ in range(4)]
    state = tx.init(grads[0])
    slices = [tx.init(grads[0][i]) for i in range(2)]
    for g in grads:
        u, state = tx.update(g, state)
        for i in range(2):
            ui, slices[i] = tx.update(g[i], slices[i])
            chex.assert_trees_all_close(u[i], ui, rtol=1e-6)


def test_factored_decay_rate_fn_and_step_offset():
    seen = []

    def decay_fn(step, rate):
        del step
        seen.append(rate)
        return jnp.asarray(0.5, jnp.float32)

    tx = scale_by_factored_rms(factored=False, epsilon=0.0, decay_rate_fn=decay_fn, decay_rate=0.3)
    g = jnp.array([2.0])
    u, state = tx.update(g, tx.init(g))  # v = 0.5 * 0 + 0.5 * 4 = 2
    chex.assert_trees_all_close(u, g / jnp.sqrt(2.0))
    assert seen == [0.3]
    # step_offset shifts the step of the default schedule: a state at count c with offset c
    # decays like a fresh one (b = 0: the new squared gradient only).
    shifted = scale_by_factored_rms(factored=False, epsilon=0.0, step_offset=5)
    state = shifted.init(g)._replace(count=jnp.int32(5))
    state = state._replace(v=jnp.full(1, 100.0))
    chex.assert_trees_all_close(shifted.update(g, state)[0], jnp.ones(1))


def test_factored_layout_error_names_the_key_path():
    tx = scale_by_factored_rms(min_dim_size_to_factor=1)
    state = tx.init({"enc": {"w": jnp.zeros((3, 4))}})
    with pytest.raises(ValueError, match=r"enc/w.*\(3, 5\).*v_row \(3,\).*v_col \(4,\)"):
        tx.update({"enc": {"w": jnp.zeros((3, 5))}}, state)


def test_factored_estimate_is_exact_for_a_rank_one_square():
    """If g**2 is an outer product the factored estimate equals the full one."""
    rows, cols = jnp.array([1.0, 2.0, 3.0]), jnp.array([0.5, 1.0, 4.0, 2.0])
    g = jnp.sqrt(rows[:, None] * cols[None, :])
    factored = scale_by_factored_rms(epsilon=0.0, min_dim_size_to_factor=1)
    full = scale_by_factored_rms(epsilon=0.0, factored=False)
    chex.assert_trees_all_close(
        factored.update(g, factored.init(g))[0], full.update(g, full.init(g))[0], rtol=1e-6
    )


def test_parameter_scale_has_a_floor():
    tx = scale_by_param_block_rms(min_scale=0.01)
    params = {"zero": jnp.zeros(3), "big": jnp.full(3, 2.0)}
    out, _ = tx.update({"zero": jnp.ones(3), "big": jnp.ones(3)}, tx.init(params), params)
    chex.assert_trees_all_close(out, {"zero": jnp.full(3, 0.01), "big": jnp.full(3, 2.0)})


# ----------------------------------------------------------------- trust ratio, sign


def test_trust_ratio_mask_and_zero_norms():
    params = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([3.0, 4.0]), "c": jnp.zeros(2)}
    updates = {"a": jnp.array([0.0, 0.5]), "b": jnp.array([0.0, 0.5]), "c": jnp.ones(2)}
    tx = scale_by_trust_ratio(mask={"a": True, "b": False, "c": True})
    out, _ = tx.update(updates, tx.init(params), params)
    chex.assert_trees_all_close(
        out, {"a": jnp.array([0.0, 5.0]), "b": updates["b"], "c": updates["c"]}
    )


def test_lion_update_is_a_sign():
    tx = scale_by_lion()
    rng = np.random.default_rng(0)
    state = tx.init(jnp.zeros(50))
    for _ in range(5):
        u, state = tx.update(jnp.asarray(rng.normal(size=50), jnp.float32), state)
        assert set(np.unique(np.asarray(u)).tolist()) <= {-1.0, 0.0, 1.0}


# --------------------------------------------------------------------------- general

OPTIMIZERS = {
    "adamax": lambda: adamax(0.1),
    "adamaxw": lambda: adamaxw(0.1),
    "amsgrad": lambda: amsgrad(0.1),
    "nadam": lambda: nadam(0.1),
    "nadamw": lambda: nadamw(0.1),
    "radam": lambda: radam(0.1),
    "adadelta": lambda: adadelta(),
    "ftrl": lambda: ftrl(0.1),
    "sgd_nesterov_lookahead": lambda: sgd_nesterov_lookahead(0.1),
    "lion": lambda: lion(0.1),
    "lamb": lambda: lamb(0.1),
    "lars": lambda: lars(0.1),
    "adafactor": lambda: adafactor(0.1),
    "sign_sgd": lambda: sign_sgd(0.1),
    "signum": lambda: signum(0.1),
    "adabelief": lambda: adabelief(0.1),
    "yogi": lambda: yogi(0.1),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_named_optimizers_are_chains(name):
    state = OPTIMIZERS[name]().init({"w": jnp.zeros((2, 3))})
    assert isinstance(state, tuple) and not hasattr(state, "_fields")


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_schedules_do_not_recompile(name):
    """A schedule as learning rate: one trace for several steps."""
    tx = _by_name(name)(lambda t: 0.1 / (1.0 + jnp.asarray(t).astype(jnp.float32)))
    traces = []

    @jax.jit
    def step(p, s, g):
        traces.append(1)
        u, s = tx.update(g, s, p)
        return gx.apply_updates(p, u), s

    p = {"w": jnp.ones((2, 3))}
    s = tx.init(p)
    for _ in range(3):
        p, s = step(p, s, {"w": jnp.full((2, 3), 0.5)})
    assert len(traces) == 1
    assert bool(jnp.all(jnp.isfinite(p["w"])))


def _by_name(name):
    return getattr(gx, name)


BAD = [
    (lambda: adamax(0.1, b1=1.0), "b1"),
    (lambda: scale_by_adamax(eps=-1.0), "eps"),
    (lambda: nadam(0.1, momentum_schedule="warm"), "momentum_schedule"),
    (lambda: nadam(0.1, momentum_schedule="dozat", momentum_decay=0.0), "momentum_decay"),
    (lambda: gx.scale_by_adam(momentum_schedule="dozat"), "nesterov"),
    (lambda: amsgrad(0.1, amsgrad_max="biggest"), "amsgrad_max"),
    (lambda: radam(0.1, threshold=3.0), "threshold"),
    (lambda: adadelta(rho=1.0), "rho"),
    (lambda: adadelta(eps=0.0), "eps"),
    (lambda: adadelta(weight_decay=-0.1), "weight_decay"),
    (lambda: ftrl(0.0), "learning_rate"),
    (lambda: ftrl(0.1, learning_rate_power=0.5), "learning_rate_power"),
    (lambda: ftrl(0.1, l1=-1.0), "l1"),
    (lambda: ftrl(0.1, beta=-1.0), "beta"),
    (lambda: scale_by_ftrl(0.1, proximal_center="init"), "proximal_center"),
    (lambda: lion(0.1, b2=1.5), "b2"),
    (lambda: lamb(0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: lars(0.1, trust_coefficient=0.0), "trust_coefficient"),
    (lambda: lars(0.1, momentum=1.0), "momentum"),
    (lambda: adafactor(0.1, clipping_threshold=-1.0), "threshold"),
    (lambda: adafactor(0.1, min_scale=-1.0), "min_scale"),
    (lambda: adafactor(0.1, decay_rate=-0.8), "decay_rate"),
    (lambda: signum(0.1, beta=2.0), "beta"),
    (lambda: sign_sgd(-0.1), "learning_rate"),
    (lambda: adabelief(0.1, eps_root=-1.0), "eps_root"),
    (lambda: yogi(0.1, initial_accumulator_value=-1.0), "initial_accumulator_value"),
]


@pytest.mark.parametrize(("make", "name"), BAD, ids=[f"{i}-{n}" for i, (_, n) in enumerate(BAD)])
def test_bad_arguments_raise_at_construction_naming_them(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_non_integer_min_dim_size_is_a_type_error():
    with pytest.raises(TypeError, match="min_dim_size_to_factor"):
        adafactor(0.1, min_dim_size_to_factor=1.5)
    with pytest.raises(ValueError, match="min_dim_size_to_factor"):
        adafactor(0.1, min_dim_size_to_factor=0)
