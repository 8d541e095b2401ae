"""Optimizer-step timings: gradxform against optax and torch.optim, in one process.

Usage::

    python -m benchmarks.run            # full suite (about 15 minutes on 2 cores)
    python -m benchmarks.run --quick    # smoke run (about a minute)
    python -m benchmarks.run --shapes one-leaf --impls gradxform,gradxform-fused,torch-fused
                                        # a subset: those shapes and implementations only

Every JAX step is ``jit(step, donate_argnums=(0, 1))`` over
``(params, state, grads) -> (params + updates, state)``: params and state are
donated, so the update can be written in place. torch steps are
``optimizer.step()`` on tensors whose ``.grad`` is set. The implementations of
one shape are timed in interleaved rounds (each round runs every
implementation a few steps) so that drift on a shared machine affects them
alike; the median of all timed steps is reported with its count.

The roofline is measured in the same run, inside every case's rounds: the
in-place ``a = a + s * b`` on a large float32 array under donation, counting
12 bytes per element. Adam and
AdamW must move 28 bytes per parameter (read p, g, m, v; write p, m, v), SGD
with momentum 20 (read p, g, m; write p, m); the GB/s column divides those
bytes by the step time (20 for Adam with bfloat16 moments).

``gradxform-fused`` is ``gx.fused_apply(gx.fused_adam(...), ...)``: the one-pass C++
kernel on CPU (the XLA path where the kernel is not built, which the report says).
Every row reports the optimizer state's bytes per parameter.

Writes ``benchmarks/results/latest.json`` and ``benchmarks/results/latest.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

import gradxform as gx

RESULTS = Path(__file__).parent / "results"
BYTES_PER_PARAM = {"adam": 28, "adamw": 28, "sgd-momentum": 20}
LR = 1e-3


# ------------------------------------------------------------------------- shapes


def one_leaf(n: int = 4096 * 4096) -> list[tuple[int, ...]]:
    return [(n,)]


def mlp(width: int = 632, depth: int = 10) -> list[tuple[int, ...]]:
    """``depth`` dense layers (kernel and bias): 20 leaves, 4.0M parameters."""
    return [s for _ in range(depth) for s in ((width, width), (width,))]


def transformer(
    layers: int = 12, d: int = 256, vocab: int = 8192, seq: int = 512
) -> list[tuple[int, ...]]:
    """A GPT-style transformer: 148 leaves, 11.7M parameters for the defaults."""
    shapes: list[tuple[int, ...]] = [(vocab, d), (seq, d)]
    for _ in range(layers):
        shapes += [
            (d,),
            (d,),
            (d, 3 * d),
            (3 * d,),
            (d, d),
            (d,),
            (d,),
            (d,),
            (d, 4 * d),
            (4 * d,),
            (4 * d, d),
            (d,),
        ]
    return [*shapes, (d,), (d,)]


def many_leaves(count: int = 2000, size: int = 1000) -> list[tuple[int, ...]]:
    return [(size,)] * count


# ---------------------------------------------------------------- implementations


def gx_tx(name: str) -> gx.GradientTransformation:
    if name == "adam":
        return gx.adam(LR)
    if name == "adamw":
        return gx.adamw(LR, weight_decay=1e-2)
    return gx.sgd(LR, momentum=0.9)


def optax_tx(name: str) -> Any:
    if name == "adam":
        return optax.adam(LR)
    if name == "adamw":
        return optax.adamw(LR, weight_decay=1e-2)
    return optax.sgd(LR, momentum=0.9)


def gx_fused_tx(name: str) -> gx.GradientTransformation | None:
    if name == "adam":
        return gx.fused_adam(LR)
    if name == "adamw":
        return gx.fused_adamw(LR, weight_decay=1e-2)
    return None


def torch_opt(name: str, params: list[torch.Tensor], mode: str) -> torch.optim.Optimizer:
    kw: dict[str, Any] = {"fused": True} if mode == "fused" else {"foreach": True}
    if name == "adam":
        return torch.optim.Adam(params, lr=LR, **kw)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=LR, weight_decay=1e-2, **kw)
    return torch.optim.SGD(params, lr=LR, momentum=0.9, **kw)


@dataclasses.dataclass
class Impl:
    """One implementation ready to time: ``run()`` performs one step and waits for it."""

    name: str
    run: Callable[[], None]
    compile_s: float
    state_bytes: int = 0
    compile_runs: list[float] = dataclasses.field(default_factory=list)


def tree_bytes(tree: Any) -> int:
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def jax_impl(
    name: str,
    tx: Any,
    params: Any,
    grads: Any,
    *,
    promotion: str = "strict",
    fused: bool = False,
) -> Impl:
    """A donated, jitted step of ``tx`` (``fused``: through ``gx.fused_apply``); compile
    time is lowering plus compilation."""

    with jax.numpy_dtype_promotion(promotion):
        state = tx.init(params)
        params = jax.tree.map(jnp.copy, params)
    compiled, compile_s = compile_step(tx, params, state, grads, promotion=promotion, fused=fused)
    box = [params, state]
    state_bytes = tree_bytes(state)

    def run() -> None:
        box[0], box[1] = compiled(box[0], box[1], grads)
        jax.block_until_ready(box)

    return Impl(name, run, compile_s, state_bytes, [compile_s])


def compile_step(
    tx: Any, params: Any, state: Any, grads: Any, *, promotion: str, fused: bool = False
) -> tuple[Any, float]:
    """The donated step of ``tx`` compiled from scratch (caches cleared, a new function),
    and the seconds that took: tracing, lowering and compilation."""

    def step(p, s, g):
        if fused:
            return gx.fused_apply(tx, p, g, s)
        u, s = tx.update(g, s, p)
        return gx.apply_updates(p, u), s

    jax.clear_caches()
    with jax.numpy_dtype_promotion(promotion):
        start = time.perf_counter()
        compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads).compile()
        return compiled, time.perf_counter() - start


def torch_impl(name: str, opt_name: str, shapes: list[tuple[int, ...]], mode: str) -> Impl:
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    opt = torch_opt(opt_name, params, mode)
    opt.step()  # torch creates its state on the first step
    state_bytes = sum(
        t.numel() * t.element_size()
        for s in opt.state.values()
        for t in s.values()
        if torch.is_tensor(t)
    )

    def run() -> None:
        opt.step()

    return Impl(name, run, 0.0, state_bytes)


def build(
    opt: str, shapes: list[tuple[int, ...]], which: set[str], compile_runs: int = 1
) -> list[Impl]:
    """The implementations of one case; ``gradxform`` and ``optax`` are compiled
    ``compile_runs`` times, alternately, and report the median compile time."""
    rng = np.random.default_rng(0)
    params = {
        f"p{i:04d}": jnp.asarray(rng.standard_normal(s, np.float32)) for i, s in enumerate(shapes)
    }
    grads = {k: jnp.asarray(rng.standard_normal(v.shape, np.float32)) for k, v in params.items()}
    impls = []
    if "gradxform" in which:
        impls.append(jax_impl("gradxform", gx_tx(opt), params, grads))
    fused_tx = gx_fused_tx(opt)
    if "gradxform-fused" in which and fused_tx is not None:
        impls.append(jax_impl("gradxform-fused", fused_tx, params, grads, fused=True))
    if "gradxform-flat" in which:
        impls.append(jax_impl("gradxform-flat", gx.flat(gx_tx(opt)), params, grads))
    if "gradxform-flat-params" in which:
        flat_params, _ = gx.flatten_params(params)
        flat_grads, _ = gx.flatten_params(grads)
        impls.append(jax_impl("gradxform-flat-params", gx_tx(opt), flat_params, flat_grads))
    if "optax" in which:
        impls.append(jax_impl("optax", optax_tx(opt), params, grads, promotion="standard"))
    for mode in ("fused", "foreach"):
        if f"torch-{mode}" in which:
            impls.append(torch_impl(f"torch-{mode}", opt, shapes, mode))
    # The default path against optax: compile each again, alternating, and keep the median.
    pair = [
        (impl, tx, promotion)
        for impl in impls
        for name, tx, promotion in (
            ("gradxform", gx_tx(opt), "strict"),
            ("optax", optax_tx(opt), "standard"),
        )
        if impl.name == name
    ]
    for _ in range(compile_runs - 1):
        for impl, tx, promotion in pair:
            with jax.numpy_dtype_promotion(promotion):
                state = tx.init(params)
            impl.compile_runs.append(compile_step(tx, params, state, grads, promotion=promotion)[1])
            impl.compile_s = statistics.median(impl.compile_runs)
    return impls


def time_interleaved(
    impls: list[Impl], steps: int, warmup: int = 3, rounds: int = 5
) -> dict[str, list[float]]:
    """Per-step seconds of each implementation, measured in interleaved rounds.

    At least ``steps`` per implementation; a fast one gets more (its share of a round
    lasts about 50 ms, at most 40 steps), so the medians of millisecond steps rest on
    up to 200 steps. The order rotates from round to round, so no implementation
    always follows the same one (the roofline's large arrays leave the caches cold)."""
    per_round = {}
    for impl in impls:
        for _ in range(warmup):
            start = time.perf_counter()
            impl.run()
        last = time.perf_counter() - start  # the last warm-up step: the earlier may compile
        per_round[impl.name] = max(1, -(-steps // rounds), min(40, int(0.05 / max(last, 1e-6))))
    times: dict[str, list[float]] = {impl.name: [] for impl in impls}
    for r in range(rounds):
        for impl in impls[r % len(impls) :] + impls[: r % len(impls)]:
            for _ in range(per_round[impl.name]):
                start = time.perf_counter()
                impl.run()
                times[impl.name].append(time.perf_counter() - start)
    return times


# --------------------------------------------------------------------- roofline


class Roofline:
    """The in-place ``a = a + s * b`` on ``n`` float32 under donation, 12 bytes per element.

    It runs as one more implementation in every case's interleaved rounds, so
    each case's GB/s are compared with the bandwidth the machine gave in the
    same seconds (a shared machine's bandwidth varies by 2x over minutes).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.step = jax.jit(lambda a, b: a + jnp.float32(1e-3) * b, donate_argnums=(0,))
        self.box = [jnp.zeros(n, jnp.float32), jnp.ones(n, jnp.float32)]

    def run(self) -> None:
        self.box[0] = self.step(self.box[0], self.box[1])
        self.box[0].block_until_ready()

    def impl(self) -> Impl:
        return Impl("roofline", self.run, 0.0)

    def gbps(self, seconds: float) -> float:
        return 12 * self.n / seconds / 1e9


def roofline(roof: Roofline, steps: int = 15) -> dict[str, float]:
    """The roofline alone, at the start of the run."""
    times = time_interleaved([roof.impl()], steps)["roofline"]
    median = statistics.median(times)
    return {
        "gbps": roof.gbps(median),
        "best_gbps": roof.gbps(min(times)),
        "median_ms": median * 1e3,
        "runs": len(times),
        "elements": roof.n,
    }


# ------------------------------------------------------------------------ suite


ALL = {
    "gradxform",
    "gradxform-fused",
    "gradxform-flat",
    "gradxform-flat-params",
    "optax",
    "torch-fused",
    "torch-foreach",
}


def run_case(
    shape_name: str,
    opt: str,
    shapes: list[tuple[int, ...]],
    which: set[str],
    steps: int,
    roofline: Roofline,
    compile_runs: int = 1,
) -> list[dict[str, Any]]:
    n = sum(int(np.prod(s)) for s in shapes)
    impls = build(opt, shapes, which, compile_runs)
    times = time_interleaved([*impls, roofline.impl()], steps)
    roof = roofline.gbps(statistics.median(times["roofline"]))
    rows = []
    for impl in impls:
        median = statistics.median(times[impl.name])
        gbps = BYTES_PER_PARAM[opt] * n / median / 1e9
        rows.append(
            {
                "shape": shape_name,
                "leaves": len(shapes),
                "params": n,
                "opt": opt,
                "impl": impl.name,
                "median_ms": median * 1e3,
                "min_ms": min(times[impl.name]) * 1e3,
                "runs": len(times[impl.name]),
                "compile_s": impl.compile_s,
                "compile_runs": impl.compile_runs,
                "gbps": gbps,
                "roofline_gbps": roof,
                "roofline_frac": gbps / roof,
                "state_bytes": impl.state_bytes,
                "state_bytes_per_param": impl.state_bytes / n,
            }
        )
    del impls
    return rows


def bf16_case(
    shapes: list[tuple[int, ...]], steps: int, roofline: Roofline
) -> list[dict[str, Any]]:
    """Adam with float32 and with bfloat16 moments (one leaf): time and state bytes."""
    n = sum(int(np.prod(s)) for s in shapes)
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.standard_normal(shapes[0], np.float32))}
    grads = {"w": jnp.asarray(rng.standard_normal(shapes[0], np.float32))}
    impls, per_param_bytes = [], []
    for label, dtype in (("float32", None), ("bfloat16", jnp.bfloat16)):
        tx = gx.chain(
            gx.scale_by_adam(mu_dtype=dtype, nu_dtype=dtype), gx.scale_by_learning_rate(LR)
        )
        impls.append(jax_impl(f"gradxform-moments-{label}", tx, params, grads))
        fused = gx.fused_adam(LR, mu_dtype=dtype, nu_dtype=dtype)
        impls.append(jax_impl(f"fused-moments-{label}", fused, params, grads, fused=True))
        per_param_bytes += [28 if dtype is None else 20] * 2
    times = time_interleaved([*impls, roofline.impl()], steps)
    roof = roofline.gbps(statistics.median(times["roofline"]))
    rows = []
    for impl, per_param in zip(impls, per_param_bytes, strict=True):
        median = statistics.median(times[impl.name])
        gbps = per_param * n / median / 1e9
        rows.append(
            {
                "shape": "one-leaf",
                "leaves": 1,
                "params": n,
                "opt": "adam",
                "impl": impl.name,
                "median_ms": median * 1e3,
                "min_ms": min(times[impl.name]) * 1e3,
                "runs": len(times[impl.name]),
                "compile_s": impl.compile_s,
                "gbps": gbps,
                "roofline_gbps": roof,
                "roofline_frac": gbps / roof,
                "state_bytes": impl.state_bytes,
                "state_bytes_per_param": impl.state_bytes / n,
            }
        )
    return rows


def train_step_case(count: int, total: int, steps: int) -> list[dict[str, Any]]:
    """A whole training step (gradient of a toy elementwise model, update, apply) on
    ``count`` leaves: tree params with gradxform and optax, flat params, and ``flat(tx)``."""
    n = total // count
    rng = np.random.default_rng(0)
    params = {f"p{i:04d}": jnp.asarray(rng.standard_normal(n, np.float32)) for i in range(count)}
    x = jnp.asarray(rng.standard_normal(n, np.float32))

    def loss(p: Any) -> jax.Array:
        return sum((jnp.sum(jnp.tanh(w * x)) for w in jax.tree.leaves(p)), jnp.zeros([]))

    flat_params, unflatten = gx.flatten_params(params)
    variants: list[tuple[str, Any, Any, Callable[[Any], jax.Array], str]] = [
        ("gradxform", gx.adam(LR), params, loss, "strict"),
        ("gradxform-flat", gx.flat(gx.adam(LR)), params, loss, "strict"),
        ("gradxform-flat-params", gx.adam(LR), flat_params, lambda f: loss(unflatten(f)), "strict"),
        ("optax", optax.adam(LR), params, loss, "standard"),
    ]
    impls = []
    for name, tx, p, lossf, promotion in variants:

        def step(p, s, _, tx=tx, lossf=lossf):
            u, s = tx.update(jax.grad(lossf)(p), s, p)
            return gx.apply_updates(p, u), s

        with jax.numpy_dtype_promotion(promotion):
            state = tx.init(p)
            p = jax.tree.map(jnp.copy, p)
            start = time.perf_counter()
            compiled = jax.jit(step, donate_argnums=(0, 1)).lower(p, state, x).compile()
            compile_s = time.perf_counter() - start
        box = [p, state]

        def run(box=box, compiled=compiled) -> None:
            box[0], box[1] = compiled(box[0], box[1], x)
            jax.block_until_ready(box)

        impls.append(Impl(name, run, compile_s))
    times = time_interleaved(impls, steps)
    return [
        {
            "shape": f"train-{count}",
            "leaves": count,
            "params": n * count,
            "opt": "adam",
            "impl": impl.name,
            "median_ms": statistics.median(times[impl.name]) * 1e3,
            "min_ms": min(times[impl.name]) * 1e3,
            "runs": len(times[impl.name]),
            "compile_s": impl.compile_s,
        }
        for impl in impls
    ]


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "optax": optax.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run of about a minute")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per case")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--shapes",
        default=None,
        help="comma-separated parts to run: case names (one-leaf, mlp-20, transformer-148, "
        "leaves-...), sweep, moments, train; default all",
    )
    parser.add_argument(
        "--impls",
        default=None,
        help=f"comma-separated implementations of the main cases; default all: {sorted(ALL)}",
    )
    args = parser.parse_args(argv)
    parts = None if args.shapes is None else set(args.shapes.split(","))
    impls_wanted = set(ALL) if args.impls is None else set(args.impls.split(","))
    if impls_wanted - ALL:
        parser.error(f"unknown implementations {sorted(impls_wanted - ALL)}")

    def wanted(part: str) -> bool:
        return parts is None or part in parts

    steps = args.steps or (15 if args.quick else 25)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()
    reference = Roofline(16 * 2**20 if args.quick else 64 * 2**20)
    roof = roofline(reference)
    print(
        f"roofline (in-place a += s*b, {roof['elements']} float32): "
        f"{roof['gbps']:.1f} GB/s, median of {roof['runs']} (best {roof['best_gbps']:.1f})",
        flush=True,
    )

    if args.quick:
        cases = [
            ("one-leaf", one_leaf(4 * 2**20)),
            ("mlp-20", mlp()),
            ("leaves-200x1000", many_leaves(200)),
        ]
        opts = ["adam"]
        sweep_counts = [1, 10, 100, 500]
        sweep_total = 500_000
    else:
        cases = [
            ("one-leaf", one_leaf()),
            ("mlp-20", mlp()),
            ("transformer-148", transformer()),
            ("leaves-2000x1000", many_leaves()),
        ]
        opts = ["adam", "adamw", "sgd-momentum"]
        sweep_counts = [1, 10, 100, 1000, 4000]
        sweep_total = 2_000_000

    rows: list[dict[str, Any]] = []
    for shape_name, shapes in cases:
        if not wanted(shape_name):
            continue
        for opt in opts:
            which = set(impls_wanted)
            t0 = time.perf_counter()
            runs = 3 if len(shapes) <= 200 else 2
            case = run_case(shape_name, opt, shapes, which, steps, reference, runs)
            rows += case
            print(
                f"{shape_name:18s} {opt:13s} "
                + "  ".join(f"{r['impl']}={r['median_ms']:.2f}ms" for r in case)
                + f"  roof={case[0]['roofline_gbps']:.0f}GB/s"
                + f"  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )

    # The leaf sweep: every implementation for Adam; the default path, optax and torch's
    # fused step for the others (the default path against optax at every point).
    sweep: list[dict[str, Any]] = []
    for opt in opts if wanted("sweep") else []:
        for count in sweep_counts:
            shapes = many_leaves(count, sweep_total // count)
            which = {"gradxform", "gradxform-fused", "optax", "torch-fused"}
            if opt == "adam":
                which.add("gradxform-flat-params")
                if count <= 1000:
                    which.add("gradxform-flat")
            which &= impls_wanted
            t0 = time.perf_counter()
            runs = 3 if count <= 100 else 2
            case = run_case(f"sweep-{count}", opt, shapes, which, steps, reference, runs)
            sweep += case
            print(
                f"sweep {opt:13s} {count:5d} leaves "
                + "  ".join(
                    f"{r['impl']}={r['median_ms']:.2f}ms/{r['compile_s']:.2f}s" for r in case
                )
                + f"  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )

    low_memory = (
        bf16_case(one_leaf(4 * 2**20 if args.quick else 4096 * 4096), steps, reference)
        if wanted("moments")
        else []
    )
    for r in low_memory:
        print(
            f"moments {r['impl']:28s} {r['median_ms']:.2f} ms  state "
            f"{r['state_bytes'] / 2**20:.0f} MiB ({r['state_bytes_per_param']:.1f} B/param)  "
            f"{100 * r['roofline_frac']:.0f} % of roofline",
            flush=True,
        )

    train = []
    if wanted("train"):
        train = train_step_case(*((200, 500_000) if args.quick else (1000, 2_000_000)), steps)
        print(
            "train step "
            + "  ".join(f"{r['impl']}={r['median_ms']:.2f}ms/{r['compile_s']:.2f}s" for r in train),
            flush=True,
        )

    result = {
        "date": started.isoformat(timespec="seconds"),
        "quick": args.quick,
        "fused_kernel": gx.fused_kernel_available(),
        "parts": args.shapes,
        "impls": args.impls,
        "machine": machine(),
        "roofline": roof,
        "steps": steps,
        "rows": rows,
        "sweep": sweep,
        "low_memory": low_memory,
        "train": train,
        "load_start": load_start,
        "load_end": os.getloadavg(),
        "seconds": (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "quick" if args.quick else "latest"
    if parts is not None or args.impls is not None:
        name += "-subset"  # a partial run does not replace the full report
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=1))
    table = markdown(result)
    (args.out / f"{name}.md").write_text(table)
    print()
    print(table)
    return 0


# ---------------------------------------------------------------------- report


def _timed(r: dict[str, Any] | None) -> str:
    return "-" if r is None else f"{r['median_ms']:.2f} / {r['compile_s']:.2f}"


def default_path_table(result: dict[str, Any]) -> list[str]:
    """The default per-leaf path (``gx.adam``, ``gx.adamw``, ``gx.sgd`` with momentum)
    against optax on every case and sweep point: step and compile ratios, target <= 1."""
    pairs = []
    for rows in (result["rows"], result["sweep"]):
        for r in rows:
            o = _get(rows, r["shape"], r["opt"], "optax")
            if r["impl"] == "gradxform" and o is not None:
                pairs.append((r, o))
    if not pairs:
        return []
    lines = [
        "",
        "Default path against optax (same run; compile s: median of the runs, gradxform "
        "and optax compiled alternately from cleared caches):",
        "",
        "| case | opt | leaves | step ms gx / optax | step ratio | compile s gx / optax "
        "| compile ratio | compile runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g, o in pairs:
        lines.append(
            f"| {g['shape']} | {g['opt']} | {g['leaves']} | {_ms(g)} / {_ms(o)} "
            f"| {_ratio(g, o)} | {g['compile_s']:.2f} / {o['compile_s']:.2f} "
            f"| {g['compile_s'] / o['compile_s']:.2f} | {len(g.get('compile_runs', [1]))} |"
        )
    step = max(pairs, key=lambda p: p[0]["median_ms"] / p[1]["median_ms"])
    comp = max(pairs, key=lambda p: p[0]["compile_s"] / p[1]["compile_s"])
    lines += [
        "",
        f"Largest step ratio {step[0]['median_ms'] / step[1]['median_ms']:.2f} "
        f"({step[0]['shape']}, {step[0]['opt']}); largest compile ratio "
        f"{comp[0]['compile_s'] / comp[1]['compile_s']:.2f} ({comp[0]['shape']}, "
        f"{comp[0]['opt']}).",
    ]
    return lines


def _get(rows: list[dict[str, Any]], shape: str, opt: str, impl: str) -> dict[str, Any] | None:
    for r in rows:
        if r["shape"] == shape and r["opt"] == opt and r["impl"] == impl:
            return r
    return None


def _ms(r: dict[str, Any] | None) -> str:
    return "-" if r is None else f"{r['median_ms']:.2f}"


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    return "-" if a is None or b is None else f"{a['median_ms'] / b['median_ms']:.2f}"


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    roof = result["roofline"]
    lines = [
        f"Measured {result['date']} on {m['cpu']} ({m['cores']} cores), jax {m['jax']}, "
        f"optax {m['optax']}, torch {m['torch']} ({m['torch_threads']} threads). "
        f"Median ms per step over at least {result['steps']} timed steps (up to 200 for fast "
        f"steps) after 3 warm-up steps "
        f"(interleaved rounds), params and state donated. The roofline is the in-place "
        f"`a += s*b` on {roof['elements']} float32 (12 B/element), run inside every case's "
        f"rounds; alone at the start it gave {roof['gbps']:.1f} GB/s "
        f"(best step {roof['best_gbps']:.1f}). GB/s count 28 B/param for Adam(W), 20 for SGD "
        f"with momentum.",
        "",
        "`fused` = `gradxform.fused_apply(gradxform.fused_adam(...))` (one-pass C++ kernel"
        + ("" if result.get("fused_kernel") else "; NOT BUILT here, so the XLA path")
        + "); `flat` = `gradxform.flat(tx)` (tree params and grads, flat state); "
        "`flat-params` = the plain optimizer on `flatten_params` buffers (grads arrive flat). "
        "State B/param: the optimizer state's bytes per parameter (gradxform's / torch's).",
        "",
        "| shape | opt | gradxform | fused | flat | flat-params | optax | torch fused "
        "| torch foreach | compile s gx / fused / flat / flat-params / optax | roofline GB/s "
        "| fused GB/s (% roof) | best other gx GB/s (% roof) | fused/optax | fused/torch "
        "| flat/optax | flat/torch | flat-params/optax | flat-params/torch | state B/param |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    seen = []
    for r in result["rows"]:
        if (r["shape"], r["opt"]) not in seen:
            seen.append((r["shape"], r["opt"]))

    def rate(x: dict[str, Any] | None) -> str:
        return "-" if x is None else f"{x['gbps']:.1f} ({100 * x['roofline_frac']:.0f} %)"

    for shape, opt in seen:
        rows = result["rows"]
        g = _get(rows, shape, opt, "gradxform")
        fu = _get(rows, shape, opt, "gradxform-fused")
        f = _get(rows, shape, opt, "gradxform-flat")
        fp = _get(rows, shape, opt, "gradxform-flat-params")
        o = _get(rows, shape, opt, "optax")
        tf = _get(rows, shape, opt, "torch-fused")
        tfe = _get(rows, shape, opt, "torch-foreach")
        comp = " / ".join("-" if x is None else f"{x['compile_s']:.2f}" for x in (g, fu, f, fp, o))
        others = [x for x in (g, f, fp) if x is not None]
        best = min(others, key=lambda x: x["median_ms"]) if others else None
        any_row = next(x for x in (g, fu, f, fp, o, tf, tfe) if x is not None)
        rl = f"{any_row['roofline_gbps']:.0f}"
        ours = next((x for x in (g, fu, f, fp, o) if x is not None), None)
        state = " / ".join(
            "-" if x is None else f"{x.get('state_bytes_per_param', 0.0):.1f}" for x in (ours, tf)
        )
        lines.append(
            f"| {shape} ({any_row['leaves']} leaves) | {opt} | {_ms(g)} | {_ms(fu)} | {_ms(f)} "
            f"| {_ms(fp)} | {_ms(o)} | {_ms(tf)} | {_ms(tfe)} | {comp} | {rl} | {rate(fu)} "
            f"| {rate(best)} | {_ratio(fu, o)} | {_ratio(fu, tf)} | {_ratio(f, o)} "
            f"| {_ratio(f, tf)} | {_ratio(fp, o)} | {_ratio(fp, tf)} | {state} |"
        )
    lines += [
        "",
        "Per-leaf sweep (fixed total size; ms per step / compile s):",
        "",
        "| opt | leaves | gradxform | fused | flat | flat-params | optax | torch fused |",
        "|---|---|---|---|---|---|---|---|",
    ]
    impls = ("gradxform", "gradxform-fused", "gradxform-flat", "gradxform-flat-params", "optax")
    for opt, count in sorted({(r["opt"], r["leaves"]) for r in result["sweep"]}):
        cells = [_timed(_get(result["sweep"], f"sweep-{count}", opt, impl)) for impl in impls]
        cells.append(_ms(_get(result["sweep"], f"sweep-{count}", opt, "torch-fused")))
        lines.append(f"| {opt} | {count} | " + " | ".join(cells) + " |")
    lines += default_path_table(result)
    lines += [
        "",
        "Adam moment dtypes (one leaf; GB/s counts 28 B/param for float32 "
        "moments, 20 for bfloat16):",
        "",
        "| implementation | moments | ms | state MiB | state B/param | GB/s (% roof) "
        "| roofline GB/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["low_memory"]:
        kind, _, moments = r["impl"].rpartition("-")
        lines.append(
            f"| {'fused' if kind.startswith('fused') else 'gradxform'} | {moments} "
            f"| {r['median_ms']:.2f} | {r['state_bytes'] / 2**20:.0f} "
            f"| {r['state_bytes_per_param']:.1f} "
            f"| {r['gbps']:.1f} ({100 * r['roofline_frac']:.0f} %) | {r['roofline_gbps']:.0f} |"
        )
    train = result["train"]
    if train:
        lines += [
            "",
            f"Whole training step (toy elementwise model, Adam, "
            f"{train[0]['leaves']} leaves, {train[0]['params']} params):",
            "",
            "| implementation | ms per step | compile s |",
            "|---|---|---|",
        ]
        for r in train:
            lines.append(f"| {r['impl']} | {r['median_ms']:.2f} | {r['compile_s']:.2f} |")
    lines += [
        "",
        f"Suite ran in {result['seconds']:.0f} s; load average "
        f"{result['load_start'][0]:.2f} at the start, {result['load_end'][0]:.2f} at the "
        f"end (2 cores shared with other work: compare ratios within a row). Medians "
        f"with their minimums are in the JSON.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
