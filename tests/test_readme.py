"""The Python examples of the README and of the documentation pages run as written."""

import pathlib
import re

import jax
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]


def python_blocks(path: pathlib.Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


BLOCKS = [
    (path.relative_to(ROOT).as_posix(), i, block)
    for path in PAGES
    for i, block in enumerate(python_blocks(path))
]


@pytest.mark.parametrize(
    ("page", "index", "block"), BLOCKS, ids=[f"{page}-{i}" for page, i, _ in BLOCKS]
)
def test_block_runs(page, index, block):
    # Documentation code is what users paste into a default JAX session.
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        exec(compile(block, f"{page} block {index}", "exec"), {})


def test_readme_and_docs_have_examples():
    assert python_blocks(README)
    assert any(page != "README.md" for page, _, _ in BLOCKS)


def test_quickstart_loop_compiles_its_step_once(caplog):
    """The README's training loop changes the learning rate every epoch without recompiling."""
    quickstart = next(
        b for b in python_blocks(README) if "set_hyperparams" in b and "donate_argnums" in b
    )
    with (
        caplog.at_level("WARNING"),
        jax.log_compiles(True),
        jax.numpy_dtype_promotion("standard"),
        jax.numpy_rank_promotion("allow"),
    ):
        exec(compile(quickstart, "README quickstart", "exec"), {})
    compiles = [r for r in caplog.records if "Compiling jit(step)" in r.getMessage()]
    assert len(compiles) == 1, [r.getMessage() for r in compiles]
