"""``python -m pdekit``: the same as the ``pdekit`` command."""

import sys

from pdekit.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
