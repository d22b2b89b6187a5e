"""``python -m codegym``: the ``codegym`` command."""

import sys

from codegym.cli import main

if __name__ == "__main__":
    sys.exit(main())
