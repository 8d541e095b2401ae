"""Optional reference libraries (torch, keras, ...): skip with the reason locally, fail in CI.

A parity test that skips because its reference library is missing or misconfigured
checks nothing, and a CI run full of such skips is green while testing less than it
claims. So when the ``CI`` environment variable is set (to anything but ``""``, ``0``,
``false`` or ``no``) a missing or broken reference is a failure; on a developer's
machine the test is skipped and the reason is printed (``pytest -rs``).

Use :func:`require` (or :func:`require_keras`) instead of ``pytest.importorskip``; in CI
``tests/conftest.py`` also routes any remaining ``pytest.importorskip`` through
:func:`missing`.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

FALSE = ("", "0", "false", "no")


def in_ci() -> bool:
    """Whether the ``CI`` environment variable is set to a true value."""
    return os.environ.get("CI", "").strip().lower() not in FALSE


def missing(reason: str) -> NoReturn:
    """Fail (in CI) or skip (elsewhere) the test or module that needs something absent."""
    if in_ci():
        pytest.fail(
            f"{reason} [CI is set: a missing reference fails instead of skipping]", pytrace=False
        )
    pytest.skip(reason, allow_module_level=True)


def require(module_name: str, *, why: str | None = None) -> ModuleType:
    """Import ``module_name``, or fail/skip (see :func:`missing`) saying why it is needed."""
    try:
        return importlib.import_module(module_name)
    except Exception as e:  # ImportError, or a library that breaks while importing
        purpose = f" ({why})" if why else ""
        missing(f"cannot import {module_name!r}{purpose}: {type(e).__name__}: {e}")


def require_keras(backend: str = "jax", *, why: str | None = None) -> ModuleType:
    """keras on ``backend`` (``KERAS_BACKEND`` defaults to it before keras is imported)."""
    os.environ.setdefault("KERAS_BACKEND", backend)
    keras = require("keras", why=why)
    running = keras.backend.backend()
    if running != backend:
        missing(
            f"keras runs the {running!r} backend but {backend!r} is needed"
            f"{f' ({why})' if why else ''}: set KERAS_BACKEND={backend}"
        )
    return keras
