"""Wrappers: transformations built around other transformations.

The public names are re-exported from :mod:`gradxform`.
"""
