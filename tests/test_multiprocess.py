"""Two processes on loopback: ``jax.distributed`` with CPU collectives (gloo).

Runs ``examples/data_parallel.py`` as two local processes, one CPU device each,
that train the same MLP data-parallel with a gradxform optimizer (``shard_map``,
``jit`` with shardings and ZeRO-1), and checks both hold identical parameters,
equal to a single-process run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "data_parallel.py")
STEPS = 5
TIMEOUT = 60.0
NO_COLLECTIVES = re.compile(
    r"(gloo|cpu[ _]collectives)[^\n]*(not (available|supported|built|compiled|implemented)"
    r"|unavailable|unknown|unsupported)",
    re.IGNORECASE,
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(
        JAX_PLATFORMS="cpu",
        JAX_NUMPY_DTYPE_PROMOTION="strict",
        JAX_NUMPY_RANK_PROMOTION="raise",
        PYTHONWARNINGS="error",
        PYTHONPATH=os.pathsep.join([ROOT, env.get("PYTHONPATH", "")]),
    )
    return env


def _run_two_processes(tmp_path) -> tuple[list[int | None], list[str]]:
    """Start both processes, wait at most TIMEOUT seconds in all; kill whatever is left."""
    address = f"127.0.0.1:{_free_port()}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                EXAMPLE,
                "--steps",
                str(STEPS),
                "--coordinator",
                address,
                "--num-processes",
                "2",
                "--process-id",
                str(rank),
                "--out",
                str(tmp_path / f"params_{rank}.npz"),
            ],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = ["", ""]
    deadline = time.monotonic() + TIMEOUT
    try:
        for rank, proc in enumerate(procs):
            try:
                outputs[rank] = proc.communicate(timeout=max(deadline - time.monotonic(), 1))[0]
            except subprocess.TimeoutExpired:
                outputs[rank] = f"<timed out after {TIMEOUT:.0f} s>"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return [p.returncode for p in procs], outputs


def _example():
    spec = importlib.util.spec_from_file_location("data_parallel", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_processes_train_identically(tmp_path):
    codes, outputs = _run_two_processes(tmp_path)
    if any(c != 0 for c in codes) and "Address already in use" in "".join(outputs):
        codes, outputs = _run_two_processes(tmp_path)  # the free port was taken meanwhile
    log = "\n".join(
        f"--- process {r} (exit {c}):\n{o}"
        for r, (c, o) in enumerate(zip(codes, outputs, strict=True))
    )
    if any(c != 0 for c in codes):
        missing = NO_COLLECTIVES.search(log)
        if missing:
            pytest.skip(f"this jaxlib lacks CPU collectives: {missing.group(0)}")
    assert codes == [0, 0], log
    for o in outputs:
        assert "process" in o and "of 2" in o, log

    saved = [dict(np.load(tmp_path / f"params_{rank}.npz")) for rank in range(2)]
    assert sorted(saved[0]) == sorted(saved[1])
    for key in saved[0]:
        np.testing.assert_array_equal(saved[0][key], saved[1][key], err_msg=key)

    example = _example()
    assert jax.process_count() == 1
    reference = example.train_single_device(STEPS)
    flat_ref = {
        jax.tree_util.keystr(p, simple=True, separator="/"): np.asarray(v)
        for p, v in jax.tree_util.tree_flatten_with_path(reference)[0]
    }
    modes = {key.split("/", 1)[0] for key in saved[0]}
    assert modes == {"shard_map", "jit", "zero1"}, modes
    for key, got in saved[0].items():
        want = flat_ref[key.split("/", 1)[1]]
        np.testing.assert_allclose(
            got, want, rtol=1e-6, atol=1e-6 * float(np.max(np.abs(want))), err_msg=key
        )
