"""PSGD-Kron against pytorch-optimizer's ``Kron`` (docs/parity.md), and its speed.

Both sides get the same probe vectors: gradxform draws them from its state's key by the
documented schedule (``probes(step_key, leaves)``, the step key the second half of the
key's split at each step), and torch's ``randn_like`` is replaced, for the duration of a
run, by a function handing ``Kron`` those same draws in its parameter order. ``Kron``
rebalances its factors with probability ``balance_prob`` at a fitting step; gradxform at
every fitting step: rebalancing leaves the preconditioner unchanged (the product of the
factors is the same), and ``balance_prob=1`` makes torch do the same work.

Each case runs STEPS steps on a per-coordinate quadratic plus a fixed noise sequence
(every gradient depends on the iterate) and compares the iterates after every step at
rtol 1e-4: both sides compute in float32, but a fitting step divides by the lower bound
of a spectral norm and solves triangular systems, and the differences of rounding (torch
evaluates the fit with einsum contractions in another order) grow through the fed-back
iterates; measured gaps: at most 5e-6 relative over 8 steps, 7e-5 over 20 (extended).
"""

from __future__ import annotations

import contextlib
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform._transforms.psgd_factors import probes
from tests._require import require

torch = require("torch", why="pytorch-optimizer Kron parity")
pto = require("pytorch_optimizer", why="pytorch-optimizer Kron parity")

STEPS = 8
RTOL, ATOL = 1e-4, 1e-6
LR = 0.05
SHAPES = {"b": (6,), "s": (), "w": (4, 6)}  # sorted: the order of jax.tree.leaves


def problem(shapes: dict[str, tuple[int, ...]], steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    init = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    curvature = {
        k: rng.uniform(0.2, 1.0, size=np.shape(v)).astype(np.float32) for k, v in init.items()
    }
    noise = [
        {k: (0.5 * rng.normal(size=np.shape(v))).astype(np.float32) for k, v in init.items()}
        for _ in range(steps)
    ]

    def grad(params: dict[str, Any], t: int) -> dict[str, np.ndarray]:
        return {k: (curvature[k] * params[k] + noise[t][k]).astype(np.float32) for k in params}

    return init, grad


def ndim_mask(params: Any) -> Any:
    """pytorch-optimizer's decay: the leaves of two or more axes only."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def run_jax(kwargs: dict[str, Any], init, grad, steps: int):
    tx = gx.kron(LR, weight_decay_mask=ndim_mask, **kwargs)
    params = {k: jnp.asarray(v) for k, v in init.items()}
    state = tx.init(params)
    step = jax.jit(tx.update)
    out = []
    for t in range(steps):
        g = grad({k: np.asarray(v) for k, v in params.items()}, t)
        g = {k: jnp.asarray(v) for k, v in g.items()}
        updates, state = step(g, state, params)
        params = gx.apply_updates(params, updates)
        out.append({k: np.asarray(v) for k, v in params.items()})
    return out


def step_probes(seed: int, shapes: dict[str, Any], steps: int) -> list[list[np.ndarray]]:
    """The probes of each step, leaf by leaf, as :func:`gx.scale_by_kron` documents them."""
    key = jax.random.key(seed)
    draws = []
    for _ in range(steps):
        key, step_key = jax.random.split(key)
        draws.append([np.asarray(v) for v in probes(step_key, list(shapes.values()))])
    return draws


@contextlib.contextmanager
def fed_randn_like(queue: list[np.ndarray]):
    """``torch.randn_like`` handing out the arrays of ``queue`` in order."""
    original = torch.randn_like

    def fake(like, dtype=None, **kw):
        v = queue.pop(0)
        assert tuple(v.shape) == tuple(like.shape), (v.shape, like.shape)
        return torch.from_numpy(np.array(v)).to(dtype or like.dtype)

    torch.randn_like = fake
    try:
        yield
    finally:
        torch.randn_like = original


def run_torch(kwargs: dict[str, Any], init, grad, steps: int, seed: int = 0):
    """``Kron``'s iterates, fed the probes that gradxform draws from ``key=seed``."""
    ps = [torch.nn.Parameter(torch.from_numpy(np.array(v))) for v in init.values()]
    names = list(init)
    prob = kwargs.get("preconditioner_update_probability")  # None: both default schedules
    if isinstance(prob, tuple):  # (max_prob, min_prob, decay, flat_start)
        prob = pto.optimizer.psgd.precondition_update_prob_schedule(*prob)
    opt = pto.Kron(
        ps,
        lr=LR,
        momentum=kwargs.get("b1", 0.9),
        weight_decay=kwargs.get("weight_decay", 0.0),
        pre_conditioner_update_probability=prob,
        max_size_triangular=kwargs.get("max_size_triangular", 8192),
        min_ndim_triangular=kwargs.get("min_ndim_triangular", 2),
        memory_save_mode=kwargs.get("memory_save_mode"),
        momentum_into_precondition_update=kwargs.get("momentum_into_precond_update", True),
        balance_prob=1.0,
    )
    opt.param_groups[0]["precondition_lr"] = kwargs.get("preconditioner_lr", 0.1)
    opt.param_groups[0]["precondition_init_scale"] = kwargs.get("preconditioner_init_scale", 1.0)
    draws = step_probes(seed, {k: np.shape(v) for k, v in init.items()}, steps)
    out = []
    for t in range(steps):
        g = grad({k: p.detach().numpy() for k, p in zip(names, ps, strict=True)}, t)
        for k, p in zip(names, ps, strict=True):
            p.grad = torch.from_numpy(np.array(g[k]))
        queue = list(draws[t])
        with fed_randn_like(queue):
            opt.step()
        assert not queue or len(queue) == len(ps), "Kron drew some probes, not all"
        out.append({k: p.detach().numpy().copy() for k, p in zip(names, ps, strict=True)})
    return out


def ours_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    prob = kwargs.get("preconditioner_update_probability")
    if isinstance(prob, tuple):
        schedule = gx.precond_update_prob_schedule(*prob)
        kwargs = {**kwargs, "preconditioner_update_probability": schedule}
    return kwargs


def close(ours: list[Any], theirs: list[Any]) -> bool:
    return all(
        np.allclose(a[k], b[k], rtol=RTOL, atol=ATOL)
        for a, b in zip(ours, theirs, strict=True)
        for k in a
    )


def assert_parity(
    kwargs: dict[str, Any], shapes=SHAPES, steps: int = STEPS, control: bool = False
) -> None:
    """gradxform's iterates are torch's, step by step; with ``control``, torch fed the
    probes of another key must not match (the probes matter at this tolerance)."""
    init, grad = problem(shapes, steps)
    ours = run_jax(ours_kwargs(kwargs), init, grad, steps)
    theirs = run_torch(kwargs, init, grad, steps)
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for k in a:
            np.testing.assert_allclose(
                a[k], b[k], rtol=RTOL, atol=ATOL, err_msg=f"{kwargs}: step {t + 1}, leaf {k}"
            )
    if control:
        other = run_torch(kwargs, init, grad, steps, seed=1)
        assert not close(ours, other), "the probes of another key give the same iterates"


# The fast case: every fitting form at once (with max_size_triangular=4 the (4, 6) matrix
# gets a triangular and a diagonal factor, the (3, 2) matrix two triangular ones, the vector
# and the scalar diagonal ones), non-default settings, and a schedule whose skipped steps
# run the cond's other branch.
FAST = {
    "nondefault": dict(
        b1=0.8,
        weight_decay=0.1,
        preconditioner_update_probability=(1.0, 0.3, 0.5, 2),
        max_size_triangular=4,
        preconditioner_lr=0.2,
        preconditioner_init_scale=2.0,
    ),
}
FAST_SHAPES = {"b": (6,), "s": (), "v": (3, 2), "w": (4, 6)}


@pytest.mark.parametrize("kwargs", FAST.values(), ids=list(FAST))
def test_kron_matches_pytorch_optimizer(kwargs):
    assert_parity(kwargs, shapes=FAST_SHAPES, control=True)


def test_precond_update_prob_schedule_matches_pytorch_optimizer():
    steps = np.array([0, 1, 5, 9, 10, 11, 40, 100, 4000], np.int32)
    for args in [(), (0.9, 0.1, 0.05, 10)]:
        ours = gx.precond_update_prob_schedule(*args)
        theirs = pto.optimizer.psgd.precondition_update_prob_schedule(*args)
        got = np.asarray([ours(jnp.int32(n)) for n in steps])
        want = np.asarray([float(theirs(int(n))) for n in steps])
        np.testing.assert_allclose(got, want, rtol=1e-6)
        # Li's anneal, from its definition
        mx, mn, decay, flat = args or (1.0, 0.03, 0.001, 500)
        np.testing.assert_allclose(
            got, np.clip(mx * np.exp(-decay * (steps - flat)), mn, mx), rtol=1e-6
        )


@pytest.mark.extended
def test_fit_skipped_between_scheduled_steps_leaves_factors_unchanged():
    """With probability 1/3 the factors change at steps 3, 6, 9 only (the fit runs inside
    ``lax.cond``); the step compiles once."""
    params = {"w": jnp.ones((3, 4))}
    tx = gx.scale_by_kron(preconditioner_update_probability=1 / 3)
    state = tx.init(params)
    traces = []

    @jax.jit
    def step(g, state):
        traces.append(1)
        return tx.update(g, state)

    changed = []
    for t in range(9):
        g = {"w": jnp.full((3, 4), 0.1 * (t + 1)) + jnp.eye(3, 4)}
        _, new = step(g, state)
        before, after = jax.tree.leaves(state.Qs), jax.tree.leaves(new.Qs)
        changed.append(any(bool(jnp.any(a != b)) for a, b in zip(before, after, strict=True)))
        state = new
    assert changed == [False, False, True] * 3
    assert len(traces) == 1


# ------------------------------------------------------------------------- extended

EXTENDED = {
    "defaults": {},
    "one-diag": dict(memory_save_mode="one_diag"),
    "smart-one-diag-vectors-triangular": dict(
        memory_save_mode="smart_one_diag", min_ndim_triangular=1
    ),
    "all-diag": dict(memory_save_mode="all_diag", b1=0.5),
    "gradient-fit-decay": dict(momentum_into_precond_update=False, weight_decay=0.3),
    "mixed-diag-probability": dict(max_size_triangular=4, preconditioner_update_probability=0.5),
}
SHAPES_3D = {"b": (5,), "t": (2, 3, 4), "w": (5, 3)}


@pytest.mark.extended
@pytest.mark.parametrize("kwargs", EXTENDED.values(), ids=list(EXTENDED))
def test_kron_matches_pytorch_optimizer_extended(kwargs):
    assert_parity(kwargs, steps=20)


@pytest.mark.extended
@pytest.mark.parametrize("kwargs", [{}, dict(max_size_triangular=3)], ids=["3d", "3d-mixed"])
def test_kron_matches_pytorch_optimizer_on_3d_leaves(kwargs):
    assert_parity(kwargs, shapes=SHAPES_3D, steps=20)


# The convergence study: a (12, 8) matrix W on the quadratic 0.5 <W, A W B>, A and B
# randomly rotated with eigenvalues spread geometrically over [1, 1e3] and [1, 1e2] (the
# Hessian A (x) B has condition number 1e5 and is not diagonal in any coordinate system a
# diagonal method sees). Each optimizer at its defaults with a cosine decay of the rate over
# STUDY_STEPS, at the best rate of the grid for each threshold; the steps to bring the
# loss to a fraction of its initial value. Measured (see docs/parity.md):
#     fraction   kron          adam
#     1e-2       34 (0.1)      38 (0.3)
#     1e-4       172 (0.03)    260 (1.0)
#     1e-6       1023 (0.01)   not within 2000
STUDY_STEPS = 2000
STUDY_RATES = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)


def steps_to_fractions(make: Any, fractions: tuple[float, ...]) -> list[float]:
    rng = np.random.default_rng(0)

    def spd(d: int, cond: float) -> Any:
        q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        return jnp.asarray((q * np.geomspace(1.0, cond, d)) @ q.T, jnp.float32)

    a, b = spd(12, 1e3), spd(8, 1e2)
    w0 = jnp.asarray(rng.normal(size=(12, 8)), jnp.float32)

    def loss(w: Any) -> Any:
        return 0.5 * jnp.sum(w * (a @ w @ b))

    def run(lr: Any) -> Any:
        tx = make(gx.cosine_decay_schedule(lr, STUDY_STEPS))

        def body(carry: Any, _: Any) -> Any:
            w, state = carry
            u, state = tx.update(jax.grad(loss)(w), state, w)
            w = gx.apply_updates(w, u)
            return (w, state), loss(w)

        return jax.lax.scan(body, (w0, tx.init(w0)), None, length=STUDY_STEPS)[1]

    losses = np.asarray(jax.jit(jax.vmap(run))(jnp.asarray(STUDY_RATES, jnp.float32)))
    losses = losses / float(loss(w0))
    out = []
    for f in fractions:
        hit = losses <= f
        out.append(float(np.min(np.where(hit.any(1), hit.argmax(1) + 1, np.inf))))
    return out


@pytest.mark.extended
def test_kron_beats_adam_on_an_ill_conditioned_matrix_quadratic():
    fractions = (1e-2, 1e-4, 1e-6)
    kron = steps_to_fractions(gx.kron, fractions)
    adam = steps_to_fractions(gx.adam, fractions)
    assert kron[1] < adam[1], (kron, adam)
    assert kron[2] < STUDY_STEPS and adam[2] == np.inf, (kron, adam)


# ------------------------------------------------------------------------- behaviour


def test_kron_keeps_a_leafs_previous_factors_and_counts_a_failed_fit():
    """A finite gradient of 1e25 on one leaf overflows its fit (its statistics pass
    float32's range): that leaf keeps its previous factors, the other leaf's fit goes on,
    ``failures`` counts the one leaf, and the updates stay finite (the direction capped)."""
    tx = gx.scale_by_kron(preconditioner_update_probability=1.0, momentum_into_precond_update=False)
    rng = np.random.default_rng(0)
    g = {"b": jnp.asarray(rng.normal(size=3), jnp.float32)}
    g["w"] = jnp.asarray(rng.normal(size=(2, 3)), jnp.float32)
    state = tx.init(g)
    update = jax.jit(tx.update)
    u, state = update(g, state)  # a finite fit: the negative control
    assert int(state.failures) == 0 and state.failures.dtype == jnp.uint32
    chex.assert_tree_all_finite(u)
    kept = state.Qs
    u, new = update({"b": g["b"], "w": jnp.full((2, 3), 1e25, jnp.float32)}, state)
    assert int(new.failures) == 1
    chex.assert_tree_all_finite(u)
    np.testing.assert_allclose(jnp.sqrt(jnp.mean(u["w"] ** 2)), 1.1, rtol=1e-5)
    for before, after in zip(kept["w"], new.Qs["w"], strict=True):
        np.testing.assert_array_equal(after, before)
    assert any(bool(jnp.any(a != b)) for a, b in zip(kept["b"], new.Qs["b"], strict=True))
    _, again = update(g, new)  # a finite gradient again (fitted to): the count stays
    assert int(again.failures) == 1


def test_kron_direction_is_capped_not_nan_where_p_m_overflows():
    """Factors of 1e10 (``P = 1e40 I``, no fit) and a gradient of order 1: ``P m`` overflows
    float32, and the update is the capped direction ``1.1 m / rms(m)``, not ``inf * 0``."""
    tx = gx.scale_by_kron(preconditioner_update_probability=0.0, preconditioner_init_scale=1e20)
    g = jnp.arange(1.0, 7.0, dtype=jnp.float32).reshape(2, 3)
    u, state = jax.jit(tx.update)(g, tx.init(g))
    assert int(state.failures) == 0
    want = 1.1 * np.asarray(g) / np.sqrt(np.mean(np.asarray(g) ** 2))
    np.testing.assert_allclose(u, want, rtol=1e-6)
