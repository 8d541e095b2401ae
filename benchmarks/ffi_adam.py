"""What a one-pass Adam kernel through ``jax.ffi`` would give on CPU (a measurement).

Usage::

    python -m benchmarks.ffi_adam          # needs g++; about 20 seconds

Builds ``ffi_adam.cc`` (one loop reading p, g, m, v and writing p, m, v: 28
bytes per parameter, split over two threads) into a temporary directory,
registers it with ``jax.ffi.register_ffi_target``, calls it with
``input_output_aliases`` under donation so p, m and v are updated in place,
checks it against ``gradxform.adam`` and times it, in interleaved rounds,
against the XLA path (``gradxform.adam`` + ``apply_updates``) and
``torch.optim.Adam(fused=True)`` on one 16.8M-parameter leaf.
"""

from __future__ import annotations

import ctypes
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

import gradxform as gx

N = 4096 * 4096
B1, B2, EPS, LR = 0.9, 0.999, 1e-8, 1e-3


def build(out_dir: Path) -> Path:
    source = Path(__file__).with_suffix(".cc")
    library = out_dir / "libgxadam.so"
    subprocess.run(
        [
            "g++",
            "-O3",
            "-march=native",
            "-fno-math-errno",
            "-fopenmp-simd",
            "-shared",
            "-fPIC",
            "-std=c++17",
            f"-I{jax.ffi.include_dir()}",
            str(source),
            "-o",
            str(library),
            "-lpthread",
        ],
        check=True,
        capture_output=True,
    )
    return library


def ffi_step(
    p: jax.Array, m: jax.Array, v: jax.Array, count: jax.Array, g: jax.Array
) -> tuple[jax.Array, ...]:
    count = count + 1
    t = count.astype(jnp.float32)
    scalars = jnp.stack(
        [jnp.float32(LR), 1 / (1 - jnp.float32(B1) ** t), 1 / (1 - jnp.float32(B2) ** t)]
    )
    out = jax.ShapeDtypeStruct(p.shape, p.dtype)
    call = jax.ffi.ffi_call("gx_adam", (out, out, out), input_output_aliases={0: 0, 2: 1, 3: 2})
    p, m, v = call(p, g, m, v, scalars, b1=np.float32(B1), b2=np.float32(B2), eps=np.float32(EPS))
    return p, m, v, count


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        library = ctypes.cdll.LoadLibrary(str(build(Path(tmp))))
        jax.ffi.register_ffi_target("gx_adam", jax.ffi.pycapsule(library.GxAdam), platform="cpu")
        rng = np.random.default_rng(0)
        p0 = rng.standard_normal(N, np.float32)
        g0 = rng.standard_normal(N, np.float32)

        tx = gx.adam(LR)
        small = jnp.asarray(p0[:1000])
        state = tx.init(small)
        fp, fm, fv, fc = small, jnp.zeros(1000), jnp.zeros(1000), jnp.zeros([], jnp.int32)
        for k in range(5):
            g = jnp.asarray(g0[:1000]) * (k + 1)
            u, state = tx.update(g, state, small)
            small = gx.apply_updates(small, u)
            fp, fm, fv, fc = jax.jit(ffi_step)(fp, fm, fv, fc, g)
        err = float(jnp.max(jnp.abs(fp - small) / jnp.abs(small)))
        print(f"largest relative difference from gradxform.adam after 5 steps: {err:.1e}")

        def xla_step(p: Any, s: Any, g: Any) -> Any:
            u, s = tx.update(g, s, p)
            return gx.apply_updates(p, u), s

        ffi_jit = jax.jit(ffi_step, donate_argnums=(0, 1, 2, 3))
        xla_jit = jax.jit(xla_step, donate_argnums=(0, 1))
        grads = jnp.asarray(g0)
        ffi_box = [jnp.asarray(p0), jnp.zeros(N), jnp.zeros(N), jnp.zeros([], jnp.int32)]
        xla_box = [jnp.asarray(p0), tx.init(jnp.asarray(p0))]
        tp = torch.tensor(p0).requires_grad_()
        tp.grad = torch.tensor(g0)
        opt = torch.optim.Adam([tp], lr=LR, fused=True)

        def run_ffi() -> None:
            ffi_box[:] = ffi_jit(*ffi_box, grads)
            jax.block_until_ready(ffi_box)

        def run_xla() -> None:
            xla_box[:] = xla_jit(xla_box[0], xla_box[1], grads)
            jax.block_until_ready(xla_box)

        impls = {"ffi one-pass": run_ffi, "gradxform (XLA)": run_xla, "torch fused": opt.step}
        for f in impls.values():
            for _ in range(3):
                f()
        times: dict[str, list[float]] = {k: [] for k in impls}
        for _ in range(5):
            for name, f in impls.items():
                for _ in range(5):
                    start = time.perf_counter()
                    f()
                    times[name].append(time.perf_counter() - start)
        for name, ts in times.items():
            median = statistics.median(ts)
            print(
                f"{name:16s} median {median * 1e3:6.2f} ms  min {min(ts) * 1e3:6.2f} ms  "
                f"runs {len(ts)}  {28 * N / median / 1e9:5.1f} GB/s at 28 B/param"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
