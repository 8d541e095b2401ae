"""pytest plugin: collect optax's test modules through the harness and record every result.

Loaded with ``-p tests.optax_compat.plugin`` by the runner (``python -m
tests.optax_compat``), in the main process and in every xdist worker. Options:

``--gx-mode=substitute|baseline``
    Look names up in gradxform (``substitute``) or always in optax (``baseline``).
``--gx-results=PATH``
    Append one JSON line per test report (and per collection error) to PATH.
``--gx-select=PATH``
    Run only the tests whose node ids are listed in PATH (one per line; a line
    ending in ``.py`` selects a whole module).
``--gx-timeout=SECONDS``
    Fail a test that runs longer than this (0: no limit).

A worker adds to each report, in ``user_properties``, whether the test looked up
a gradxform name (or ran gradxform code), which ones, and which optax names it
asked for that gradxform lacks; the main process writes the results file.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.optax_compat import harness

_HARNESS: harness.Harness | None = None
_CONFIG: pytest.Config | None = None
_PROFILE_PREFIX = ""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradxform optax compatibility")
    group.addoption("--gx-mode", choices=("substitute", "baseline"), default="substitute")
    group.addoption("--gx-results", default=None)
    group.addoption("--gx-select", default=None)
    group.addoption("--gx-timeout", type=float, default=0.0)


def pytest_configure(config: pytest.Config) -> None:
    global _HARNESS, _CONFIG, _PROFILE_PREFIX
    _CONFIG = config
    _HARNESS = harness.Harness(substitute=config.getoption("gx_mode") == "substitute")
    _PROFILE_PREFIX = harness.gradxform_dir()
    results = config.getoption("gx_results")
    if results and not hasattr(config, "workerinput"):
        Path(results).write_text("", encoding="utf-8")


class OptaxTestModule(pytest.Module):
    """A test module of the installed optax, executed by the harness."""

    def _getobj(self) -> Any:
        assert _HARNESS is not None
        return _HARNESS.load_path(self.path)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: Any) -> Any:
    try:
        module_path.resolve().relative_to(harness.OPTAX_DIR)
    except ValueError:
        return None
    return OptaxTestModule.from_parent(parent, path=module_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    select = config.getoption("gx_select")
    if not select:
        return
    wanted = set(Path(select).read_text(encoding="utf-8").splitlines())
    keep, drop = [], []
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        (keep if item.nodeid in wanted or module in wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


# ---------------------------------------------------------------------- per test


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    harness.RECORD.reset()


class CompatTimeout(Exception):
    """Raised in a test that runs past ``--gx-timeout``."""


def _module_name(item: pytest.Item) -> str | None:
    module = item.getparent(pytest.Module)
    if module is None:
        return None
    try:
        return harness.Harness.module_name(Path(module.path))
    except ValueError:
        return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    assert _HARNESS is not None
    # Objects built from gradxform names while the module was imported (parameter
    # lists, module-level optimizers) are only seen when their code runs.
    name = _module_name(item)
    watch = _HARNESS.substitute and bool(name) and _HARNESS.import_touched.get(name, False)
    limit = item.config.getoption("gx_timeout")
    alarm = (
        limit > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if alarm:

        def on_alarm(signum: int, frame: Any) -> None:
            # Raise only while optax's or gradxform's own code runs: an exception
            # thrown into JAX's internals (mid-compilation) can leave JAX unusable
            # for the rest of the worker. Elsewhere, try again shortly.
            where = frame.f_code.co_filename if frame is not None else ""
            if where.startswith((str(harness.OPTAX_DIR), _PROFILE_PREFIX)):
                raise CompatTimeout(f"the test ran longer than {limit:g} s (--timeout)")
            signal.setitimer(signal.ITIMER_REAL, 0.05)

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
    if watch:
        sys.setprofile(harness.make_profiler(_PROFILE_PREFIX))
    try:
        return (yield)
    finally:
        if watch:
            sys.setprofile(None)
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------- results


def _crash(report: Any) -> tuple[str, str]:
    """``(message, location)`` of a failure: the exception line pytest shows, and where."""
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message), f"{crash.path}:{crash.lineno}"
    lines = str(longrepr or "").strip().splitlines()
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    return (errors or lines or [""])[-1], ""


def _write(config: pytest.Config, record: dict[str, Any]) -> None:
    path = config.getoption("gx_results")
    if path and not hasattr(config, "workerinput"):
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Annotate the report where the test ran; write it down in the main process."""
    props = dict(report.user_properties)
    if "gx_touched" not in props:  # not yet annotated: this process ran the test
        rec = harness.RECORD
        props = {
            "gx_touched": rec.touched,
            "gx_hits": sorted(rec.hits),
            "gx_fallbacks": sorted(rec.fallbacks),
        }
        report.user_properties.extend(props.items())
    if _CONFIG is None:
        return
    record: dict[str, Any] = {
        "kind": "test",
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "subtest": hasattr(report, "context"),
        "touched": bool(props["gx_touched"]),
        "hits": props["gx_hits"],
        "fallbacks": props["gx_fallbacks"],
        "duration": round(getattr(report, "duration", 0.0), 3),
    }
    if report.failed:
        record["message"], record["location"] = _crash(report)
    elif report.skipped and isinstance(report.longrepr, tuple):
        record["message"] = str(report.longrepr[2])
    _write(_CONFIG, record)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    report = yield
    if report.failed and isinstance(collector, OptaxTestModule) and _HARNESS is not None:
        name = harness.Harness.module_name(Path(collector.path))
        report.gx_touched = _HARNESS.import_touched.get(name, False)
    return report


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if _CONFIG is None or not report.failed:
        return
    message, location = _crash(report)
    _write(
        _CONFIG,
        {
            "kind": "collect",
            "nodeid": report.nodeid,
            "outcome": "failed",
            "message": message,
            "location": location,
            "touched": bool(getattr(report, "gx_touched", False)),
        },
    )
