"""Builds the optional one-pass Adam kernel (gradxform/_csrc/adam.cc) with the package.

Everything else about the package is in pyproject.toml. The kernel is an XLA FFI
handler compiled against the headers of the jax found at build time
(``jax.ffi.include_dir()``); it is loaded with ctypes, not imported. Without a C++
compiler the build prints a warning and the package installs without it:
``gradxform.fused_apply`` then runs the XLA path.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

FLAGS = ["-std=c++17", "-O3", "-fno-math-errno", "-ffp-contract=off", "-Wno-attributes"]


class BuildFFI(build_ext):
    """Adds the XLA FFI include directory; ``GRADXFORM_NATIVE=1`` adds ``-march=native``."""

    def build_extensions(self) -> None:
        import jax  # a build requirement (pyproject.toml), pinned like the runtime one

        native = os.environ.get("GRADXFORM_NATIVE", "") not in ("", "0")
        for ext in self.extensions:
            ext.include_dirs.append(jax.ffi.include_dir())
            ext.extra_compile_args = [*FLAGS, *(["-march=native"] if native else [])]
        super().build_extensions()

    def get_export_symbols(self, ext: Extension) -> list[str]:
        return ["GxAdamStep"]  # a plain shared library: no PyInit_ function


setup(
    ext_modules=[
        Extension(
            "gradxform._adam_kernel",
            sources=["gradxform/_csrc/adam.cc"],
            language="c++",
            optional=True,
        )
    ],
    cmdclass={"build_ext": BuildFFI},
)
