"""The one-pass Adam kernel (``fused_adam``, ``fused_adamw``, ``fused_apply``).

Every kernel result is compared with the XLA path of the same transformation
(``tx.update`` + ``apply_updates``): moments and step counts bit for bit, parameters at
rtol 1e-6 with atol 1e-8. XLA forms the bias-correction factors inside or outside the
element loop depending on the program, which can move an update by an ulp; where a
parameter is near zero that ulp of a 1e-3 step is more than 1e-6 of the parameter,
hence the atol (below one ulp of the largest step tested). Without the built kernel these tests skip
with the reason; in CI (a compiler is there) they fail.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import _fused
from tests._require import missing

SIZES = (1, 7, 1000003)
ROOT = Path(__file__).resolve().parent.parent


NOT_BUILT = (
    "the one-pass Adam kernel is not built (pip install -e . with a C++ compiler, "
    "or python setup.py build_ext --inplace)"
)


@pytest.fixture
def kernel() -> None:
    if not gx.fused_kernel_available():
        missing(NOT_BUILT)


def test_the_kernel_is_built():
    """Skips without a compiler; fails in CI, which has one (tests/_require.py)."""
    if not gx.fused_kernel_available():
        missing(NOT_BUILT)


def make_params(sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    return {f"p{n}": jnp.asarray(rng.standard_normal(n, np.float32)) for n in sizes}


def grads_like(params, seed):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(p.shape, np.float32)), params)


def xla_step(tx, params, grads, state):
    updates, state = tx.update(grads, state, params)
    return gx.apply_updates(params, updates), state


def uses_kernel(fn, *args) -> bool:
    return _fused._TARGET in jax.jit(fn).lower(*args).as_text()


def assert_same(kernel_out, xla_out):
    (kp, ks), (xp, xs) = kernel_out, xla_out
    assert jax.tree.structure(ks) == jax.tree.structure(xs)
    for a, b in zip(jax.tree.leaves(ks), jax.tree.leaves(xs), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
    chex.assert_trees_all_close(kp, xp, rtol=1e-6, atol=1e-8)


def run_both(tx, params, steps=3, seed=1):
    """``steps`` jitted steps of the kernel and of the XLA path from the same start."""
    fused = jax.jit(functools.partial(gx.fused_apply, tx))
    plain = jax.jit(functools.partial(xla_step, tx))
    state = tx.init(params)
    k = x = (params, state)
    for i in range(steps):
        g = grads_like(params, seed + i)
        k = fused(k[0], g, k[1])
        x = plain(x[0], g, x[1])
    return k, x


CONFIGS = {
    "adam": lambda: gx.fused_adam(1e-3),
    "adam-hyper": lambda: gx.fused_adam(3e-2, b1=0.8, b2=0.99, eps=1e-6),
    "adamw": lambda: gx.fused_adamw(1e-3, weight_decay=1e-2),
    "adamw-hyper": lambda: gx.fused_adamw(2e-2, 0.5, 0.95, 1e-5, weight_decay=0.3),
    "adam-bf16": lambda: gx.fused_adam(1e-3, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16),
    "adamw-bf16-mu": lambda: gx.fused_adamw(1e-2, mu_dtype=jnp.bfloat16, weight_decay=0.1),
    "adam-bf16-nu": lambda: gx.fused_adam(1e-2, nu_dtype="bfloat16"),
    "adam-schedule": lambda: gx.fused_adam(gx.schedules.linear_schedule(1e-2, 1e-3, 5)),
    "adamw-schedules": lambda: gx.fused_adamw(
        gx.schedules.cosine_decay_schedule(1e-2, 10),
        weight_decay=lambda t: 1e-2 / (t.astype(jnp.float32) + 1),
    ),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_kernel_equals_xla_path(kernel, name):
    tx = CONFIGS[name]()
    params = make_params()
    assert uses_kernel(functools.partial(gx.fused_apply, tx), params, params, tx.init(params))
    assert_same(*run_both(tx, params))


def test_fused_factories_are_adam_and_adamw():
    """Same state and updates as adam/adamw: states move between them freely."""
    params = make_params((5, 3))
    g = grads_like(params, 3)
    for fused, plain in (
        (gx.fused_adam(1e-2, 0.8), gx.adam(1e-2, 0.8)),
        (gx.fused_adamw(1e-2, weight_decay=0.1), gx.adamw(1e-2, weight_decay=0.1)),
    ):
        state = fused.init(params)
        chex.assert_trees_all_equal(state, plain.init(params))
        chex.assert_trees_all_equal(fused.update(g, state, params), plain.update(g, state, params))


def test_adamw_mask(kernel):
    params = make_params((7, 1000))
    mask = {"p7": False, "p1000": True}
    tx = gx.fused_adamw(1e-2, weight_decay=0.5, mask=mask)
    assert_same(*run_both(tx, params))
    tx = gx.fused_adamw(
        1e-2, weight_decay=0.5, mask=lambda p: jax.tree.map(lambda x: x.size > 7, p)
    )
    assert_same(*run_both(tx, params))


def test_donated_buffers_are_updated_in_place(kernel):
    tx = gx.fused_adamw(1e-3, weight_decay=1e-2, mu_dtype=jnp.bfloat16)
    step = jax.jit(functools.partial(gx.fused_apply, tx), donate_argnums=(0, 2))
    params = make_params((7, 1000003))
    state = tx.init(params)
    params, state = step(params, grads_like(params, 1), state)  # buffers of XLA's own

    def pointers(params, state):
        return [x.unsafe_buffer_pointer() for x in jax.tree.leaves((params, state[0][1:]))]

    before = pointers(params, state)
    params, state = step(params, grads_like(params, 2), state)  # warnings are errors here
    assert pointers(params, state) == before


def test_schedule_does_not_recompile(kernel):
    tx = CONFIGS["adamw-schedules"]()
    traces = []

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, state, grads):
        traces.append(1)
        return gx.fused_apply(tx, params, grads, state)

    params = make_params((7, 1000))
    state = tx.init(params)
    for i in range(3):
        params, state = step(params, state, grads_like(params, i))
    assert len(traces) == 1


def test_vmap_runs_the_kernel_on_the_batch(kernel):
    """A batch of three models whose step counts differ: each row gets its own scalars."""
    tx = gx.fused_adamw(1e-2, weight_decay=0.1, nu_dtype=jnp.bfloat16)
    params = jax.vmap(lambda s: make_params((7, 1000)) | {"p7": jnp.full(7, s)})(
        jnp.arange(3.0, dtype=jnp.float32)
    )
    state = jax.vmap(tx.init)(params)
    state = (state[0]._replace(count=jnp.array([0, 4, 40], jnp.int32)), *state[1:])
    fused = jax.jit(jax.vmap(functools.partial(gx.fused_apply, tx)))
    plain = jax.jit(jax.vmap(functools.partial(xla_step, tx)))
    k = x = (params, state)
    for i in range(3):
        g = jax.vmap(lambda j, i=i: grads_like(make_params((7, 1000)), 10 * i + 1))(jnp.arange(3))
        g = jax.tree.map(lambda a: a * jnp.arange(1.0, 4.0).reshape(3, 1), g)
        assert uses_kernel(jax.vmap(functools.partial(gx.fused_apply, tx)), k[0], g, k[1])
        k = fused(k[0], g, k[1])
        x = plain(x[0], g, x[1])
    assert_same(k, x)


def test_without_the_kernel_the_xla_path_runs(monkeypatch):
    """The library treated as not built: the same results, and no custom call."""
    monkeypatch.setattr(_fused, "_load_library", lambda: None)
    assert not gx.fused_kernel_available()
    tx = CONFIGS["adamw-hyper"]()
    params = make_params((1, 7, 1000))
    assert not uses_kernel(functools.partial(gx.fused_apply, tx), params, params, tx.init(params))
    k, x = run_both(tx, params)
    chex.assert_trees_all_equal(k, x)


def test_other_transformations_take_the_xla_path():
    params = make_params((7, 1000))
    for tx in (gx.adam(1e-3), gx.sgd(1e-2, 0.9), gx.chain(gx.clip(1.0), gx.fused_adam(1e-3))):
        assert not uses_kernel(
            functools.partial(gx.fused_apply, tx), params, params, tx.init(params)
        )
        k, x = run_both(tx, params, steps=2)
        chex.assert_trees_all_equal(k, x)


def test_unsupported_dtypes_take_the_xla_path():
    tx = gx.fused_adam(1e-3)
    params = {"w": jnp.ones(5, jnp.bfloat16), "b": jnp.ones(3)}
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    fn = functools.partial(gx.fused_apply, tx)
    assert not uses_kernel(fn, params, grads, state)
    chex.assert_trees_all_equal(fn(params, grads, state), xla_step(tx, params, grads, state))


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"eps_root": 1e-8}, "eps_root"),
        ({"mu_dtype": jnp.float16}, "mu_dtype"),
        ({"nu_dtype": jnp.float16}, "nu_dtype"),
        ({"b1": 1.0}, "b1"),
    ],
)
def test_unsupported_configurations_are_refused_at_construction(kwargs, named):
    for factory in (gx.fused_adam, gx.fused_adamw):
        with pytest.raises(ValueError, match=named):
            factory(1e-3, **kwargs)


# ------------------------------------------------------------- the build from source


def build_ext(out, **env: str) -> subprocess.CompletedProcess:
    """``setup.py build_ext`` of this source tree into ``out`` (the tree is not touched)."""
    return subprocess.run(
        [
            *(sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(out / "lib")),
            *("--build-temp", str(out / "tmp")),
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_build_with_a_compiler_makes_the_kernel_library(tmp_path):
    if shutil.which(os.environ.get("CXX", "c++")) is None:
        missing("no C++ compiler to build the kernel with")
    done = build_ext(tmp_path)
    assert done.returncode == 0, done.stderr
    (library,) = (tmp_path / "lib" / "gradxform").glob("_adam_kernel*")
    assert hasattr(ctypes.cdll.LoadLibrary(str(library)), "GxAdamStep")


def test_a_build_without_a_compiler_warns_and_succeeds_without_the_kernel(tmp_path):
    """The install goes on (the extension is optional) and says why the kernel is missing;
    the package then runs the XLA path (test_without_the_kernel_the_xla_path_runs)."""
    done = build_ext(tmp_path, CC="/nonexistent/cc", CXX="/nonexistent/c++")
    assert done.returncode == 0, done.stderr
    assert 'building extension "gradxform._adam_kernel" failed' in done.stdout + done.stderr
    assert not list(tmp_path.rglob("_adam_kernel*"))
