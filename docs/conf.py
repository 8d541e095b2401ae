"""Sphinx configuration for the gradxform documentation (``make docs``)."""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gradxform  # noqa: E402

project = "gradxform"
author = "The gradxform authors"
copyright = "the gradxform authors"
release = gradxform.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]

# The docstrings are Google style ("Args:", "Returns:", "Example:", "Attributes:").
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True
napoleon_attr_annotations = False  # the attribute descriptions say what each field holds

# Public names are documented where users import them: gradxform.adam, not the
# private module that implements it.
add_module_names = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_type_aliases = {
    "Params": "gradxform.Params",
    "Updates": "gradxform.Updates",
    "OptState": "gradxform.OptState",
    "Schedule": "gradxform.Schedule",
    "ScalarOrSchedule": "gradxform.ScalarOrSchedule",
    # chex's aliases stay short in signatures instead of expanding to long unions.
    "chex.Numeric": "chex.Numeric",
    "chex.Array": "chex.Array",
    "chex.ArrayTree": "chex.ArrayTree",
}

myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"gradxform {release}"
html_static_path: list[str] = []


_FORWARD_REF = re.compile(r"TypeAliasForwardRef\('([^']*)'\)")


def _short_aliases(app, what, name, obj, options, signature, return_annotation):
    """Show ``chex.Numeric | None`` rather than the repr of Sphinx's alias placeholder."""
    if signature:
        signature = _FORWARD_REF.sub(r"\1", signature)
    if return_annotation:
        return_annotation = _FORWARD_REF.sub(r"\1", return_annotation)
    return signature, return_annotation


def _skip_short_tree_aliases(app, what, name, obj, skip, options):
    """List ``gradxform.tree.tree_add`` once, not again as its alias ``add``."""
    tree = sys.modules.get("gradxform.tree")
    short = name.rpartition(".")[2]
    if tree is not None and obj is not None and getattr(tree, f"tree_{short}", None) is obj:
        return True
    return None


def setup(app):
    app.connect("autodoc-process-signature", _short_aliases)
    app.connect("autodoc-skip-member", _skip_short_tree_aliases)
