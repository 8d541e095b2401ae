"""Console output for the command line: tables and progress bars."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    print("\n".join(lines))


def progress(total: int, desc: str) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the demo extra
        return NoBar()
    return tqdm(
        total=total, desc=desc, unit="epoch", leave=False, file=sys.stderr, disable=None
    )  # no bar when stderr is not a terminal


class NoBar:
    def set_postfix(self, **kw: Any) -> None:
        del kw

    def update(self, n: int) -> None:
        del n

    def close(self) -> None:
        pass
