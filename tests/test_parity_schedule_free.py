"""Schedule-Free (Defazio et al. 2024) against the real libraries, and the training loop.

* optax.contrib: ``schedule_free``, ``schedule_free_sgd``, ``schedule_free_adamw`` and
  ``schedule_free_eval_params``: same signatures and state fields, same iterates ``y`` and
  evaluation weights ``x`` at every step.
* the authors' package ``schedulefree`` (torch): ``AdamWScheduleFree``,
  ``SGDScheduleFree`` and ``ScheduleFreeWrapper``: ``y`` after every step in train mode,
  ``x`` after ``.eval()`` at the end.
* ``keras.optimizers.ScheduleFreeAdamW`` (JAX backend): ``y`` after every step.

Each case runs 25 steps of a per-coordinate quadratic plus a fixed noise sequence (so
every gradient depends on the iterate) and compares at rtol 1e-5 in float32 (atol 1e-6
for coordinates near zero). Where a library's variant differs (warmup form, weight decay
placement, uniform averaging), the flag that selects it is tested against that library,
and the other setting must not match (negative controls).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from tests import references_schedule_free as ref_sf
from tests._require import require, require_keras
from tests.test_signatures import signature_mismatches

STEPS = 25
RTOL, ATOL = 1e-5, 1e-6
LR = 0.05
WD = 0.1


def problem(seed: int = 0) -> tuple[dict[str, np.ndarray], Callable[..., dict[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    init = {
        "w": rng.normal(size=(3, 4)).astype(np.float32),
        "b": rng.normal(size=(4,)).astype(np.float32),
    }
    curvature = {k: rng.uniform(0.2, 1.0, size=v.shape).astype(np.float32) for k, v in init.items()}
    noise = [
        {k: (0.5 * rng.normal(size=v.shape)).astype(np.float32) for k, v in init.items()}
        for _ in range(STEPS)
    ]

    def grad(params: dict[str, np.ndarray], t: int) -> dict[str, np.ndarray]:
        return {k: (curvature[k] * params[k] + noise[t][k]).astype(np.float32) for k in params}

    return init, grad


Trace = list[dict[str, np.ndarray]]


def run_gradxform(tx: Any, eval_params: Callable[..., Any] | None = None) -> tuple[Trace, Trace]:
    """(y after every step, x after every step)."""
    eval_params = eval_params or gx.schedule_free_eval_params
    init, grad = problem()
    params = {k: jnp.asarray(v) for k, v in init.items()}
    state = tx.init(params)
    ys, xs = [], []
    for t in range(STEPS):
        g = grad({k: np.asarray(v) for k, v in params.items()}, t)
        u, state = tx.update({k: jnp.asarray(v) for k, v in g.items()}, state, params)
        params = gx.apply_updates(params, u)
        ys.append({k: np.asarray(v) for k, v in params.items()})
        xs.append({k: np.asarray(v) for k, v in eval_params(state, params).items()})
    return ys, xs


def run_optax(tx: Any) -> tuple[Trace, Trace]:
    with jax.numpy_dtype_promotion("standard"):  # optax relies on implicit promotion
        return run_gradxform(tx, optax.contrib.schedule_free_eval_params)


def assert_same(ours: Trace, theirs: Trace, what: str = "y", atol: float = ATOL) -> None:
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for k in a:
            np.testing.assert_allclose(
                a[k], b[k], rtol=RTOL, atol=atol, err_msg=f"{what}[{k!r}] after step {t + 1}"
            )


def assert_differ(ours: Trace, theirs: Trace) -> None:
    gaps = [
        np.max(np.abs(a[k] - b[k]) / (ATOL + RTOL * np.abs(b[k])))
        for a, b in zip(ours, theirs, strict=True)
        for k in a
    ]
    assert max(gaps) > 10, "the negative control matches: the test cannot tell the variants apart"


# ------------------------------------------------------------------------------- optax

CONTRIB = optax.contrib
# optax recomputes x = (y - (1 - b1) z) / b1 from the float32 params at every step, which
# carries the rounding of y, divided by b1, into x: its iterates drift from the float64
# reference by up to 4e-6 in 25 steps (weights of size 1 to 2), where gradxform's stay
# within 2.5e-7 (test_the_training_loop_pattern). Hence atol 5e-6 against optax.
OPTAX_ATOL = 5e-6


def _warmup_lr(t: Any) -> Any:
    """An increasing schedule both libraries accept (the wrapper's weights follow it)."""
    return LR * jnp.minimum(1.0, (jnp.asarray(t, jnp.float32) + 1.0) / 6.0)


OPTAX_CASES = [
    (
        "adamw-warmup-decay",
        lambda: gx.schedule_free_adamw(LR, warmup_steps=5, weight_decay=WD),
        lambda: CONTRIB.schedule_free_adamw(LR, warmup_steps=5, weight_decay=WD),
    ),
    (
        "adamw-b1-b2-eps-power",
        lambda: gx.schedule_free_adamw(LR, 3, 0.8, 0.99, 1e-3, 0.0, 1.0),
        lambda: CONTRIB.schedule_free_adamw(LR, 3, 0.8, 0.99, 1e-3, 0.0, 1.0),
    ),
    (
        "sgd-warmup-decay",
        lambda: gx.schedule_free_sgd(LR, warmup_steps=4, b1=0.8, weight_decay=WD),
        lambda: CONTRIB.schedule_free_sgd(LR, warmup_steps=4, b1=0.8, weight_decay=WD),
    ),
    ("sgd-defaults", lambda: gx.schedule_free_sgd(0.1), lambda: CONTRIB.schedule_free_sgd(0.1)),
    (
        "wrapper-adam-schedule",
        lambda: gx.schedule_free(gx.adam(_warmup_lr, b1=0.0), _warmup_lr, b1=0.95),
        lambda: CONTRIB.schedule_free(optax.adam(_warmup_lr, b1=0.0), _warmup_lr, b1=0.95),
    ),
    (
        "wrapper-sgd-power",
        lambda: gx.schedule_free(gx.sgd(_warmup_lr), _warmup_lr, weight_lr_power=3.0),
        lambda: CONTRIB.schedule_free(optax.sgd(_warmup_lr), _warmup_lr, weight_lr_power=3.0),
    ),
]


@pytest.mark.parametrize(
    "ours,theirs", [c[1:] for c in OPTAX_CASES], ids=[c[0] for c in OPTAX_CASES]
)
def test_matches_optax_contrib(ours, theirs):
    ys, xs = run_gradxform(ours())
    their_ys, their_xs = run_optax(theirs())
    assert_same(ys, their_ys, "y", OPTAX_ATOL)
    assert_same(xs, their_xs, "x", OPTAX_ATOL)


@pytest.mark.parametrize(
    "ours,theirs",
    [
        # the paper's warmup moves z at the first step; optax's does not
        (
            lambda: gx.schedule_free_adamw(LR, warmup_steps=5, paper_warmup=True),
            lambda: CONTRIB.schedule_free_adamw(LR, warmup_steps=5),
        ),
        (
            lambda: gx.schedule_free_sgd(LR, warmup_steps=4, paper_warmup=True),
            lambda: CONTRIB.schedule_free_sgd(LR, warmup_steps=4),
        ),
        # polynomial weighting t**r: optax has none
        (lambda: gx.schedule_free_sgd(LR, r=1.0), lambda: CONTRIB.schedule_free_sgd(LR)),
    ],
    ids=["adamw-paper-warmup", "sgd-paper-warmup", "sgd-r"],
)
def test_options_optax_lacks_do_not_match_optax(ours, theirs):
    assert_differ(run_gradxform(ours())[0], run_optax(theirs())[0])


@pytest.mark.parametrize(
    "name",
    ["schedule_free", "schedule_free_sgd", "schedule_free_adamw", "schedule_free_eval_params"],
)
def test_signature_is_optax_contribs(name):
    assert not signature_mismatches(getattr(gx, name), getattr(CONTRIB, name))


def test_state_is_optax_contribs():
    assert gx.ScheduleFreeState._fields == CONTRIB.ScheduleFreeState._fields
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3, jnp.bfloat16)}
    ours = gx.schedule_free_adamw().init(params)
    with jax.numpy_dtype_promotion("standard"):
        theirs = CONTRIB.schedule_free_adamw().init(params)
    for field in ("b1", "weight_sum", "step_count", "max_lr"):
        a, b = getattr(ours, field), getattr(theirs, field)
        assert a.dtype == b.dtype and a.shape == b.shape, field
        np.testing.assert_array_equal(a, b, err_msg=field)
    # z is set at the first update (init needs only shapes); optax copies the params
    for a, b in zip(jax.tree.leaves(ours.z), jax.tree.leaves(theirs.z), strict=True):
        assert (a.shape, a.dtype) == (b.shape, b.dtype)


def test_optax_state_works_with_gradxform():
    """A state made by optax's init (z = params) gives the same first update."""
    params = {"w": jnp.linspace(-1.0, 1.0, 6)}
    grads = {"w": jnp.linspace(0.5, -0.5, 6)}
    tx = gx.schedule_free_sgd(LR)
    with jax.numpy_dtype_promotion("standard"):
        theirs = CONTRIB.schedule_free_sgd(LR).init(params)
    state = tx.init(params)
    u_ours, _ = tx.update(grads, state, params)
    u_theirs, _ = tx.update(grads, state._replace(z=theirs.z), params)
    np.testing.assert_allclose(u_ours["w"], u_theirs["w"], rtol=1e-6)


# ------------------------------------------------------------- schedulefree (torch)


def _torch_run(make: Callable[[list[Any]], Any]) -> tuple[Trace, dict[str, np.ndarray]]:
    """(y after every step in train mode, x after ``.eval()`` at the end)."""
    torch = require("torch", why="schedulefree parity")
    init, grad = problem()
    params = {k: torch.tensor(v) for k, v in init.items()}
    opt = make(list(params.values()))
    opt.train()
    ys = []
    for t in range(STEPS):
        g = grad({k: v.detach().numpy() for k, v in params.items()}, t)
        for k, p in params.items():
            p.grad = torch.tensor(g[k])
        opt.step()
        ys.append({k: v.detach().numpy().copy() for k, v in params.items()})
    opt.eval()
    return ys, {k: v.detach().numpy().copy() for k, v in params.items()}


def _sf() -> Any:
    return require("schedulefree", why="parity with the authors' Schedule-Free package")


def _torch(name: str, **kwargs: Any) -> Callable[[list[Any]], Any]:
    """A torch.optim base optimizer for ScheduleFreeWrapper. (torch's Adam and RMSprop
    initialise their state only when it is empty, which the wrapper's ``z`` prevents:
    Adagrad initialises it at construction, SGD keeps none.)"""
    torch = require("torch", why="schedulefree parity")
    return lambda ps: getattr(torch.optim, name)(ps, lr=LR, **kwargs)


def _sf_sgd_decay_at_y() -> Any:
    return gx.schedule_free(gx.chain(gx.add_decayed_weights(WD), gx.sgd(LR)), LR, r=1.0)


SCHEDULEFREE_CASES = [
    (
        "adamw",
        lambda: gx.schedule_free_adamw(LR, weight_decay=WD),
        lambda ps: _sf().AdamWScheduleFree(ps, lr=LR, weight_decay=WD),
    ),
    (
        "adamw-warmup-r-power",
        lambda: gx.schedule_free_adamw(LR, 5, 0.8, 0.99, 1e-3, WD, 1.0, r=0.5, paper_warmup=True),
        lambda ps: _sf().AdamWScheduleFree(
            ps,
            lr=LR,
            betas=(0.8, 0.99),
            eps=1e-3,
            weight_decay=WD,
            warmup_steps=5,
            r=0.5,
            weight_lr_power=1.0,
        ),
    ),
    (
        "sgd",
        lambda: gx.schedule_free_sgd(LR, b1=0.9, weight_decay=WD),
        lambda ps: _sf().SGDScheduleFree(ps, lr=LR, momentum=0.9, weight_decay=WD),
    ),
    (
        "sgd-warmup-r-power",
        lambda: gx.schedule_free_sgd(LR, 4, 0.7, WD, 3.0, r=1.0, paper_warmup=True),
        lambda ps: _sf().SGDScheduleFree(
            ps, lr=LR, momentum=0.7, weight_decay=WD, warmup_steps=4, r=1.0, weight_lr_power=3.0
        ),
    ),
    (
        "wrapper-adagrad",
        lambda: gx.schedule_free(
            gx.adagrad(LR, initial_accumulator_value=0.0, eps=1e-10, eps_in_sqrt=False), LR, b1=0.9
        ),
        lambda ps: _sf().ScheduleFreeWrapper(_torch("Adagrad")(ps), momentum=0.9),
    ),
    # the wrapper's weight_decay_at_y is decay at y added to the base direction
    (
        "wrapper-sgd-decay-at-y",
        _sf_sgd_decay_at_y,
        lambda ps: _sf().ScheduleFreeWrapper(_torch("SGD")(ps), weight_decay_at_y=WD, r=1.0),
    ),
]


@pytest.mark.parametrize(
    "ours,theirs", [c[1:] for c in SCHEDULEFREE_CASES], ids=[c[0] for c in SCHEDULEFREE_CASES]
)
def test_matches_schedulefree(ours, theirs):
    _sf()
    ys, xs = run_gradxform(ours())
    their_ys, their_x = _torch_run(theirs)
    assert_same(ys, their_ys, "y")
    assert_same([xs[-1]], [their_x], "x")


@pytest.mark.parametrize(
    "ours,theirs",
    [
        # optax's warmup (the default) is not the authors'
        (
            lambda: gx.schedule_free_adamw(LR, warmup_steps=5),
            lambda ps: _sf().AdamWScheduleFree(ps, lr=LR, warmup_steps=5),
        ),
        (
            lambda: gx.schedule_free_sgd(LR, warmup_steps=4),
            lambda ps: _sf().SGDScheduleFree(ps, lr=LR, warmup_steps=4),
        ),
        # weight decay inside the torch base optimizer acts at z; gradxform's base sees y
        (
            _sf_sgd_decay_at_y,
            lambda ps: _sf().ScheduleFreeWrapper(_torch("SGD", weight_decay=WD)(ps), r=1.0),
        ),
    ],
    ids=["adamw-optax-warmup", "sgd-optax-warmup", "wrapper-decay-at-z"],
)
def test_other_variants_do_not_match_schedulefree(ours, theirs):
    _sf()
    assert_differ(run_gradxform(ours())[0], _torch_run(theirs)[0])


# --------------------------------------------------------------------------- keras


def _keras() -> Any:
    return require_keras("jax", why="keras parity")


def _keras_run(make: Callable[[], Any]) -> Trace:
    keras = _keras()
    init, grad = problem()
    variables = {k: keras.Variable(v, name=k) for k, v in init.items()}
    opt = make()
    out = []
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        for t in range(STEPS):
            g = grad({k: np.asarray(v.value) for k, v in variables.items()}, t)
            opt.apply_gradients([(g[k], variables[k]) for k in variables])
            out.append({k: np.array(v.value) for k, v in variables.items()})
    return out


# keras averages uniformly (c = 1/t: weight_lr_power=0) and warms up as the paper; its
# 1 - b2**t is computed in float32, so b2 = 0.99 keeps that rounding under the tolerance.
KERAS_CASES = [
    (
        "adamw",
        lambda: gx.schedule_free_adamw(LR, b2=0.99),
        lambda: _keras().optimizers.ScheduleFreeAdamW(LR, beta_2=0.99),
    ),
    (
        "adamw-b1-eps",
        lambda: gx.schedule_free_adamw(LR, b1=0.8, b2=0.99, eps=1e-3),
        lambda: _keras().optimizers.ScheduleFreeAdamW(LR, beta_1=0.8, beta_2=0.99, epsilon=1e-3),
    ),
    (
        "adamw-warmup",
        lambda: gx.schedule_free_adamw(
            LR, warmup_steps=5, b2=0.99, weight_lr_power=0.0, paper_warmup=True
        ),
        lambda: _keras().optimizers.ScheduleFreeAdamW(LR, beta_2=0.99, warmup_steps=5),
    ),
]


@pytest.mark.parametrize(
    "ours,theirs", [c[1:] for c in KERAS_CASES], ids=[c[0] for c in KERAS_CASES]
)
def test_matches_keras(ours, theirs):
    assert_same(run_gradxform(ours())[0], _keras_run(theirs), "y")


@pytest.mark.parametrize(
    "ours,theirs",
    [
        # the default weights (lr**2) during warmup are not keras's uniform ones
        (
            lambda: gx.schedule_free_adamw(LR, warmup_steps=5, b2=0.99, paper_warmup=True),
            lambda: _keras().optimizers.ScheduleFreeAdamW(LR, beta_2=0.99, warmup_steps=5),
        ),
        # optax's warmup is not keras's
        (
            lambda: gx.schedule_free_adamw(LR, warmup_steps=5, b2=0.99, weight_lr_power=0.0),
            lambda: _keras().optimizers.ScheduleFreeAdamW(LR, beta_2=0.99, warmup_steps=5),
        ),
        # keras decays the weights y themselves, before the step; gradxform (as optax and the
        # authors) adds lambda y to the direction of z
        (
            lambda: gx.schedule_free_adamw(LR, b2=0.99, weight_decay=WD),
            lambda: _keras().optimizers.ScheduleFreeAdamW(LR, beta_2=0.99, weight_decay=WD),
        ),
    ],
    ids=["power-2-warmup", "optax-warmup", "weight-decay"],
)
def test_other_variants_do_not_match_keras(ours, theirs):
    assert_differ(run_gradxform(ours())[0], _keras_run(theirs))


# ---------------------------------------------------------------- the training loop


def _reference_run(reference: Any) -> tuple[Trace, Trace]:
    init, grad = problem()
    params = {k: v.astype(np.float64) for k, v in init.items()}
    states = {k: reference.init(v) for k, v in params.items()}
    ys, xs = [], []
    for t in range(STEPS):
        g = grad({k: v.astype(np.float32) for k, v in params.items()}, t)
        for k in params:
            u, states[k] = reference.step(g[k].astype(np.float64), states[k], params[k])
            params[k] = params[k] + u
        ys.append(dict(params))
        xs.append({k: reference.eval_params(s) for k, s in states.items()})
    return ys, xs


def test_the_training_loop_pattern():
    """Gradients at y (the params), evaluation at x = schedule_free_eval_params(state, params):
    x is the paper's average, and it is not y."""
    kwargs = dict(learning_rate=LR, warmup_steps=5, weight_decay=WD)
    ys, xs = run_gradxform(gx.schedule_free_adamw(**kwargs))
    ref_ys, ref_xs = _reference_run(ref_sf.ScheduleFreeAdamW(**kwargs))
    assert_same(ys, ref_ys, "y")
    assert_same(xs, ref_xs, "x")
    gap = max(np.max(np.abs(x[k] - y[k])) for x, y in zip(xs, ys, strict=True) for k in x)
    assert gap > 1e-2, "x equals y: the evaluation weights would not matter"


def test_eval_params_before_the_first_update_are_the_params():
    params = {"w": jnp.arange(3.0)}
    state = gx.schedule_free_sgd(0.1).init(params)
    np.testing.assert_array_equal(gx.schedule_free_eval_params(state, params)["w"], params["w"])


def test_eval_params_find_the_state_inside_a_chain_and_under_jit():
    params = {"w": jnp.linspace(-1.0, 1.0, 5)}
    tx = gx.chain(gx.clip_by_global_norm(10.0), gx.schedule_free_sgd(0.1))
    plain = gx.schedule_free_sgd(0.1)
    state, plain_state = tx.init(params), plain.init(params)
    p = q = params
    for t in range(3):
        g = {"w": jnp.full(5, 0.3 * (t + 1))}
        u, state = tx.update(g, state, p)
        v, plain_state = plain.update(g, plain_state, q)
        p, q = gx.apply_updates(p, u), gx.apply_updates(q, v)
    x = jax.jit(gx.schedule_free_eval_params)(state, p)
    np.testing.assert_allclose(x["w"], gx.schedule_free_eval_params(plain_state, q)["w"], rtol=1e-6)
    assert not np.allclose(x["w"], p["w"])


def test_eval_params_refuse_a_state_without_schedule_free():
    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="no ScheduleFreeState"):
        gx.schedule_free_eval_params(gx.adam(0.1).init(params), params)
    two = (gx.schedule_free_sgd().init(params), gx.schedule_free_sgd().init(params))
    with pytest.raises(ValueError, match="2 ScheduleFreeStates"):
        gx.schedule_free_eval_params(two, params)
    with pytest.raises(ValueError, match="params"):
        gx.schedule_free_eval_params(two[0], {"v": jnp.ones(2)})


def test_update_needs_the_params():
    params = {"w": jnp.ones(2)}
    tx = gx.schedule_free_sgd()
    with pytest.raises(ValueError, match="needs the params"):
        tx.update(params, tx.init(params))
