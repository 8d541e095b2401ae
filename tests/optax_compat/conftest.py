"""The compatibility harness is run by ``make compat``, not collected by ``make test``."""

collect_ignore_glob = ["*"]
