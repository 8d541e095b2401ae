"""The CI policy for optional reference libraries (see tests/_require.py).

In CI a ``pytest.importorskip`` that would skip fails instead, in every test module,
so a reference library missing from CI's environment cannot turn a parity test into a
silent skip. Outside CI nothing changes.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from tests._require import in_ci, missing


def _strict(importorskip: Any) -> Any:
    @functools.wraps(importorskip)
    def strict_importorskip(modname: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return importorskip(modname, *args, **kwargs)
        except pytest.skip.Exception as e:
            missing(f"pytest.importorskip({modname!r}): {e.msg}")

    strict_importorskip.strict = True  # type: ignore[attr-defined]
    return strict_importorskip


def pytest_configure(config: pytest.Config) -> None:
    if in_ci() and not getattr(pytest.importorskip, "strict", False):
        pytest.importorskip = _strict(pytest.importorskip)
