"""Named optimizers, each a :func:`gradxform.chain` of primitives and nothing else.

The public names are re-exported from :mod:`gradxform`.
"""
