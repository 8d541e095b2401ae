"""Data-parallel training with a gradxform optimizer on a JAX device mesh.

The same code runs on every device of one process or across processes::

    # every local device (simulate 8 on a CPU):
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python examples/data_parallel.py

    # two processes on one machine, CPU collectives over gloo:
    python examples/data_parallel.py --coordinator 127.0.0.1:12355 --num-processes 2 \\
        --process-id 0 &
    python examples/data_parallel.py --coordinator 127.0.0.1:12355 --num-processes 2 \\
        --process-id 1

Each run trains a small MLP three ways -- ``shard_map`` with an explicit
gradient average (``pmean``), ``jit`` with shardings, and ``jit`` with the
optimizer state split over the data axis (ZeRO-1) -- and checks that each
gives the parameters of the same training on a single device.
"""

from __future__ import annotations

import argparse
import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import gradxform as gx
from gradxform import state_shardings, zero1_shardings

AXIS = "data"
BATCH = 64
RTOL = 1e-6


def make_problem(seed: int = 0, d_in: int = 8, d_hidden: int = 32):
    """Parameters of a one-hidden-layer MLP and a regression data set (NumPy, float32)."""
    rng = np.random.default_rng(seed)
    params = {
        "hidden": {"w": rng.normal(size=(d_in, d_hidden)) / np.sqrt(d_in), "b": np.zeros(d_hidden)},
        "out": {"w": rng.normal(size=(d_hidden, 1)) / np.sqrt(d_hidden), "b": np.zeros(1)},
    }
    params = jax.tree.map(lambda a: np.asarray(a, np.float32), params)
    x = rng.normal(size=(BATCH, d_in)).astype(np.float32)
    y = np.sin(x.sum(axis=1, keepdims=True)).astype(np.float32)
    return params, x, y


def loss_fn(params, x, y):
    """Mean squared error of the MLP on a batch."""
    h = jnp.tanh(x @ params["hidden"]["w"] + params["hidden"]["b"][None, :])
    pred = h @ params["out"]["w"] + params["out"]["b"][None, :]
    return jnp.mean(jnp.square(pred - y))


def make_optimizer() -> gx.GradientTransformation:
    return gx.adamw(1e-2, weight_decay=1e-3)


def _to_numpy(tree):
    """A replicated (or single-device) tree as NumPy, read from this process's own copy."""
    return jax.tree.map(lambda a: np.asarray(a.addressable_data(0)), tree)


def train_single_device(steps: int):
    """The reference: the whole batch on one device."""
    params, x, y = make_problem()
    tx = make_optimizer()
    device = jax.local_devices()[0]
    params, x, y = jax.device_put((params, x, y), device)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, state, x, y):
        grads = jax.grad(loss_fn)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return gx.apply_updates(params, updates), state

    state = tx.init(params)
    for _ in range(steps):
        params, state = step(params, state, x, y)
    return _to_numpy(params)


def _global_inputs(mesh):
    """Replicated parameters and the batch split over the data axis.

    Each process contributes only its own rows of the batch; with one process
    that is the whole batch.
    """
    params, x, y = make_problem()
    n, rank = jax.process_count(), jax.process_index()
    rows = slice(rank * BATCH // n, (rank + 1) * BATCH // n)
    replicated, batch = NamedSharding(mesh, P()), NamedSharding(mesh, P(AXIS))
    params = jax.tree.map(
        lambda a: jax.make_array_from_process_local_data(replicated, a, a.shape), params
    )
    x = jax.make_array_from_process_local_data(batch, x[rows], x.shape)
    y = jax.make_array_from_process_local_data(batch, y[rows], y.shape)
    return params, x, y


def train_shard_map(mesh, steps: int):
    """Data parallel with ``shard_map``: per-device gradients averaged with ``pmean``.

    Every device differentiates its own copy of the parameters on its shard
    of the batch, the gradients are averaged over the data axis, and every
    device applies the same optimizer update to its replica of the state.
    """
    tx = make_optimizer()
    params, x, y = _global_inputs(mesh)
    state = jax.jit(tx.init, out_shardings=state_shardings(tx, params))(params)

    def local_step(params, state, x, y):
        own = jax.lax.pcast(params, AXIS, to="varying")
        grads = jax.lax.pmean(jax.grad(loss_fn)(own, x, y), AXIS)
        updates, state = tx.update(grads, state, params)
        return gx.apply_updates(params, updates), state

    step = jax.jit(
        jax.shard_map(
            local_step, mesh=mesh, in_specs=(P(), P(), P(AXIS), P(AXIS)), out_specs=(P(), P())
        ),
        donate_argnums=(0, 1),
    )
    for _ in range(steps):
        params, state = step(params, state, x, y)
    return _to_numpy(params), state


def train_jit(mesh, steps: int, *, zero1: bool = False):
    """Data parallel with ``jit`` and shardings; XLA inserts the gradient all-reduce.

    With ``zero1=True`` the optimizer state is split over the data axis
    (ZeRO-1): each device updates its slice and the updates are all-gathered.
    """
    tx = make_optimizer()
    params, x, y = _global_inputs(mesh)
    param_shardings = jax.tree.map(lambda a: a.sharding, params)
    if zero1:
        shardings = zero1_shardings(tx, params, param_shardings, axis=AXIS)
    else:
        shardings = state_shardings(tx, params, param_shardings)
    state = jax.jit(tx.init, out_shardings=shardings)(params)

    @functools.partial(jax.jit, out_shardings=(param_shardings, shardings), donate_argnums=(0, 1))
    def step(params, state, x, y):
        grads = jax.grad(loss_fn)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return gx.apply_updates(params, updates), state

    for _ in range(steps):
        params, state = step(params, state, x, y)
    return _to_numpy(params), state


def max_relative_error(a, b) -> float:
    """The largest ``max|a - b| / max|b|`` over the leaves of two NumPy trees.

    Each leaf's difference is measured against the leaf's own scale: the data
    parallel gradient is summed in a different order than on one device, so
    the two runs differ by float32 rounding (an ulp or so of the leaf's
    largest entries), which is large relative to an entry that happens to be
    near zero.
    """
    errors = jax.tree.map(lambda u, v: float(np.max(np.abs(u - v)) / np.max(np.abs(v))), a, b)
    return max(jax.tree.leaves(errors))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--coordinator", help="host:port of process 0 (multi-process runs)")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--out", help="save the final parameters of every mode to this .npz")
    args = parser.parse_args(argv)

    if args.coordinator:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
            initialization_timeout=60,
        )
    mesh = jax.make_mesh((jax.device_count(),), (AXIS,))
    print(
        f"process {jax.process_index()} of {jax.process_count()}, "
        f"{jax.device_count()} devices on the '{AXIS}' axis"
    )

    reference = train_single_device(args.steps)
    results = {
        "shard_map": train_shard_map(mesh, args.steps)[0],
        "jit": train_jit(mesh, args.steps)[0],
        "zero1": train_jit(mesh, args.steps, zero1=True)[0],
    }
    ok = True
    for mode, params in results.items():
        error = max_relative_error(params, reference)
        ok &= error <= RTOL
        print(f"{mode:>9}: max relative difference from one device {error:.2e}")
    if args.out:
        flat = {
            f"{mode}/{jax.tree_util.keystr(path, simple=True, separator='/')}": leaf
            for mode, params in results.items()
            for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
        }
        np.savez(args.out, **flat)
    if args.coordinator:
        jax.distributed.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
