"""Matrix and second-order optimizers next to Adam: step time, refresh cost, state bytes.

Usage::

    python -m benchmarks.preconditioned            # part of make bench, about 3 minutes
    python -m benchmarks.preconditioned --quick    # a smaller MLP, about 40 seconds

For each optimizer one donated, jitted step (``update`` + ``apply_updates``) is compiled
once and called for ``--steps`` steps on the benchmark's MLP (10 dense layers and their
biases). Steps are timed one by one and split into the steps that refresh a
preconditioner (Shampoo's inverse roots every ``precondition_every`` steps, SOAP's
eigenbasis every ``precondition_frequency`` steps, PSGD-Kron's fit whenever its
probability schedule fires, read from the state) and the steps that do not. The table
shows the median of each, the number of compiled programs after the run (1: a refresh
is a branch of ``lax.cond``, not a recompilation) and the state's bytes per parameter.
Results go to ``benchmarks/results/preconditioned.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradxform as gx

RESULTS = Path(__file__).with_name("results")
LR = 1e-3


def optimizers() -> dict[str, tuple[gx.GradientTransformation, Callable[[Any, int], bool]]]:
    """name -> (transformation, refreshed(state_after, t)): whether step ``t`` (counted
    from 1) refreshed a preconditioner."""

    def never(state: Any, step: int) -> bool:
        del state, step
        return False

    def every(k: int, offset: int = 0) -> Callable[[Any, int], bool]:
        return lambda state, t: (t - offset) % k == 0

    def kron_fitted(state: Any, t: int) -> bool:  # the counter restarts at every fit
        del t
        found = [s for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, gx.KronState))]
        return bool(next(s for s in found if isinstance(s, gx.KronState)).update_counter == 0)

    return {
        "adam": (gx.adam(LR), never),
        "adamw, bf16 moments": (
            gx.adamw(LR, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16),
            never,
        ),
        "muon": (gx.muon(LR), never),
        "shampoo (every 10)": (gx.shampoo(LR, precondition_every=10), every(10)),
        "soap (every 10)": (gx.soap(LR, precondition_frequency=10), every(10, offset=1)),
        "kron (p = 0.1)": (gx.kron(LR, preconditioner_update_probability=0.1), kron_fitted),
    }


def mlp(width: int, depth: int) -> dict[str, Any]:
    keys = jax.random.split(jax.random.key(0), depth)
    return {
        f"layer{i}": {
            "w": jax.random.normal(k, (width, width)) / np.sqrt(width),
            "b": jnp.zeros(width),
        }
        for i, k in enumerate(keys)
    }


def measure(
    name: str, tx: gx.GradientTransformation, refreshed: Any, params: Any, steps: int
) -> dict[str, Any]:
    grads = jax.tree.map(lambda p: 1e-2 * jnp.cos(p + 1.0), params)

    def step(p: Any, s: Any, g: Any) -> Any:
        u, s = tx.update(g, s, p)
        return gx.apply_updates(p, u), s

    jitted = jax.jit(step, donate_argnums=(0, 1))
    box = [jax.tree.map(jnp.copy, params), tx.init(params)]
    state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(box[1]))
    start = time.perf_counter()
    box[:] = jitted(box[0], box[1], grads)  # step 1 (count 0 -> 1) includes the compile
    jax.block_until_ready(box)
    first_s = time.perf_counter() - start
    plain: list[float] = []
    refresh: list[float] = []
    for t in range(2, steps + 2):
        start = time.perf_counter()
        box[:] = jitted(box[0], box[1], grads)
        jax.block_until_ready(box)
        elapsed = time.perf_counter() - start
        (refresh if refreshed(box[1], t) else plain).append(elapsed)
    n_params = sum(x.size for x in jax.tree.leaves(params))
    return {
        "optimizer": name,
        "first_step_s": first_s,
        "step_ms": 1e3 * statistics.median(plain) if plain else None,
        "refresh_ms": 1e3 * statistics.median(refresh) if refresh else None,
        "plain_steps": len(plain),
        "refresh_steps": len(refresh),
        "compiled_programs": jitted._cache_size(),
        "state_bytes_per_param": state_bytes / n_params,
    }


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    adam = next(r for r in rows if r["optimizer"] == "adam")
    lines = [
        f"Preconditioned optimizers on an MLP ({result['shape']}), {result['steps']} timed "
        f"steps each, median ms; jax {result['jax']}, {result['cpus']} CPUs.",
        "",
        "| optimizer | step ms (no refresh) | x adam | refresh step ms | steps: plain / refresh "
        "| compiled programs | state bytes / param | first step s (compile) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        refresh = "-" if r["refresh_ms"] is None else f"{r['refresh_ms']:.2f}"
        lines.append(
            f"| {r['optimizer']} | {r['step_ms']:.2f} | {r['step_ms'] / adam['step_ms']:.2f} "
            f"| {refresh} | {r['plain_steps']} / {r['refresh_steps']} "
            f"| {r['compiled_programs']} | {r['state_bytes_per_param']:.1f} "
            f"| {r['first_step_s']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 256-wide MLP, 30 steps")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    width, depth, steps = (256, 4, 30) if args.quick else (632, 10, 60)
    params = mlp(width, depth)
    rows = []
    for name, (tx, refreshed) in optimizers().items():
        rows.append(measure(name, tx, refreshed, params, steps))
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "shape": f"{depth} layers of {width}x{width} + bias",
        "steps": steps,
        "jax": jax.__version__,
        "cpus": os.cpu_count(),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "preconditioned-quick" if args.quick else "preconditioned"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    text = markdown(result)
    (args.out / f"{stem}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
