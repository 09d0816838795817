"""Run the ``reactivate`` command as ``python -m reactivate``."""

import sys

from .cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
