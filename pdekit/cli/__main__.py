"""``python -m pdekit.cli``: the same as the ``pdekit`` command (torchrun uses this form)."""

import sys

from pdekit.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
