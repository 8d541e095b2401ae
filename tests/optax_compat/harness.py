"""Load optax's installed test modules with ``optax`` swapped for gradxform where names match.

Each test module is executed from its installed file into a fresh module whose
``__builtins__`` carry their own ``__import__``: an import of ``optax`` or of
``optax.<anything>`` made by the test module (at the top or inside a function)
gets a :class:`ModuleProxy` instead of the real module. Reading an attribute of
a proxy returns

* a proxy again for a submodule of optax (``optax.schedules``, ``optax._src.alias``);
* the harness-loaded version for another test module (``optax._src.alias_test``);
* the gradxform object of the same public name, when gradxform exports it and
  substitution is on (see :meth:`Harness.resolve` for the namespaces);
* the real optax attribute otherwise (recorded as a fallback).

Only the test modules see proxies: optax's own modules keep importing real
optax, so ``optax.chain`` used inside ``optax.contrib`` stays optax's.

Every substitution and fallback is recorded in :data:`RECORD`, which the pytest
plugin resets before each test and reads after it.
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optax

OPTAX_DIR = Path(optax.__file__).resolve().parent
"""The directory of the installed optax package."""

ALIAS_PREFIX = "gxcompat."
"""Prefix of the names harness-loaded test modules get in ``sys.modules``."""

TREE_MODULES = ("optax.tree", "optax.tree_utils")
SCHEDULE_MODULES = ("optax.schedules",)
NOT_API = ("optax._src.test_utils",)
"""Modules whose names are test helpers, never looked up in gradxform."""

_MISSING = object()


@dataclasses.dataclass
class Record:
    """What the test modules looked up since the last :meth:`reset`."""

    hits: dict[str, int] = dataclasses.field(default_factory=dict)
    fallbacks: dict[str, int] = dataclasses.field(default_factory=dict)
    code_hit: bool = False

    def reset(self) -> None:
        self.hits.clear()
        self.fallbacks.clear()
        self.code_hit = False

    @property
    def touched(self) -> bool:
        return bool(self.hits) or self.code_hit


RECORD = Record()
"""The lookups of the running test (or of the module being imported)."""


def _in(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _public(namespace: Any) -> frozenset[str]:
    names = getattr(namespace, "__all__", None)
    if names is None:
        names = [n for n in vars(namespace) if not n.startswith("_")]
    return frozenset(names)


class ModuleProxy(types.ModuleType):
    """Stands for a real optax module inside a test module (see the module docstring)."""

    def __init__(self, real: types.ModuleType, harness: Harness) -> None:
        super().__init__(real.__name__, real.__doc__)
        for attr in ("__file__", "__package__", "__spec__", "__path__", "__loader__"):
            if hasattr(real, attr):
                object.__setattr__(self, attr, getattr(real, attr))
        object.__setattr__(self, "_gx_real", real)
        object.__setattr__(self, "_gx_harness", harness)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_gx_"):
            raise AttributeError(attr)
        return self._gx_harness.lookup(self._gx_real, attr)

    def __dir__(self) -> list[str]:
        return dir(self._gx_real)

    def __repr__(self) -> str:
        return f"<proxy of {self._gx_real!r}>"


class Harness:
    """Loads optax test modules with proxies, substituting gradxform when ``substitute``."""

    def __init__(self, substitute: bool) -> None:
        self.substitute = substitute
        self._proxies: dict[str, ModuleProxy] = {}
        self._tests: dict[str, types.ModuleType] = {}
        self._loading: list[str] = []
        self.import_touched: dict[str, bool] = {}
        """Per test module: whether its import looked up a gradxform name."""
        self.builtins = dict(vars(builtins))
        self.builtins["__import__"] = self._import
        self._namespaces: dict[str, tuple[tuple[Any, frozenset[str]], ...]] = {}
        if substitute:
            import gradxform
            import gradxform.schedules
            import gradxform.tree

            top = (gradxform, _public(gradxform))
            self._namespaces = {
                "tree": ((gradxform.tree, _public(gradxform.tree)),),
                "schedules": ((gradxform.schedules, _public(gradxform.schedules)), top),
                "top": (top,),
            }

    # ------------------------------------------------------------------ resolution

    def namespace(self, module_name: str) -> str:
        """Which gradxform namespace answers for names of the optax module ``module_name``."""
        if _in(module_name, TREE_MODULES):
            return "tree"
        if _in(module_name, SCHEDULE_MODULES):
            return "schedules"
        return "top"

    def resolve(self, module_name: str, attr: str) -> Any:
        """The gradxform object for ``<module_name>.<attr>``, or ``_MISSING``.

        ``optax.tree.X`` and ``optax.tree_utils[._*].X`` -> ``gradxform.tree.X``;
        ``optax.schedules[._*].X`` -> ``gradxform.schedules.X``, else ``gradxform.X``;
        every other optax module's ``X`` -> ``gradxform.X`` (``X`` in ``gradxform.__all__``).
        """
        for ns, names in self._namespaces.get(self.namespace(module_name), ()):
            if attr in names:
                return getattr(ns, attr)
        return _MISSING

    def lookup(self, real: types.ModuleType, attr: str) -> Any:
        """``getattr`` on a proxy of ``real``."""
        full = f"{real.__name__}.{attr}"
        if attr.endswith("_test") and self.is_test_module(full):
            return self.load(full)
        try:
            value = getattr(real, attr)
        except AttributeError:
            if full in sys.modules or importlib.util.find_spec(full) is not None:
                value = importlib.import_module(full)
            else:
                raise
        if isinstance(value, types.ModuleType):
            return self.proxy(value) if _in(value.__name__, ("optax",)) else value
        if not self.substitute or attr.startswith("_") or _in(real.__name__, NOT_API):
            return value
        found = self.resolve(real.__name__, attr)
        key = f"{self.namespace(real.__name__)}:{attr}"
        if found is _MISSING:
            RECORD.fallbacks[key] = RECORD.fallbacks.get(key, 0) + 1
            return value
        RECORD.hits[key] = RECORD.hits.get(key, 0) + 1
        for name in self._loading:
            self.import_touched[name] = True
        return found

    def proxy(self, real: types.ModuleType) -> ModuleProxy:
        if real.__name__ not in self._proxies:
            self._proxies[real.__name__] = ModuleProxy(real, self)
        return self._proxies[real.__name__]

    # ------------------------------------------------------------------ imports

    def _import(
        self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> Any:
        if level:
            package = (globals or {}).get("__package__") or ""
            name = importlib.util.resolve_name("." * level + name, package)
        if not _in(name, ("optax",)):
            return builtins.__import__(name, globals, locals, fromlist, 0)
        module = importlib.import_module(name)
        if not fromlist:
            return self.proxy(sys.modules["optax"])
        for item in fromlist:
            full = f"{name}.{item}"
            if item == "*" or (hasattr(module, item) and not item.endswith("_test")):
                continue
            if self.is_test_module(full):
                self.load(full)
            elif importlib.util.find_spec(full) is not None:
                importlib.import_module(full)
        return self.proxy(module)

    # ------------------------------------------------------------------ test modules

    @staticmethod
    def is_test_module(name: str) -> bool:
        if not (_in(name, ("optax",)) and name.endswith("_test")):
            return False
        try:
            return importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            return False

    @staticmethod
    def module_name(path: Path) -> str:
        """``optax._src.alias_test`` for ``.../optax/_src/alias_test.py``."""
        rel = path.resolve().relative_to(OPTAX_DIR.parent).with_suffix("")
        return ".".join(rel.parts)

    def load_path(self, path: Path) -> types.ModuleType:
        return self.load(self.module_name(path))

    def load(self, name: str) -> types.ModuleType:
        """The test module ``name`` executed with proxies (once per harness)."""
        if name in self._tests:
            return self._tests[name]
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"no installed test module {name}")
        path = Path(spec.origin)
        module = types.ModuleType(ALIAS_PREFIX + name)
        module.__file__ = str(path)
        module.__package__ = name.rpartition(".")[0]
        module.__dict__["__builtins__"] = self.builtins
        code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
        sys.modules[module.__name__] = module
        self._tests[name] = module
        self._loading.append(name)
        self.import_touched.setdefault(name, False)
        try:
            exec(code, module.__dict__)
        except BaseException:
            del self._tests[name]
            sys.modules.pop(module.__name__, None)
            raise
        finally:
            self._loading.remove(name)
        return module


def gradxform_dir() -> str:
    """The directory of the gradxform package (code run from there counts as a touch)."""
    import gradxform

    return str(Path(gradxform.__file__).resolve().parent) + os.sep


def make_profiler(prefix: str) -> Callable[..., Any]:
    """A ``sys.setprofile`` hook noting the first call into gradxform code (then removed)."""

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(prefix):
            RECORD.code_hit = True
            sys.setprofile(None)

    return profile
