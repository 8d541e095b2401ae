"""The documentation covers every public name, at its public path, and its links resolve."""

from __future__ import annotations

import importlib
import pathlib
import pkgutil
import re

import pytest

import gradxform

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API = DOCS / "api"

# ".. autofunction:: gradxform.adam", ".. py:data:: gradxform.Params", and the same
# directives written as MyST fences ("```{autofunction} gradxform.adam").
_OBJECT = r"(?:auto)?(?:function|class|data|exception|decorator|attribute|method)"
_TARGET = r"(gradxform(?:\.\w+)*)"
DIRECTIVE = re.compile(
    rf"^\s*(?:\.\. (?:py:)?{_OBJECT}::|```\{{(?:py:)?{_OBJECT}\}})\s+{_TARGET}\s*$", re.M
)
AUTOMODULE = re.compile(
    rf"^\s*(?:\.\. automodule::|```\{{automodule\}})\s+{_TARGET}\s*$((?:\n\s+:[\w-]+:.*)*)", re.M
)


def api_pages() -> list[pathlib.Path]:
    return sorted(p for p in API.rglob("*") if p.suffix in (".rst", ".md"))


def documented() -> tuple[set[str], set[str]]:
    """Targets of object directives, and modules documented with ``:members:``."""
    objects: set[str] = set()
    modules: set[str] = set()
    for page in api_pages():
        text = page.read_text()
        objects.update(DIRECTIVE.findall(text))
        modules.update(m for m, opts in AUTOMODULE.findall(text) if ":members:" in opts)
    return objects, modules


def public_subpackages() -> list[str]:
    """``gradxform.schedules``, ``gradxform.playground``, ...: modules without an underscore."""
    return [
        f"gradxform.{m.name}"
        for m in pkgutil.iter_modules(gradxform.__path__)
        if not m.name.startswith("_")
    ]


def test_api_pages_exist():
    assert api_pages()
    objects, _ = documented()
    assert "gradxform.adam" in objects  # the pattern still matches the pages


def test_every_public_name_is_on_an_api_page():
    objects, modules = documented()

    def covered(name: str, obj: object) -> bool:
        if f"gradxform.{name}" in objects:
            return True
        for sub in public_subpackages():  # documented at a public subpackage's path
            if f"{sub}.{name}" in objects or sub in modules:
                module = importlib.import_module(sub)
                if getattr(module, name, None) is obj and (
                    f"{sub}.{name}" in objects or name in getattr(module, "__all__", ())
                ):
                    return True
        return False

    missing = [n for n in gradxform.__all__ if not covered(n, getattr(gradxform, n))]
    assert not missing, f"public names missing from docs/api/*: {missing}"


@pytest.mark.parametrize("sub", public_subpackages())
def test_public_subpackage_names_are_on_an_api_page(sub):
    module = importlib.import_module(sub)
    names = getattr(module, "__all__", None)
    if names is None:
        pytest.skip(f"{sub} defines no __all__")
    objects, modules = documented()
    if sub in modules:
        return
    missing = [
        n
        for n in names
        if f"{sub}.{n}" not in objects
        and not (
            n in gradxform.__all__
            and f"gradxform.{n}" in objects
            and getattr(gradxform, n) is getattr(module, n)
        )
    ]
    assert not missing, f"{sub} names missing from docs/api/*: {missing}"


def test_api_pages_use_public_paths_only():
    objects, modules = documented()
    private = sorted(
        t for t in objects | modules if any(part.startswith("_") for part in t.split("."))
    )
    assert not private, f"private module paths in docs/api/*: {private}"


def test_every_documented_name_exists():
    objects, modules = documented()
    for module in modules:
        importlib.import_module(module)
    for target in objects:
        module, _, name = target.rpartition(".")
        assert hasattr(importlib.import_module(module), name), target


MARKDOWN = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted(DOCS.rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # not inside code blocks
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{page.name}: links to missing files {broken}"


def test_every_image_is_shown_somewhere():
    text = "\n".join(p.read_text() for p in MARKDOWN)
    unused = [
        img.name for img in sorted((DOCS / "images").iterdir()) if f"images/{img.name}" not in text
    ]
    assert not unused, f"docs/images not referenced by any page: {unused}"
