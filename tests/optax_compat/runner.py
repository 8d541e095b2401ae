"""Command line of the compatibility measurement: ``python -m tests.optax_compat``.

Default: run optax's installed tests with gradxform substituted, then run the
tests that touched gradxform again with real optax (the baseline) to set aside
the ones that fail whatever the library, and print the report. ``--baseline``
runs every test with real optax only and lists the environment failures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jaxlib
import numpy as np
import optax

from tests.optax_compat import harness, report

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

DEFAULT_MODULES = (
    "_src/*_test.py",
    "schedules/*_test.py",
    "transforms/*_test.py",
    "contrib/_reduce_on_plateau_test.py",
    "contrib/_privacy_test.py",
    "optax_test.py",
    "tree_utils/*_test.py",
)
"""Test modules (globs under the installed optax package) that exercise what gradxform offers."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.optax_compat",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--baseline",
        action="store_true",
        help="substitution off: every name resolves to optax; list the tests that fail anyway",
    )
    p.add_argument(
        "--skip-baseline",
        action="store_true",
        help="substitution run only (baseline failures are not set aside)",
    )
    p.add_argument(
        "--min-pass-rate",
        type=float,
        default=0.0,
        help="exit 1 when the pass rate (0..1, or a percentage > 1) is below this",
    )
    p.add_argument(
        "-n", "--workers", type=int, default=2, help="pytest-xdist workers (0: run in one process)"
    )
    p.add_argument(
        "--modules",
        nargs="+",
        default=list(DEFAULT_MODULES),
        metavar="GLOB",
        help="test modules, as globs under the optax package directory",
    )
    p.add_argument("-k", dest="keyword", default=None, help="pytest -k expression")
    p.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="fail a single test after this many seconds (0: no limit)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("/tmp/gradxform-optax-compat"),
        help="directory for the results files and the report",
    )
    p.add_argument(
        "--fresh-baseline",
        action="store_true",
        help="discard the cached baseline results and run the baseline again",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the report from the results files already in --out",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show pytest's own output")
    return p


def _files(globs: list[str]) -> list[str]:
    found: list[str] = []
    for g in globs:
        matches = sorted(harness.OPTAX_DIR.glob(g))
        if not matches:
            raise SystemExit(f"no optax test module matches {g!r} under {harness.OPTAX_DIR}")
        found += [str(m) for m in matches if str(m) not in found]
    return found


def _pytest(
    args: argparse.Namespace,
    mode: str,
    results: Path,
    select: Path | None = None,
    files: list[str] | None = None,
) -> int:
    """Run pytest over the optax test modules with the plugin; the results go to ``results``."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(HERE / "compat.ini"),
        "--rootdir",
        str(harness.OPTAX_DIR.parent),
        "--confcutdir",
        str(harness.OPTAX_DIR),
        "-p",
        "tests.optax_compat.plugin",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:nbmake",
        "--gx-mode",
        mode,
        "--gx-results",
        str(results),
        "--gx-timeout",
        str(args.timeout),
        "-q",
        "--no-header",
        "-rN",
    ]
    if args.workers > 0:
        cmd += ["-n", str(args.workers)]
    if select is not None:
        cmd += ["--gx-select", str(select)]
    if args.keyword:
        cmd += ["-k", args.keyword]
    paths = files if files is not None else _files(args.modules)
    cmd += paths
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    start = time.monotonic()
    print(f"[compat] {mode} run over {len(paths)} test modules ...", file=sys.stderr, flush=True)
    out = None if args.verbose else subprocess.DEVNULL
    proc = subprocess.Popen(
        cmd, cwd=args.out, env=env, stdout=out, stderr=out, start_new_session=True
    )
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGTERM)
        raise
    print(
        f"[compat] {mode} run done in {time.monotonic() - start:.0f} s (pytest exit {code})",
        file=sys.stderr,
        flush=True,
    )
    return code


def _header(mode: str) -> str:
    return (
        f"# gradxform against optax {optax.__version__}'s own tests "
        f"(jax {jax.__version__}) -- {mode}"
    )


def _environment_key() -> str:
    """What a baseline result depends on: the versions, and the harness itself."""
    digest = hashlib.sha256()
    for part in (
        optax.__version__,
        jax.__version__,
        jaxlib.__version__,
        np.__version__,
        sys.version,
        sys.platform,
    ):
        digest.update(part.encode())
    for name in ("harness.py", "plugin.py", "compat.ini"):
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()[:16]


def _cache_path(args: argparse.Namespace) -> Path:
    return args.out / f"baseline-cache-{_environment_key()}.jsonl"


def _baseline(args: argparse.Namespace, wanted: list[str]) -> report.Run:
    """Baseline results for ``wanted`` (node ids, or modules meant whole), cached per environment.

    A baseline result depends on optax, jax and the machine, not on gradxform, so
    results are kept in ``--out`` and reused by later runs (``--fresh-baseline``
    discards them).
    """
    cache = _cache_path(args)
    if args.fresh_baseline and cache.exists() and not args.report_only:
        cache.unlink()
    known = report.load(cache)
    todo = [w for w in wanted if w not in known.tests and w not in known.complete]
    if todo and not args.report_only:
        select = args.out / "baseline-select.txt"
        select.write_text("\n".join(todo) + "\n", encoding="utf-8")
        modules = sorted({w.split("::", 1)[0] for w in todo})
        fresh = args.out / "baseline.jsonl"
        _pytest(
            args,
            "baseline",
            fresh,
            select=select,
            files=[str(harness.OPTAX_DIR.parent / m) for m in modules],
        )
        lines = fresh.read_text(encoding="utf-8") if fresh.exists() else ""
        whole = [w for w in todo if "::" not in w]
        lines += "".join(json.dumps({"kind": "complete", "module": m}) + "\n" for m in whole)
        with open(cache, "a", encoding="utf-8") as f:
            f.write(lines)
        known = report.load(cache)
    elif wanted:
        print(f"[compat] baseline: all {len(wanted)} results from {cache}", file=sys.stderr)
    return known


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    min_rate = args.min_pass_rate / 100 if args.min_pass_rate > 1 else args.min_pass_rate

    if args.baseline:
        results = args.out / "baseline-full.jsonl"
        if not args.report_only:
            _pytest(args, "baseline", results)
        run = report.load(results)
        if not run.tests:
            print("[compat] no results: pytest did not run (see -v)", file=sys.stderr)
            return 2
        if not args.report_only and not args.keyword:  # a full run: keep it for later runs
            complete = "".join(
                json.dumps({"kind": "complete", "module": m}) + "\n" for m in sorted(run.modules())
            )
            _cache_path(args).write_text(
                results.read_text(encoding="utf-8") + complete, encoding="utf-8"
            )
        text = report.baseline_report(run, _header("baseline: every name resolves to optax"))
        _emit(args.out / "report-baseline.md", text)
        return 0

    sub_path = args.out / "substitute.jsonl"
    if not args.report_only:
        _pytest(args, "substitute", sub_path)
    sub = report.load(sub_path)
    if not sub.tests:
        print("[compat] no results: pytest did not run (see -v)", file=sys.stderr)
        return 2
    base = None
    if not args.skip_baseline:
        wanted = sorted(
            {r.nodeid for r in sub.tests.values() if r.touched and r.status != "skipped"}
            | set(sub.collect_errors)
        )
        base = _baseline(args, wanted)
    mode = "substitution: gradxform wherever it has the name"
    text, summary = report.substitution_report(sub, base, _header(mode))
    _emit(args.out / "report.md", text)
    if summary.pass_rate < min_rate:
        print(
            f"[compat] pass rate {summary.pass_rate:.1%} is below --min-pass-rate {min_rate:.1%}",
            file=sys.stderr,
        )
        return 1
    return 0


def _emit(path: Path, text: str) -> None:
    print(text)
    path.write_text(text + "\n", encoding="utf-8")
    print(f"[compat] report written to {path}", file=sys.stderr)
