"""The policy for optional reference libraries (tests/_require.py, tests/conftest.py):
missing or misconfigured, they fail a run in CI and skip, with the reason, elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import _require

ROOT = Path(__file__).resolve().parents[1]
BOGUS = "no_such_module_for_gradxform_tests"
SKIPPED = (0, 5)  # 5: pytest's "no tests ran", when a whole module is skipped


def pytest_run(
    tmp_path: Path,
    body: str,
    *,
    ci: str | None,
    env: dict[str, str] | None = None,
    plugins: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Run pytest on one file in a fresh interpreter, with ``CI`` set or unset."""
    test = tmp_path / "test_policy_case.py"
    test.write_text(body)
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "KERAS_BACKEND")}
    environ.update(PYTHONPATH=str(ROOT), **(env or {}))
    if ci is not None:
        environ["CI"] = ci
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "-rs",
        "-q",
        str(test),
    ]
    for plugin in plugins:
        args += ["-p", plugin]
    return subprocess.run(
        args, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300, check=False
    )


MODULE_LEVEL = f"""
from tests._require import require

mod = require({BOGUS!r}, why="a parity check")


def test_uses_it():
    assert mod
"""


def test_missing_module_fails_in_ci(tmp_path):
    done = pytest_run(tmp_path, MODULE_LEVEL, ci="true")
    assert done.returncode != 0, done.stdout
    assert BOGUS in done.stdout and "CI is set" in done.stdout, done.stdout
    assert "passed" not in done.stdout


def test_missing_module_skips_with_reason_outside_ci(tmp_path):
    done = pytest_run(tmp_path, MODULE_LEVEL, ci=None)
    assert done.returncode in SKIPPED, done.stdout
    assert "1 skipped" in done.stdout, done.stdout
    assert f"cannot import {BOGUS!r} (a parity check)" in done.stdout, done.stdout


INSIDE_TEST = f"""
import pytest


def test_needs_it():
    pytest.importorskip({BOGUS!r})
"""


@pytest.mark.parametrize(("ci", "outcome"), [("1", "1 failed"), ("0", "1 skipped")])
def test_importorskip_is_strict_in_ci_through_conftest(tmp_path, ci, outcome):
    done = pytest_run(tmp_path, INSIDE_TEST, ci=ci, plugins=("tests.conftest",))
    assert outcome in done.stdout, done.stdout
    assert BOGUS in done.stdout, done.stdout


KERAS = """
from tests._require import require_keras

keras = require_keras("jax", why="keras parity")


def test_uses_it():
    assert keras.backend.backend() == "jax"
"""


def test_keras_on_a_missing_backend_fails_in_ci_and_skips_elsewhere(tmp_path):
    env = {"KERAS_BACKEND": "no_such_backend"}
    failed = pytest_run(tmp_path, KERAS, ci="true", env=env)
    assert failed.returncode != 0 and "CI is set" in failed.stdout, failed.stdout
    skipped = pytest_run(tmp_path, KERAS, ci=None, env=env)
    assert skipped.returncode in SKIPPED and "1 skipped" in skipped.stdout, skipped.stdout
    assert "keras" in skipped.stdout.split("short test summary info")[-1], skipped.stdout


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        ("", False),
        ("0", False),
        ("false", False),
        ("No", False),
        ("1", True),
        ("true", True),
        ("yes", True),
    ],
)
def test_in_ci(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert _require.in_ci() is expected
