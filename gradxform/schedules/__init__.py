"""Learning-rate schedules: pure functions ``step -> value``, one module per family.

The public names are re-exported from :mod:`gradxform`.
"""
