"""How much of optax's own test suite passes with gradxform in optax's place.

``make compat`` (or ``python -m tests.optax_compat``) runs the test modules that
ship with the installed optax wheel, with every ``optax`` name those modules
use resolved to gradxform's object of the same public name where gradxform has
one (real optax otherwise), and reports the tests that touched gradxform, how
many pass, and the failures grouped by cause. ``--baseline`` runs the same
tests with real optax everywhere, to tell environment failures from gradxform's.

``harness`` loads the test modules with proxies, ``plugin`` is the pytest side,
``report`` builds the report and ``runner`` is the command line. Nothing here is
collected by the project's own test run (see ``conftest.py``).
"""
