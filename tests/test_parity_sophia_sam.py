"""Sophia and SAM/ASAM against optax.contrib and pytorch-optimizer (docs/parity.md).

Each trajectory runs 25 steps on one loss written twice, in JAX and in torch: a quartic
with a dense quadratic coupling, so its Hessian depends on the iterate and couples every
pair of coordinates.

* optax.contrib.sophia / sam / normalize: the same float32 computation, compared after
  every step at rtol 1e-5. Sophia's Hutchinson probes are the same numbers on both sides:
  gradxform draws them by optax's schedule from the same key.
* pytorch-optimizer's SophiaH is Sophia with the paper's order (the estimate of the step
  enters the average before it divides: ``hessian_first=True``), no bias correction, and
  ``p`` and ``eps`` in units of the unscaled Hessian (``gamma`` folded into the learning
  rate, see :func:`gradxform.sophia`). Its own probes come from torch's generator: on a
  separable loss (a diagonal Hessian) a Rademacher probe gives the diagonal exactly, so
  the two estimators agree whatever they draw; on the coupled loss SophiaH is given
  ``step(hessian=...)``, the Hutchinson estimate that torch's autograd computes with
  gradxform's probes (Gaussian, as SophiaH draws by default).
* pytorch-optimizer's SAM (``first_step``/``second_step`` around any torch optimizer) is
  :func:`gradxform.sam_gradient` before the same gradxform optimizer, and
  ``sam(opt, chain(normalize(), sgd(rho)))``: torch runs in float64, rtol 1e-5.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests import references_sophia_sam as ref_ss
from tests._require import require
from tests.test_signatures import signature_mismatches

optax = require("optax", why="optax.contrib.sophia and sam parity")
torch = require("torch", why="pytorch-optimizer parity")
pytorch_optimizer = require("pytorch_optimizer", why="SophiaH and SAM parity")

STEPS = 25
RTOL, ATOL = 1e-5, 1e-6

COUPLING = np.array([[1.0, 0.4, -0.3], [0.2, -0.5, 0.6]], np.float32)
P0 = {"a": np.array([0.9, -0.6, 0.4], np.float32), "b": np.array([[0.5, -1.1]], np.float32)}
CURVATURE = np.array([0.5, 2.0, 1.0], np.float32)


def coupled(a: Any, b: Any) -> Any:
    """The loss on NumPy or JAX arrays (array methods and operators only)."""
    b = b[0]
    return (
        0.5 * (CURVATURE * a * a).sum()
        + (a**4).sum() / 12
        + 0.5 * (b * b).sum()
        + 0.25 * ((COUPLING @ a + b) ** 2).sum()
    )


def loss_jax(p: Any) -> Any:
    return coupled(p["a"], p["b"])


def loss_np(leaves: list[np.ndarray]) -> float:
    """The same loss in float64 on the leaves ``[a, b]`` (for the references)."""
    return float(coupled(leaves[0], leaves[1]))


def loss_torch(a: Any, b: Any) -> Any:
    c = torch.tensor(COUPLING, dtype=a.dtype)
    curv = torch.tensor(CURVATURE, dtype=a.dtype)
    return (
        0.5 * torch.sum(curv * a * a)
        + torch.sum(a**4) / 12
        + 0.5 * torch.sum(b[0] * b[0])
        + 0.25 * torch.sum((c @ a + b[0]) ** 2)
    )


def separable_jax(p: Any) -> Any:
    return sum(jnp.sum(0.5 * x * x + x**4 / 12) for x in jax.tree.leaves(p))


def separable_torch(a: Any, b: Any) -> Any:
    return sum(torch.sum(0.5 * x * x + x**4 / 12) for x in (a, b))


def trajectory(tx: Any, loss: Any, *, feed: str | None = None, steps: int = STEPS) -> Any:
    """The params after each of ``steps`` steps (one compiled scan); ``feed`` names the
    extra argument that receives ``loss`` (Sophia's ``obj_fn``)."""

    def body(carry, _):
        p, s = carry
        extra = {feed: loss} if feed else {}
        u, s = tx.update(jax.grad(loss)(p), s, p, **extra)
        p = jax.tree.map(lambda x, y: x + y, p, u)
        return (p, s), p

    p0 = {k: jnp.asarray(v) for k, v in P0.items()}
    with jax.numpy_dtype_promotion("standard"):  # optax relies on implicit promotion
        out = jax.jit(lambda c: jax.lax.scan(body, c, None, length=steps)[1])((p0, tx.init(p0)))
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def assert_trajectories(ours: Any, theirs: Any, rtol: float = RTOL, atol: float = ATOL) -> None:
    for t in range(len(ours["a"])):
        for k in ours:
            np.testing.assert_allclose(
                ours[k][t], theirs[k][t], rtol=rtol, atol=atol, err_msg=f"step {t + 1}, {k}"
            )


# --------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    [
        "sophia",
        "hutchinson_estimator_diag_hessian",
        "sam",
        "normalize",
        "SophiaState",
        "HutchinsonState",
        "SAMState",
        "NormalizeState",
    ],
)
def test_names_follow_optax_contrib(name):
    ours, theirs = getattr(gx, name), getattr(optax.contrib, name)
    if hasattr(theirs, "_fields"):
        assert ours._fields == theirs._fields
        return
    problems = signature_mismatches(ours, theirs)
    # The default estimator is gradxform's own Hutchinson estimator (the same algorithm).
    problems = [p for p in problems if not p.startswith("'hessian_diagonal_fn' defaults")]
    assert not problems, problems
    if name == "sophia":
        default = inspect.signature(ours).parameters["hessian_diagonal_fn"].default
        assert isinstance(default, gx.GradientTransformation)


# -------------------------------------------------------------------- Sophia


def test_sophia_matches_optax_with_its_defaults():
    """optax's defaults (update_interval=10: refreshes at steps 1, 11, 21), the same probes."""
    ours = trajectory(gx.sophia(0.05), loss_jax, feed="obj_fn")
    theirs = trajectory(optax.contrib.sophia(0.05), loss_jax, feed="obj_fn")
    assert_trajectories(ours, theirs)


def sophia_h_pair(lr, b1, b2, wd, p, eps, k, gamma, steps=STEPS):
    """gradxform's Sophia in SophiaH's form and pytorch-optimizer's SophiaH with its own
    Rademacher probes, on the separable loss (a diagonal Hessian: any probe is exact)."""
    tx = gx.sophia(
        lr * gamma,
        b1,
        b2,
        eps * gamma,
        wd / gamma,
        gamma=gamma,
        clip_threshold=p / gamma,
        update_interval=k,
        bias_correction=False,
        hessian_first=True,
    )
    ours = trajectory(tx, separable_jax, feed="obj_fn", steps=steps)
    a, b = (torch.tensor(P0[n], dtype=torch.float64, requires_grad=True) for n in ("a", "b"))
    opt = pytorch_optimizer.SophiaH(
        [a, b],
        lr=lr,
        betas=(b1, b2),
        weight_decay=wd,
        p=p,
        eps=eps,
        update_period=k,
        hessian_distribution="rademacher",
        foreach=False,
    )
    theirs: dict[str, list[Any]] = {"a": [], "b": []}
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        with warnings.catch_warnings():  # backward(create_graph=True): SophiaH's own usage
            warnings.simplefilter("ignore", UserWarning)
            separable_torch(a, b).backward(create_graph=True)
        opt.step()
        theirs["a"].append(a.detach().numpy().copy())
        theirs["b"].append(b.detach().numpy().copy())
    return ours, theirs


def test_sophia_h_matches_pytorch_optimizer_on_a_diagonal_hessian():
    """SophiaH's own Rademacher probes: exact on a diagonal Hessian, whatever is drawn."""
    assert_trajectories(*sophia_h_pair(0.1, 0.9, 0.95, 0.05, 0.3, 1e-4, 3, 0.02))


def test_sophia_h_matches_pytorch_optimizer_with_the_same_gaussian_probes():
    """The coupled loss: SophiaH is given the Hutchinson estimate torch's autograd computes
    with the probes gradxform draws (by the documented key schedule, Gaussian)."""
    lr, b1, b2, p, eps, k, gamma, seed = 0.1, 0.9, 0.9, 0.5, 1e-3, 2, 0.05, 4
    estimator = gx.hutchinson_estimator_diag_hessian(seed, distribution="gaussian")
    tx = gx.sophia(
        lr * gamma,
        b1,
        b2,
        eps * gamma,
        0.0,
        gamma=gamma,
        clip_threshold=p / gamma,
        update_interval=k,
        hessian_diagonal_fn=estimator,
        bias_correction=False,
        hessian_first=True,
    )
    ours = trajectory(tx, loss_jax, feed="obj_fn")
    a, b = (torch.tensor(P0[n], dtype=torch.float64, requires_grad=True) for n in ("a", "b"))
    opt = pytorch_optimizer.SophiaH(
        [a, b], lr=lr, betas=(b1, b2), p=p, eps=eps, update_period=k, foreach=False
    )
    key = jax.random.PRNGKey(seed)
    theirs: dict[str, list[Any]] = {"a": [], "b": []}
    for t in range(STEPS):
        opt.zero_grad()
        hessian = None
        if t % k == 0:
            key, zs = ref_ss.probes(key, [a.shape, b.shape], gaussian=True)
            grads = torch.autograd.grad(loss_torch(a, b), [a, b], create_graph=True)
            z = [torch.tensor(zi) for zi in zs]
            hz = torch.autograd.grad(grads, [a, b], grad_outputs=z)
            hessian = [(zi * hi).detach() for zi, hi in zip(z, hz, strict=True)]
        loss_torch(a, b).backward()
        opt.step(hessian=hessian)
        theirs["a"].append(a.detach().numpy().copy())
        theirs["b"].append(b.detach().numpy().copy())
    assert_trajectories(ours, theirs)


def test_scale_by_sophia_matches_the_reference():
    """The primitive alone (sophia's sweep covers its arguments through the chain)."""
    tx = gx.scale_by_sophia(0.8, 0.6, 1e-3, 0.3, 2.0, 2, gx.hutchinson_estimator_diag_hessian(5))
    reference = ref_ss.Sophia(-1.0, 0.8, 0.6, 1e-3, 0.0, 0.3, 2.0, 2, loss=loss_np, random_seed=5)
    params = {k: jnp.asarray(v) for k, v in P0.items()}
    state = tx.init(params)
    ps = [np.asarray(params["a"], np.float64), np.asarray(params["b"], np.float64)]
    ref_state = reference.init(ps)
    rng = np.random.default_rng(0)
    for t in range(4):  # two refreshes (steps 1 and 3)
        g = {k: jnp.asarray(rng.normal(size=v.shape), jnp.float32) for k, v in P0.items()}
        u, state = tx.update(g, state, params, obj_fn=loss_jax)
        want, ref_state = reference.step(
            [np.asarray(g["a"], np.float64), np.asarray(g["b"], np.float64)],
            ref_state,
            ps,
        )
        for got, w in zip((u["a"], u["b"]), want, strict=True):
            np.testing.assert_allclose(got, w, rtol=RTOL, atol=1e-7, err_msg=f"step {t + 1}")
        params = gx.apply_updates(params, u)
        ps = [p + w for p, w in zip(ps, want, strict=True)]


def linear_logits(params: Any) -> Any:
    """A linear softmax model on four fixed examples: logits of shape (4, 3)."""
    x = np.array([[1.0, -0.5], [0.3, 0.8], [-1.2, 0.4], [0.6, 0.6]], np.float32)
    return x @ params["w"] + params["c"][None, :]


@pytest.mark.parametrize("seed", [3, 11])
def test_gauss_newton_bartlett_matches_the_reference(seed):
    """Sophia-G's estimator (Liu et al. 2023, Algorithm 2): labels sampled from the model by
    the documented key schedule, ``B * g_hat**2``; three calls (the key advances)."""
    rng = np.random.default_rng(seed)
    params = {"c": jnp.asarray(rng.normal(size=3), jnp.float32)}
    params["w"] = jnp.asarray(rng.normal(size=(2, 3)), jnp.float32)
    tx = gx.gnb_estimator_diag_hessian(seed)
    state, key = tx.init(params), jax.random.PRNGKey(seed)
    leaves = [np.asarray(params["c"], np.float64), np.asarray(params["w"], np.float64)]

    def logits_of_leaves(ls):
        return linear_logits({"c": ls[0], "w": ls[1]})

    for _ in range(3):
        got, state = tx.update(params, state, params, logits_fn=linear_logits)
        key, want = ref_ss.gnb_estimate(key, leaves, logits_of_leaves)
        np.testing.assert_allclose(got["c"], want[0], rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(got["w"], want[1], rtol=1e-4, atol=1e-7)
        assert bool(jnp.all(got["w"] >= 0))


def test_sophia_g_steps_with_the_gnb_estimate():
    """sophia(hessian_diagonal_fn=gnb_estimator_diag_hessian()) is fed logits_fn= and
    divides by the average of the GNB estimates (hessian_first: the first one)."""
    params = {"c": jnp.zeros(3), "w": jnp.full((2, 3), 0.1)}
    tx = gx.sophia(
        0.1,
        gamma=1.0,
        weight_decay=0.0,
        update_interval=1,
        clip_threshold=None,
        hessian_diagonal_fn=gx.gnb_estimator_diag_hessian(2),
        bias_correction=False,
        hessian_first=True,
    )
    g = jax.tree.map(jnp.ones_like, params)
    u, state = jax.jit(tx.update, static_argnames="logits_fn")(
        g, tx.init(params), params, logits_fn=linear_logits
    )
    h, _ = gx.gnb_estimator_diag_hessian(2).update(
        g, tx.init(params)[0].hessian_fn_state, params, logits_fn=linear_logits
    )
    want = jax.tree.map(lambda hi: -0.1 * 0.035 / jnp.maximum(0.01 * hi, 1e-8), h)
    np.testing.assert_allclose(u["w"], want["w"], rtol=1e-5)
    np.testing.assert_allclose(state[0].nu["c"], 0.01 * h["c"], rtol=1e-6)


def test_win_rate_is_printed_every_n_steps(capfd):
    tx = gx.scale_by_sophia(verbose=True, print_win_rate_every_n_steps=2)
    params = {k: jnp.asarray(v) for k, v in P0.items()}
    state = tx.init(params)
    for _ in range(4):
        _, state = tx.update(params, state, params, obj_fn=loss_jax)
    jax.effects_barrier()
    assert capfd.readouterr().out.count("Sophia win rate") == 2


def test_sophia_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="print_win_rate_every_n_steps"):
        gx.sophia(0.1, verbose=True)
    with pytest.raises(ValueError, match="update_interval=0"):
        gx.sophia(0.1, update_interval=0)
    with pytest.raises(ValueError, match="clip_threshold=0"):
        gx.scale_by_sophia(clip_threshold=0.0)
    with pytest.raises(ValueError, match="distribution='uniform'"):
        gx.hutchinson_estimator_diag_hessian(distribution="uniform")
    with pytest.raises(ValueError, match="random_seed=-1"):
        gx.hutchinson_estimator_diag_hessian(-1)
    with pytest.raises(TypeError, match="random_seed='a'"):
        gx.gnb_estimator_diag_hessian("a")
    # a typed key and an int seed are the same stream as the raw key
    x = jnp.ones(3)
    states = [
        gx.hutchinson_estimator_diag_hessian(k).init(x)
        for k in (jax.random.key(2), 2, jax.random.PRNGKey(2))
    ]
    assert np.array_equal(jax.random.key_data(states[0].key), states[1].key)
    assert np.array_equal(states[1].key, states[2].key)
    tx = gx.sophia(0.1)
    params = {"a": jnp.ones(2)}
    with pytest.raises(ValueError, match="obj_fn="):
        tx.update(params, tx.init(params), params)
    with pytest.raises(ValueError, match="logits_fn="):
        est = gx.gnb_estimator_diag_hessian()
        est.update(params, est.init(params), params)


# ----------------------------------------------------------------------- SAM


def sam_pair(sync_period: int, reset_state: bool, opaque: bool = False):
    def build(lib):
        adv = lib.chain(lib_normalize(lib)(), lib.sgd(0.2, momentum=0.5))
        return lib_sam(lib)(lib.sgd(0.05, momentum=0.9), adv, sync_period, reset_state, opaque)

    return build(gx), build(optax)


def lib_normalize(lib):
    return gx.normalize if lib is gx else optax.contrib.normalize


def lib_sam(lib):
    return gx.sam if lib is gx else optax.contrib.sam


@pytest.mark.parametrize(("sync_period", "reset_state"), [(2, True), (4, False)])
def test_sam_matches_optax(sync_period, reset_state):
    ours, theirs = sam_pair(sync_period, reset_state)
    assert_trajectories(trajectory(ours, loss_jax), trajectory(theirs, loss_jax))


def test_sam_opaque_mode_matches_optax_and_averages_over_the_batch_axis():
    """opaque_mode: grad_fn(params, i) at each adversarial point; batch_axis_name: the
    adversarial gradients averaged over a mapped axis (here vmap over two replicas whose
    losses differ by a linear term, so that their ascent directions differ)."""
    ours, theirs = sam_pair(3, True, opaque=True)

    def grad_fn(p, i):
        return jax.grad(loss_jax)(p)

    params = {k: jnp.asarray(v) for k, v in P0.items()}
    g = jax.grad(loss_jax)(params)
    step_ours = jax.jit(lambda g, s, p: ours.update(g, s, p, grad_fn=grad_fn))
    step_theirs = jax.jit(lambda g, s, p: theirs.update(g, s, p, grad_fn=grad_fn))
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for _ in range(4):
        g = jax.grad(loss_jax)(params)
        u, s_ours = step_ours(g, s_ours, params)
        with jax.numpy_dtype_promotion("standard"):
            v, s_theirs = step_theirs(g, s_theirs, params)
        for k in params:
            np.testing.assert_allclose(u[k], v[k], rtol=RTOL, atol=1e-7)
        params = gx.apply_updates(params, u)
    with pytest.raises(ValueError, match="grad_fn="):
        ours.update(g, s_ours, params)

    adv = gx.chain(gx.normalize(), gx.sgd(0.2))
    mapped = gx.sam(gx.sgd(0.1), adv, 2, opaque_mode=True, batch_axis_name="batch")
    alone = gx.sam(gx.sgd(0.1), adv, 2, opaque_mode=True)

    def replica(tx, c):
        def f(p, i):
            return jax.grad(lambda q: loss_jax(q) + c * q["a"].sum())(p)

        return tx.update(f(params, 0), tx.init(params), params, grad_fn=f)[0]

    shifts = jnp.array([1.0, -2.0])
    out = jax.jit(jax.vmap(lambda c: replica(mapped, c), axis_name="batch"))(shifts)
    each = jax.jit(jax.vmap(lambda c: replica(alone, c)))(shifts)
    assert not np.allclose(each["a"][0], each["a"][1], rtol=1e-3)  # the replicas differ
    for k in params:  # the outer SGD step of the averaged adversarial gradients
        mean = each[k].mean(axis=0)
        np.testing.assert_allclose(out[k][0], mean, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(out[k][1], mean, rtol=1e-5, atol=1e-7)


def test_sam_sync_period_one_is_the_outer_optimizer():
    """optax's sync_period=1 returns to the previous call's params (docs/differences.md)."""
    tx = gx.sam(gx.sgd(0.05, momentum=0.9), gx.chain(gx.normalize(), gx.sgd(0.2)), 1)
    assert_trajectories(trajectory(tx, loss_jax), trajectory(gx.sgd(0.05, momentum=0.9), loss_jax))


def torch_sam_trajectory(adaptive: bool, rho: float) -> Any:
    a, b = (torch.tensor(P0[n], dtype=torch.float64, requires_grad=True) for n in ("a", "b"))
    opt = pytorch_optimizer.SAM(
        [a, b], torch.optim.SGD, rho=rho, adaptive=adaptive, lr=0.05, momentum=0.9
    )
    out: dict[str, list[Any]] = {"a": [], "b": []}
    for _ in range(STEPS):
        opt.zero_grad()
        loss_torch(a, b).backward()
        opt.first_step(zero_grad=True)
        loss_torch(a, b).backward()
        opt.second_step(zero_grad=True)
        out["a"].append(a.detach().numpy().copy())
        out["b"].append(b.detach().numpy().copy())
    return out


@pytest.mark.parametrize("adaptive", [False, True], ids=["sam", "asam"])
def test_sam_gradient_matches_pytorch_optimizer(adaptive):
    rho = 0.5 if adaptive else 0.1
    tx = gx.sgd(0.05, momentum=0.9)
    sam_loss = lambda p: loss_jax(p)

    def body(carry, _):
        p, s = carry
        u, s = tx.update(gx.sam_gradient(sam_loss, p, rho, adaptive), s, p)
        p = gx.apply_updates(p, u)
        return (p, s), p

    p0 = {k: jnp.asarray(v) for k, v in P0.items()}
    out = jax.jit(lambda c: jax.lax.scan(body, c, None, length=STEPS)[1])((p0, tx.init(p0)))
    ours = {k: np.asarray(v, np.float64) for k, v in out.items()}
    assert_trajectories(ours, torch_sam_trajectory(adaptive, rho))


def test_sam_transformation_matches_pytorch_optimizer():
    """sam(sgd, chain(normalize(), sgd(rho))): every other call is a SAM step."""
    tx = gx.sam(gx.sgd(0.05, momentum=0.9), gx.chain(gx.normalize(), gx.sgd(0.1)))
    ours = trajectory(tx, loss_jax, steps=2 * STEPS)
    outer = {k: v[1::2] for k, v in ours.items()}
    assert_trajectories(outer, torch_sam_trajectory(False, 0.1))


@pytest.mark.parametrize(("rho", "eta", "eps"), [(0.3, 0.05, 1e-3), (1.0, 0.3, 0.1)])
def test_asam_gradient_with_eta_matches_the_reference(rho, eta, eps):
    params = {k: jnp.asarray(v) for k, v in P0.items()}
    got = gx.sam_gradient(loss_jax, params, rho, True, eta=eta, eps=eps)
    leaves = [np.asarray(params["a"], np.float64), np.asarray(params["b"], np.float64)]
    want = ref_ss.sam_gradient(loss_np, leaves, rho, True, eta, eps)
    np.testing.assert_allclose(got["a"], want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["b"], want[1], rtol=1e-5, atol=1e-6)
    plain = gx.sam_gradient(loss_jax, params, rho)
    assert not np.allclose(plain["a"], got["a"], rtol=1e-3)
    # eta and eps each change the result
    assert not np.allclose(gx.sam_gradient(loss_jax, params, rho, True, eps=eps)["a"], got["a"])
    assert not np.allclose(gx.sam_gradient(loss_jax, params, rho, True, eta=eta)["a"], got["a"])


def test_normalize_matches_optax_and_keeps_zero_gradients_finite():
    g = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[4.0]])}
    ours = gx.normalize().update(g, gx.normalize().init(g))[0]
    theirs = optax.contrib.normalize().update(g, optax.contrib.normalize().init(g))[0]
    for k in g:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-7)
    zero = jax.tree.map(jnp.zeros_like, g)
    out = gx.normalize().update(zero, gx.EmptyState())[0]
    assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(out))


def test_sam_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="sync_period=0"):
        gx.sam(gx.sgd(0.1), gx.sgd(0.1), 0)
    with pytest.raises(ValueError, match="batch_axis_name='i'"):
        gx.sam(gx.sgd(0.1), gx.sgd(0.1), batch_axis_name="i")
    with pytest.raises(ValueError, match="rho=-1"):
        gx.sam_gradient(loss_jax, P0, -1.0)


# ------------------------------------------------------------------ extended

LONG = 100


@pytest.mark.extended
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(b1=0.5, b2=0.9, gamma=0.1, clip_threshold=0.5, update_interval=1),
        dict(b1=0.99, b2=0.999, eps=1e-3, weight_decay=0.1, update_interval=7),
        dict(gamma=1.0, clip_threshold=None, eps=0.1, update_interval=4),
        dict(weight_decay=0.3, weight_decay_mask={"a": True, "b": False}, update_interval=3),
    ],
    ids=["every-step", "slow-averages", "unclipped", "decay-mask"],
)
def test_sophia_matches_optax_over_long_runs(kwargs):
    """Lockstep (both optimizers step from gradxform's iterate, each with its own state):
    over 100 steps float32 trajectories part by rounding near the clipping bound. Each
    state still carries its own float32 rounding (the bias correction, the averages):
    measured up to 1.9e-5 relative at step 83."""
    seed = jax.random.PRNGKey(9)
    ours = gx.sophia(0.05, **kwargs, hessian_diagonal_fn=gx.hutchinson_estimator_diag_hessian(seed))
    theirs = optax.contrib.sophia(
        0.05, **kwargs, hessian_diagonal_fn=optax.contrib.hutchinson_estimator_diag_hessian(seed)
    )

    def body(carry, _):
        p, s, o = carry
        g = jax.grad(loss_jax)(p)
        u, s = ours.update(g, s, p, obj_fn=loss_jax)
        v, o = theirs.update(g, o, p, obj_fn=loss_jax)
        return (gx.apply_updates(p, u), s, o), (u, v)

    p0 = {k: jnp.asarray(v) for k, v in P0.items()}
    with jax.numpy_dtype_promotion("standard"):
        run = jax.jit(lambda c: jax.lax.scan(body, c, None, length=LONG)[1])
        us, vs = run((p0, ours.init(p0), theirs.init(p0)))
    for k in us:
        np.testing.assert_allclose(us[k], vs[k], rtol=5e-5, atol=1e-7, err_msg=k)


@pytest.mark.extended
@pytest.mark.parametrize(
    ("b1", "b2", "wd", "p", "k"), [(0.96, 0.99, 0.0, 0.01, 10), (0.5, 0.5, 0.2, 1.0, 1)]
)
def test_sophia_h_matches_pytorch_optimizer_over_long_runs(b1, b2, wd, p, k):
    ours, theirs = sophia_h_pair(0.05, b1, b2, wd, p, 1e-6, k, 0.01, steps=LONG)
    assert_trajectories(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.extended
@pytest.mark.parametrize("sync_period", [2, 3, 5])
@pytest.mark.parametrize("reset_state", [True, False])
def test_sam_matches_optax_over_long_runs(sync_period, reset_state):
    ours, theirs = sam_pair(sync_period, reset_state)
    assert_trajectories(
        trajectory(ours, loss_jax, steps=LONG), trajectory(theirs, loss_jax, steps=LONG)
    )


@pytest.mark.extended
def test_sophia_g_trains_a_softmax_regression():
    """Sophia-G on a 3-class linear model: the loss falls below SGD's at the same step
    budget (a convergence study, not a parity)."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(64, 5)), jnp.float32)
    w_true = rng.normal(size=(5, 3)) * 2
    y = jnp.asarray(np.argmax(np.asarray(x) @ w_true, axis=1))

    def logits_fn(p):
        return x @ p["w"] + p["c"][None, :]

    def loss(p):
        logp = jax.nn.log_softmax(logits_fn(p), axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))

    p0 = {"w": jnp.zeros((5, 3)), "c": jnp.zeros(3)}

    def final(tx, **extra):
        def body(carry, _):
            p, s = carry
            u, s = tx.update(jax.grad(loss)(p), s, p, **extra)
            return (gx.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(body, (p0, tx.init(p0)), None, length=200)
        return loss(p)

    sophia_g = gx.sophia(
        0.05,
        weight_decay=0.0,
        gamma=0.05,
        update_interval=5,
        hessian_diagonal_fn=gx.gnb_estimator_diag_hessian(1),
    )
    ours = float(jax.jit(lambda: final(sophia_g, logits_fn=logits_fn))())
    baseline = float(jax.jit(lambda: final(gx.sgd(0.05)))())
    assert ours < 0.5 * baseline, (ours, baseline)
