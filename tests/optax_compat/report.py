"""Turn the results files the plugin writes into the compatibility report."""

from __future__ import annotations

import collections
import dataclasses
import json
import re
from collections.abc import Iterable
from pathlib import Path

import optax


@dataclasses.dataclass
class Result:
    """Everything recorded about one test (all its phases and subtests)."""

    nodeid: str
    status: str = "passed"  # passed | failed | error | skipped
    touched: bool = False
    hits: set[str] = dataclasses.field(default_factory=set)
    fallbacks: set[str] = dataclasses.field(default_factory=set)
    message: str = ""
    location: str = ""
    duration: float = 0.0

    @property
    def module(self) -> str:
        return self.nodeid.split("::", 1)[0]

    @property
    def bad(self) -> bool:
        return self.status in ("failed", "error")


@dataclasses.dataclass
class Run:
    """One pytest run: per-test results and the modules that failed to import."""

    tests: dict[str, Result]
    collect_errors: dict[str, tuple[str, bool]]  # module -> (message, touched)
    complete: set[str] = dataclasses.field(default_factory=set)  # modules run whole

    def modules(self) -> set[str]:
        return {r.module for r in self.tests.values()} | set(self.collect_errors)


def load(path: Path) -> Run:
    """Read a results file (JSON lines) into a :class:`Run`."""
    tests: dict[str, Result] = {}
    errors: dict[str, tuple[str, bool]] = {}
    complete: set[str] = set()
    if not path.exists():
        return Run(tests, errors, complete)
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec["kind"] == "complete":
            complete.add(rec["module"])
            continue
        if rec["kind"] == "collect":
            errors[rec["nodeid"].split("::", 1)[0]] = (rec.get("message", ""), rec["touched"])
            continue
        r = tests.setdefault(rec["nodeid"], Result(rec["nodeid"]))
        r.touched |= rec["touched"]
        r.hits.update(rec["hits"])
        r.fallbacks.update(rec["fallbacks"])
        r.duration += rec.get("duration", 0.0)
        outcome, when = rec["outcome"], rec["when"]
        if outcome == "failed":
            new = "error" if when in ("setup", "teardown") and not rec["subtest"] else "failed"
            if not r.bad:
                r.message, r.location = rec.get("message", ""), rec.get("location", "")
            if r.status != "failed":
                r.status = new
        elif outcome == "skipped" and not r.bad and not rec["subtest"]:
            r.status = "skipped"
            r.message = rec.get("message", "")
    return Run(tests, errors, complete)


# ---------------------------------------------------------------------- failure causes

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w])")
_NUMBERS = re.compile(r"N(?:[,\s]+N)+")
_PATH = re.compile(r"(?:/[\w.+-]+)+/([\w.+-]+)")
_HEAD = re.compile(r"^([A-Za-z_][\w.]*)(?::\s*(.*))?$")


def cause(message: str) -> str:
    """The failure cause: exception type and its first message line with specifics removed.

    Numbers become ``N``, runs of numbers ``N...``, addresses ``0x..`` and paths their
    last part; quoted names (keyword arguments, attributes) are kept.
    """
    first, _, tail = message.strip().partition("\n")
    m = _HEAD.match(first)
    if m and m.group(1).rsplit(".", 1)[-1][:1].isupper():
        kind, rest = m.group(1).rsplit(".", 1)[-1], (m.group(2) or "") + "\n" + tail
    else:
        kind, rest = "Failure", message
    lines = [ln.strip() for ln in rest.splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    text = _ADDRESS.sub("0x..", text)
    text = _PATH.sub(r"\1", text)
    text = _NUMBER.sub("N", text)
    text = _NUMBERS.sub("N...", text)
    text = re.sub(r"\s+", " ", text)
    if len(text) > 150:
        text = text[:147] + "..."
    return f"{kind}: {text}" if text else kind


# ---------------------------------------------------------------------- public names


def _optax_has(key: str) -> bool:
    """Whether a fallback key ``namespace:name`` is a public optax name."""
    space, _, name = key.partition(":")
    if space == "tree":
        return hasattr(optax.tree_utils, name) or hasattr(optax.tree, name)
    if space == "schedules":
        return hasattr(optax.schedules, name) or hasattr(optax, name)
    return hasattr(optax, name)


def display_name(key: str) -> str:
    space, _, name = key.partition(":")
    return {"tree": "tree.", "schedules": "schedules."}.get(space, "") + name


# ---------------------------------------------------------------------- report


def _pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.1f}%" if b else "n/a"


def _examples(ids: Iterable[str], k: int = 2) -> str:
    return ", ".join(sorted(ids)[:k])


def _groups(results: list[Result]) -> list[tuple[str, list[Result]]]:
    by: dict[str, list[Result]] = collections.defaultdict(list)
    for r in results:
        by[cause(r.message)].append(r)
    return sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def _fallback_note(results: list[Result]) -> str:
    counts = collections.Counter(f for r in results for f in r.fallbacks if _optax_has(f))
    if not counts:
        return ""
    top = ", ".join(f"{display_name(n)} ({c})" for n, c in counts.most_common(4))
    return f"       optax names gradxform lacks, used by these tests: {top}"


@dataclasses.dataclass
class Summary:
    """The numbers of a substitution run (after the baseline check)."""

    collected: int
    skipped: int
    touched: int
    applicable: int
    passed: int
    failed: int
    environment: int
    unchecked: int

    @property
    def pass_rate(self) -> float:
        return self.passed / self.applicable if self.applicable else 0.0


def substitution_report(sub: Run, base: Run | None, header: str) -> tuple[str, Summary]:
    """The report of a substitution run, with baseline failures set aside."""
    tests = dict(sub.tests)
    # Tests of modules that could not even be imported with gradxform: failed, with
    # the import error as their cause (their ids come from the baseline run).
    lost = {
        m: msg
        for m, (msg, touched) in sub.collect_errors.items()
        if base is not None and m not in base.collect_errors
    }
    if base is not None:
        for nodeid, b in base.tests.items():
            if b.module in lost and nodeid not in tests:
                tests[nodeid] = Result(
                    nodeid,
                    status="failed",
                    touched=True,
                    message=f"ImportError: module failed to import with "
                    f"gradxform: {cause(lost[b.module])}",
                )
    ran = list(tests.values())
    skipped = [r for r in ran if r.status == "skipped"]
    touched = [r for r in ran if r.touched and r.status != "skipped"]
    environment, unchecked, applicable = [], [], []
    for r in touched:
        b = base.tests.get(r.nodeid) if base is not None else None
        if b is not None and b.bad:
            environment.append((r, b))
        else:
            if base is not None and b is None and r.module not in lost:
                unchecked.append(r)
            applicable.append(r)
    passed = [r for r in applicable if r.status == "passed"]
    failed = [r for r in applicable if r.bad]
    summary = Summary(
        len(ran),
        len(skipped),
        len(touched),
        len(applicable),
        len(passed),
        len(failed),
        len(environment),
        len(unchecked),
    )

    out = [header, ""]
    out.append(
        f"tests collected: {len(ran)}   skipped: {len(skipped)}   "
        f"touched a gradxform name: {len(touched)}"
    )
    if base is None:
        out.append("baseline: not run (environment failures are not excluded)")
    else:
        out.append(f"baseline failures set aside (fail with real optax too): {len(environment)}")
    out.append(
        f"APPLICABLE: {len(applicable)}   PASSED: {len(passed)}   "
        f"FAILED: {len(failed)}   PASS RATE: {_pct(len(passed), len(applicable))}"
    )
    if unchecked:
        out.append(f"({len(unchecked)} applicable tests have no baseline result)")
    out.append("")

    groups = _groups(failed)
    out.append(f"## Failures by cause ({len(failed)} tests, {len(groups)} causes)")
    out.append("")
    for i, (text, rs) in enumerate(groups, 1):
        out.append(f"{i:3d}. [{len(rs)}] {text}")
        out.append(f"       e.g. {_examples(r.nodeid for r in rs)}")
        note = _fallback_note(rs)
        if note:
            out.append(note)
    out.append("")

    out.append("## Per module (applicable / passed / failed)")
    out.append("")
    per: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    for r in applicable:
        row = per[r.module]
        row[0] += 1
        row[1] += r.status == "passed"
        row[2] += r.bad
    for module, (a, p, f) in sorted(per.items(), key=lambda kv: (-kv[1][2], kv[0])):
        out.append(f"  {module:55s} {a:5d} {p:5d} {f:5d}   {_pct(p, a):>6s}")
    out.append("")

    missing = collections.Counter()
    only_missing = collections.Counter()
    for r in ran:
        names = {f for f in r.fallbacks if _optax_has(f)}
        missing.update(names)
        if not r.touched:
            only_missing.update(names)
    out.append(
        "## optax names gradxform lacks (tests that asked for them; of which touched nothing else)"
    )
    out.append("")
    for name, n in missing.most_common(60):
        out.append(f"  {display_name(name):45s} {n:5d} {only_missing[name]:5d}")
    if len(missing) > 60:
        out.append(f"  ... and {len(missing) - 60} more")
    out.append("")

    if environment:
        out.append(f"## Baseline failures set aside ({len(environment)}: fail with real optax)")
        out.append("")
        for text, rs in _groups([b for _, b in environment]):
            out.append(f"  [{len(rs)}] {text}")
            out.append(f"       e.g. {_examples(r.nodeid for r in rs)}")
        out.append("")
    env_errors = {m: msg for m, (msg, _) in sub.collect_errors.items() if m not in lost}
    if env_errors:
        out.append("## Modules that fail to import in both modes (not counted)")
        out.append("")
        for m, msg in sorted(env_errors.items()):
            out.append(f"  {m}: {cause(msg)}")
        out.append("")
    if lost:
        out.append(
            "## Modules that fail to import only with gradxform (their tests count as failed)"
        )
        out.append("")
        for m, msg in sorted(lost.items()):
            n = sum(1 for r in ran if r.module == m)
            out.append(f"  {m} ({n} tests): {cause(msg)}")
        out.append("")
    return "\n".join(out), summary


def baseline_report(base: Run, header: str) -> str:
    """The report of a baseline run: environment failures, grouped by cause."""
    ran = list(base.tests.values())
    bad = [r for r in ran if r.bad]
    counts = collections.Counter(r.status for r in ran)
    out = [header, ""]
    out.append(
        f"tests collected: {len(ran)}   passed: {counts['passed']}   "
        f"failed: {counts['failed'] + counts['error']}   skipped: {counts['skipped']}   "
        f"modules that fail to import: {len(base.collect_errors)}"
    )
    out.append("")
    out.append(f"## Environment failures (fail with real optax: {len(bad)})")
    out.append("")
    for text, rs in _groups(bad):
        out.append(f"  [{len(rs)}] {text}")
        for r in sorted(rs, key=lambda r: r.nodeid):
            out.append(f"       {r.nodeid}")
    for m, (msg, _) in sorted(base.collect_errors.items()):
        out.append(f"  [module] {m}: {cause(msg)}")
    out.append("")
    return "\n".join(out)
