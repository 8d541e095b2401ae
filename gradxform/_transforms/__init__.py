"""Primitive gradient transformations, one module per family.

The public names are re-exported from :mod:`gradxform`.
"""
