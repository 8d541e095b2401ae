"""The README's Python examples run as written."""

import pathlib
import re

import jax
import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index):
    # README code is what users paste into a default JAX session.
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        exec(compile(BLOCKS[index], f"README block {index}", "exec"), {})


def test_quickstart_loop_compiles_its_step_once(caplog):
    """The README's training loop changes the learning rate every epoch without recompiling."""
    quickstart = next(b for b in BLOCKS if "set_hyperparams" in b and "donate_argnums" in b)
    with caplog.at_level("WARNING"), jax.log_compiles(True), \
            jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        exec(compile(quickstart, "README quickstart", "exec"), {})
    compiles = [r for r in caplog.records if "Compiling jit(step)" in r.getMessage()]
    assert len(compiles) == 1, [r.getMessage() for r in compiles]
