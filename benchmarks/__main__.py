"""``python -m benchmarks run [--quick] [--only NAME ...] [--list] [--out DIR]``: see :mod:`benchmarks.suite`."""

from .suite import main

raise SystemExit(main())
