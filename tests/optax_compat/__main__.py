"""``python -m tests.optax_compat``: see :mod:`tests.optax_compat.runner`."""

from tests.optax_compat.runner import main

raise SystemExit(main())
